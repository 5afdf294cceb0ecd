"""Stage logic of the video pipeline: plain, typed functions that know nothing of Prefect."""
