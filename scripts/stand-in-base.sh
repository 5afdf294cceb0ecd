#!/bin/sh
# A stand-in for the official slim Python image, made from Debian packages with
# debootstrap, for machines that reach a Debian mirror but no image registry:
#   scripts/stand-in-base.sh [TAG]      (default ai-video-processor-base:bookworm)
# Debian bookworm's python3 is 3.11, the image's Python. The mirror is the first Debian
# mirror in this machine's apt sources (DEBIAN_MIRROR overrides it). Needs root, docker
# and debootstrap.
set -eu

tag=${1:-ai-video-processor-base:bookworm}
suite=bookworm
docker=${DOCKER:-docker}

# The first URI ending in /debian (or /debian-security) in the apt sources, one-line or deb822.
apt_uri() {
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
        2>/dev/null |
        awk -v tail="$1" '$1 == "URIs:" || $1 == "deb" {
            for (i = 2; i <= NF; i++) if ($i ~ "^https?://.*/" tail "/?$") { print $i; exit }
        }' | sed 's:/$::'
}

mirror=${DEBIAN_MIRROR:-$(apt_uri debian)}
security=${DEBIAN_SECURITY_MIRROR:-$(apt_uri debian-security)}
[ -n "$mirror" ] || { echo "no Debian mirror in the apt sources; set DEBIAN_MIRROR" >&2; exit 1; }
[ -n "$security" ] || security="${mirror}-security"

command -v debootstrap >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
}

rootfs=$(mktemp -d /tmp/stand-in-base.XXXXXX)
trap 'rm -rf "$rootfs" "$rootfs.log"' EXIT
chmod 755 "$rootfs"  # the image's /
echo "stand-in base: debootstrap $suite from the machine's Debian mirror into $rootfs"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
    { tail -20 "$rootfs.log" >&2; exit 1; }
cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
SOURCES
# As Debian's slim images: no documentation, manual pages or translations, now or later.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
chroot "$rootfs" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -qq && apt-get clean' >/dev/null
# Where the official image has its interpreter.
ln -s /usr/bin/python3 "$rootfs/usr/local/bin/python"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log
tar -C "$rootfs" -c . | "$docker" import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    - "$tag" >/dev/null
echo "stand-in base: $tag ($("$docker" image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1 / 1e6}'))"
