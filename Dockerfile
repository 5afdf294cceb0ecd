# The worker/flow-run and sensor image: slim Python, Debian's ffmpeg, a non-root user.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APP_ROOT=/app \
    PREFECT_DEFAULT_RESULT_STORAGE_BLOCK=s3-bucket/prefect-results \
    PREFECT_RESULTS_PERSIST_BY_DEFAULT=true \
    PREFECT_LOGGING_EXTRA_LOGGERS=video_processor \
    XDG_CACHE_HOME=/home/app/.cache

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 app

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY pyproject.toml prefect.yaml ./
COPY video_processor ./video_processor
COPY flows ./flows
COPY blocks ./blocks
COPY sensors ./sensors
COPY workers ./workers
RUN pip install --no-deps . \
    && python -c "from video_processor.stt.local_whisper import ensure_whisper_model, default_model_dir; ensure_whisper_model(default_model_dir())" \
    && chown -R app:app /home/app

USER app

# The sensor is the long-running process of this image; flow runs are started by the
# Prefect worker with their own command. Unhealthy when the sensor stops polling.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "sensors.health"]

CMD ["python", "-m", "sensors.sqs_sensor"]
