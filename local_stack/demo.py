"""`make demo`: a Korean sample video goes through the running local stack.

Uploads the video as a user would, waits for the backend's callback, then prints the
transcript, the summary, the stage timings and where to watch the run in the Prefect UI.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

from local_stack.sample_video import DEFAULT_KOREAN_TEXT, korean_cer, make_korean_speech_video
from local_stack.stack import aws_client, read_stack_env

DEMO_USER = "demo-user"
CALLBACK_TIMEOUT_S = 600.0
POLL_INTERVAL_S = 1.0


def wait_for_final_state(backend_url: str, job_id: str, timeout_s: float) -> dict[str, object]:
    """Poll the reference backend until the job has a final state."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = httpx.get(f"{backend_url}/internal/jobs/{job_id}", timeout=5)
        if response.status_code == httpx.codes.OK and response.json().get("state"):
            return dict(response.json())
        time.sleep(POLL_INTERVAL_S)
    raise TimeoutError(f"no callback for job {job_id} within {timeout_s:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.demo")
    parser.add_argument("--dir", type=Path, default=Path(".local"))
    args = parser.parse_args()
    env = read_stack_env(args.dir.resolve())
    job_id = f"demo-{int(time.time())}"
    key = f"videos/{DEMO_USER}/{job_id}.mp4"

    with tempfile.TemporaryDirectory() as work:
        video = make_korean_speech_video(Path(work) / "sample.mp4")
        started = time.monotonic()
        aws_client(env, "s3").upload_file(str(video), env["VIDEO_BUCKET_NAME"], key)
    print(f"uploaded s3://{env['VIDEO_BUCKET_NAME']}/{key}; waiting for the callback...")

    job = wait_for_final_state(env["BACKEND_BASE_URL"], job_id, CALLBACK_TIMEOUT_S)
    final = job["final"]
    assert isinstance(final, dict)
    print(f"\ncallback: {final['status']} after {time.monotonic() - started:.1f} s")
    if final["status"] != "DONE":
        print(f"error: {final['error_code']}: {final['error_message']}")
        return 1
    result = json.loads(
        aws_client(env, "s3")
        .get_object(Bucket=env["RESULT_BUCKET_NAME"], Key=final["result_s3_key"])["Body"]
        .read()
    )
    meta = result["meta"]
    text = result["transcript_text"]
    print(f"\ntranscript ({meta['stt_engine']}, {meta['language']}):\n  {text}")
    print(f"  the sample's script: {DEFAULT_KOREAN_TEXT}")
    print(f"  character error rate: {korean_cer(DEFAULT_KOREAN_TEXT, text):.2f}")
    flags = ", ".join(meta["flags"]) or "none"
    print(f"  low-confidence share {meta['low_confidence_share']:.2f}; flags: {flags}")
    print(f"\nsummary ({meta['model']}):\n  {result['summary']['text']}")
    print("\nstage timings (ms):")
    for name, value in meta["stages"].items():
        print(f"  {name:<12}{value:>8}")
    print(f"  {'flow total':<12}{meta['duration_ms']:>8}")
    print(f"\nresult: s3://{env['RESULT_BUCKET_NAME']}/{final['result_s3_key']}")
    print(f"Prefect UI: {env['PREFECT_UI_URL']}/runs")
    print("stop the stack with: make down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
