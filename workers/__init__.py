"""Prefect worker types of ai-video-processor (registered as a Prefect collection)."""

from workers.warm import WarmWorker

__all__ = ["WarmWorker"]
