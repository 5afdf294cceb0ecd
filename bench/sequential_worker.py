"""A seed-style sequential worker: one SQS message at a time, in one process, no Prefect runs.

    receive one message → parse the S3 event → prepare audio → transcribe each chunk,
    one after another → gate → summarise → store the result → DONE callback → delete

It runs the same stage functions as the `process-video` flow (`video_processor.stages`)
with the same engines, built the same way from the same Prefect blocks
(`flows.engines`), and the same outbox for the callback; only the orchestration differs.
A job that fails gets its FAILED callback and its message is deleted, as a plain worker
would. It is the baseline of `bench.throughput` (which starts it with the stack's
environment); it prints ``ready`` once its clients exist, then one line per job, and
runs until SIGTERM/SIGINT (the message in hand is finished first).

Run: ``python -m bench.sequential_worker --queue-url URL``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prefect_aws import AwsCredentials

from blocks import BackendCallback, load_block
from flows.engines import (
    build_stt_engine,
    build_summarizer,
    resolve_llm_engine,
    resolve_stt_engine,
)
from video_processor import outbox, s3, stages
from video_processor.config import Settings, SttEngineName, load_settings
from video_processor.events import MessageParseError, parse_message_body
from video_processor.llm.base import Summarizer
from video_processor.llm.gate import screen_for_summary, transcript_to_store
from video_processor.models import AudioOptions, JobContext, StageTimings
from video_processor.stt.base import SpeechToText, WholeMedia

WAIT_TIME_S = 1
VISIBILITY_TIMEOUT_S = 300


@dataclass
class SequentialWorker:
    settings: Settings
    queue_url: str
    sqs: Any
    s3: Any
    stt: SpeechToText
    stt_engine: SttEngineName
    summarizer: Summarizer
    backend: Any

    @classmethod
    def build(cls, settings: Settings, queue_url: str) -> SequentialWorker:
        aws = load_block(AwsCredentials, settings.blocks.aws_credentials)
        stt_engine = resolve_stt_engine(settings)  # CLOVA CSR in the local stack
        stt = build_stt_engine(stt_engine, settings.stt_language, settings)
        if isinstance(stt, WholeMedia):
            raise SystemExit(f"the sequential worker transcribes chunks; {stt.name} has none")
        return cls(
            settings=settings,
            queue_url=queue_url,
            sqs=aws.get_client("sqs"),
            s3=aws.get_s3_client(),
            stt=stt,
            stt_engine=stt_engine,
            summarizer=build_summarizer(resolve_llm_engine(settings), settings),
            backend=load_block(BackendCallback, settings.blocks.backend).get_client(),
        )

    def receive_one(self) -> dict[str, Any] | None:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=WAIT_TIME_S,
            VisibilityTimeout=VISIBILITY_TIMEOUT_S,
        ).get("Messages", [])
        return messages[0] if messages else None

    def handle(self, message: dict[str, Any]) -> list[str]:
        """Process every video the message announces; returns the job states reached."""
        try:
            parsed = parse_message_body(message["Body"])
        except MessageParseError:
            parsed = None
        outcomes = []
        for obj in parsed.objects if parsed else []:
            job = JobContext.from_object(obj)
            if job is not None:
                outcomes.append(self.process(job))
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return outcomes

    def process(self, job: JobContext) -> str:
        started = time.monotonic()
        bucket = self.settings.result_bucket_name
        try:
            manifest = stages.prepare_audio(
                self.s3, job, work_bucket=bucket, options=AudioOptions.from_settings(self.settings)
            )
            stt_started = time.monotonic()
            parts = [
                stages.transcribe_chunk(self.s3, self.stt, bucket, chunk)
                for chunk in manifest.chunks
            ]
            transcript = stages.join_chunks(
                self.stt_engine, self.settings.stt_language, manifest.chunks, parts
            )
            stt_ms = int((time.monotonic() - stt_started) * 1000)
            screened = screen_for_summary(transcript, manifest.audio_duration_s, self.settings)
            llm_started = time.monotonic()
            summary = self.summarizer.summarize(screened.transcript)
            timings = StageTimings(
                download_ms=manifest.download_ms,
                ffmpeg_ms=manifest.ffmpeg_ms,
                stt_ms=stt_ms,
                llm_ms=int((time.monotonic() - llm_started) * 1000),
            )
            duration_ms = int((time.monotonic() - started) * 1000)
            stored = transcript_to_store(transcript, self.settings)
            result = stages.build_result(job, manifest, stored, summary, timings, duration_ms)
            keys = stages.store_result(self.s3, bucket, job, result)
            self.send(job, stages.done_callback(result, keys))
            s3.delete_prefix(self.s3, bucket, job.work_prefix)
            return "DONE"
        except Exception as exc:
            self.send(job, stages.failed_callback(job, exc, fallback="sequential worker error"))
            return f"FAILED {exc!r}"

    def send(self, job: JobContext, body: Any) -> None:
        bucket = self.settings.result_bucket_name
        delivery = outbox.record(self.s3, bucket, job, body)
        if delivery.delivered_at is None:
            outbox.deliver(self.s3, bucket, self.backend, delivery)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sequential_worker", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--queue-url", required=True)
    args = parser.parse_args(argv)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    signal.signal(signal.SIGINT, lambda _signum, _frame: stopping.set())
    worker = SequentialWorker.build(load_settings(), args.queue_url)
    print("ready", flush=True)
    done = 0
    while not stopping.is_set():
        message = worker.receive_one()
        if message is None:
            continue
        began = time.monotonic()
        for outcome in worker.handle(message):
            done += 1
            seconds = round(time.monotonic() - began, 2)
            print(json.dumps({"job": done, "outcome": outcome, "s": seconds}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
