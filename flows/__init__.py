"""Prefect flows: thin wrappers that add retries, caching, names and artifacts to stages."""
