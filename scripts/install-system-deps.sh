#!/usr/bin/env bash
# Installs the Debian packages the pipeline and its local stack run: ffmpeg (ffmpeg,
# ffprobe) and espeak-ng (the demo's Korean voice). Does nothing when they are present.
# `--bench` adds the benchmarks' data: pocketsphinx-testdata (English speech + transcripts).
# `--postgres` adds PostgreSQL (postgresql), for the local stack's `--db postgres`.
set -euo pipefail
missing=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
for option in "$@"; do
  case "$option" in
    --bench) [ -d /usr/share/pocketsphinx/test/data/librivox ] || missing+=(pocketsphinx-testdata) ;;
    --postgres) compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql) ;;
    *) echo "unknown option $option" >&2; exit 2 ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing ${missing[*]} (apt-get)"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
