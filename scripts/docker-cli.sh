# Sourced: sets DOCKER to a docker CLI that builds with BuildKit (build secrets). A CLI of
# version 23 or later needs its buildx plugin for that; older ones (Debian's docker.io)
# have BuildKit built in.
if [ -z "${DOCKER:-}" ]; then
    for cli in $(which -a docker 2>/dev/null); do
        if "$cli" buildx version >/dev/null 2>&1; then DOCKER=$cli; break; fi
        major=$("$cli" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)
        if [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null; then DOCKER=$cli; break; fi
    done
    [ -n "${DOCKER:-}" ] || { echo "no docker CLI that builds with BuildKit (install buildx)" >&2; exit 1; }
fi
export DOCKER
