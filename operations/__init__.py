"""Setting up and keeping up a deployment: Prefect blocks, limits, lifecycle rules and the
crash-recovery automations (`python -m operations.bootstrap`).

It sits above the pipeline: it may import `flows`, `blocks` and `video_processor`, and
none of them imports it.
"""
