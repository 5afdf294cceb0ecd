#!/bin/sh
# `make image`: builds both targets of the Dockerfile, IMAGE:TAG-cloud (also IMAGE:TAG, the
# production default) and IMAGE:TAG-full.
#   BASE_IMAGE       Python 3.11 on Debian bookworm (default python:3.11-slim-bookworm)
#   IMAGE_CA_BUNDLE  CA bundle for a TLS-inspecting proxy, passed as a build secret
#                    (default: the bundle pip is configured with here, if any)
#   PIP_INDEX        package index for pip (default: the index pip is configured with here)
set -eu
cd "$(dirname "$0")/.."
. scripts/docker-cli.sh

image=${IMAGE:-ai-video-processor}
tag=${IMAGE_TAG:-0.1.0}
base=${BASE_IMAGE:-python:3.11-slim-bookworm}

pip_setting() {  # the value of a pip setting from the environment or pip's configuration
    python3 -m pip config list 2>/dev/null |
        sed -n "s/^[a-z:]*\.$1='\(.*\)'$/\1/p" | head -n 1
}
ca=${IMAGE_CA_BUNDLE-${PIP_CERT:-$(pip_setting cert)}}
index=${PIP_INDEX-${PIP_INDEX_URL:-$(pip_setting index-url)}}
case $index in http://* | https://*) ;; *) index="" ;; esac  # a local index is not in the build

set -- --network host --build-arg "BASE_IMAGE=$base" --build-arg "PIP_INDEX=$index"
if [ -n "$ca" ]; then
    set -- "$@" --secret "id=ca_bundle,src=$ca"
fi
for target in cloud full; do
    name="$image:$tag-$target"
    default=""  # the cloud image is the production default: also IMAGE:TAG
    [ "$target" = full ] || default="$image:$tag"
    start=$(date +%s)
    DOCKER_BUILDKIT=1 $DOCKER build --progress plain "$@" --target "$target" -t "$name" ${default:+-t "$default"} . \
        >"${IMAGE_BUILD_LOG:-/dev/stderr}" 2>&1 ||
        { echo "building $name failed (log: ${IMAGE_BUILD_LOG:-above})" >&2; exit 1; }
    size=$($DOCKER image inspect --format '{{.Size}}' "$name")
    echo "built $name on $base in $(($(date +%s) - start)) s: $((size / 1000000)) MB"
done
