# The worker, flow-run and sensor image. Two targets of one build:
#   cloud  CLOVA + Claude only: the production default
#   full   plus the offline engines (faster-whisper, the Whisper base weights): the demo's
# `make image` builds both (README, "Container image"). Build arguments and secrets:
#   BASE_IMAGE     a Python 3.11 image on Debian bookworm (default the official slim one;
#                  scripts/stand-in-base.sh makes one from Debian packages)
#   PIP_INDEX      the package index pip uses (default PyPI)
#   secret ca_bundle  a CA bundle for TLS-inspecting proxies: apt and pip use it during the
#                  build only; it is never part of an image layer.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS base
ENV PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    APP_ROOT=/app \
    PREFECT_DEFAULT_RESULT_STORAGE_BLOCK=s3-bucket/prefect-results \
    PREFECT_RESULTS_PERSIST_BY_DEFAULT=true \
    PREFECT_LOGGING_EXTRA_LOGGERS=video_processor \
    PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW=ignore \
    XDG_CACHE_HOME=/home/app/.cache
RUN useradd --create-home --uid 10001 --user-group app

# FFmpeg from Debian's source package, with only what the pipeline uses (video_processor/
# ffmpeg.py: the demuxers and protocols it allows, every audio decoder, its filters, raw PCM
# out): 12 MB instead of the 585 MB of Debian's ffmpeg package and its libraries.
FROM base AS ffmpeg
RUN --mount=type=secret,id=ca_bundle \
    set -eu; \
    ca=/run/secrets/ca_bundle; \
    if [ -s "$ca" ]; then tls="-o Acquire::https::CAInfo=$ca"; else tls=""; fi; \
    for list in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do \
        [ -f "$list" ] && sed -n 's/^deb /deb-src /p' "$list" >>/etc/apt/sources.list.d/src.list; \
    done; \
    sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/*.sources 2>/dev/null || true; \
    apt-get $tls update; \
    DEBIAN_FRONTEND=noninteractive apt-get $tls install -y --no-install-recommends \
        gcc libc6-dev make nasm pkg-config libssl-dev zlib1g-dev xz-utils; \
    mkdir /build; cd /build; \
    apt-get $tls source --download-only ffmpeg; \
    tar -xf ffmpeg_*.orig.tar.xz; rm -f ffmpeg_*
WORKDIR /build
RUN set -eu; cd ffmpeg-*/; \
    audio_decoders=$(awk '/\/\* audio codecs \*\//{on=1} /\/\* subtitles \*\//{on=0} \
        on && /_decoder;/ {sub(/.*ff_/, ""); sub(/_decoder;.*/, ""); print}' \
        libavcodec/allcodecs.c | paste -sd, -); \
    ./configure --prefix=/opt/ffmpeg --disable-autodetect --disable-everything \
        --disable-doc --disable-debug --disable-ffplay --disable-avdevice --disable-postproc \
        --enable-openssl --enable-zlib \
        --enable-protocol=file,pipe,http,https,tls,tcp \
        --enable-demuxer=mov,matroska,avi,flv,mpegts,mpegps,asf,ogg,wav,mp3,aac,flac \
        --enable-decoder="$audio_decoders" \
        --enable-parser=aac,aac_latm,ac3,adx,amr,cook,dca,dolby_e,flac,g723_1,g729,gsm,mlp,mpegaudio,opus,sipr,tak,vorbis,xma \
        --enable-filter=abuffer,abuffersink,aformat,anull,aresample,atrim,highpass,lowpass,afftdn,anlmdn \
        --enable-encoder=pcm_s16le --enable-muxer=pcm_s16le,wav,null \
        >/dev/null; \
    make -j"$(nproc)" >/dev/null; \
    make install >/dev/null; \
    /opt/ffmpeg/bin/ffmpeg -hide_banner -filters | grep -q afftdn; \
    /opt/ffmpeg/bin/ffmpeg -hide_banner -muxers | grep -q ' s16le '

FROM base AS runtime
COPY --from=ffmpeg /opt/ffmpeg/bin/ffmpeg /opt/ffmpeg/bin/ffprobe /usr/local/bin/
WORKDIR /app
USER app
# The sensor is the long-running process of this image; workers and flow runs are
# started with their own command. Unhealthy when the sensor stops polling.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "sensors.health"]
CMD ["python", "-m", "sensors.sqs_sensor"]

# --- build stages: a virtual environment per target ------------------------------------
FROM runtime AS build-cloud
USER root
ARG PIP_INDEX
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
COPY requirements-cloud.txt /src/
RUN --mount=type=secret,id=ca_bundle \
    PIP_CERT=$(test -s /run/secrets/ca_bundle && echo /run/secrets/ca_bundle) \
    pip install ${PIP_INDEX:+--index-url "$PIP_INDEX"} -r /src/requirements-cloud.txt
# Installed, not only copied: the worker types' entry points must be registered.
COPY . /src/
RUN --mount=type=secret,id=ca_bundle \
    PIP_CERT=$(test -s /run/secrets/ca_bundle && echo /run/secrets/ca_bundle) \
    pip install ${PIP_INDEX:+--index-url "$PIP_INDEX"} --no-deps /src

FROM build-cloud AS build-full
COPY requirements.txt /src/
RUN --mount=type=secret,id=ca_bundle \
    PIP_CERT=$(test -s /run/secrets/ca_bundle && echo /run/secrets/ca_bundle) \
    pip install ${PIP_INDEX:+--index-url "$PIP_INDEX"} -r /src/requirements.txt \
    && python -c "from video_processor.stt.local_whisper import ensure_whisper_model, default_model_dir; ensure_whisper_model(default_model_dir())"

FROM runtime AS code
USER root
COPY . /app/
RUN rm requirements*.txt && python3 -m compileall -q /app

# --- the two images (pip compiled the bytecode of what it installed; it is not needed after)
FROM build-cloud AS venv-cloud
RUN python -m pip uninstall -q -y pip setuptools

FROM build-full AS venv-full
RUN python -m pip uninstall -q -y pip setuptools

FROM runtime AS cloud
COPY --from=venv-cloud /opt/venv /opt/venv
COPY --from=code /app /app

FROM runtime AS full
COPY --from=venv-full /opt/venv /opt/venv
COPY --from=venv-full --chown=app:app /home/app/.cache /home/app/.cache
COPY --from=code /app /app
