"""The chaos bench's count once the stack has settled: each job's outcome and callbacks,
result objects, flow runs, dead-lettered messages, the fakes' requests (see bench.chaos)."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from bench import harness
from bench.harness import FAKES, backend_jobs, is_final, queue_depth, read_all_flow_runs
from local_stack.stack import prefect_client

if TYPE_CHECKING:
    from bench.chaos import Chaos

USER_ID = "chaos"
RESULT_PREFIX = f"results/{USER_ID}/"
VIDEO_SECONDS = 2.5
FAULT_TARGETS = tuple(FAKES.values())
COMPANION_SUFFIXES = (".callback.json", ".srt", ".vtt")
DLQ_PEEKS = 50
DLQ_PEEK_HIDE_S = 30  # each message is read once; the stack is stopped right after
# A job whose run is in one of these is late rather than lost: something will finish it.
ON_ITS_WAY = {
    "SCHEDULED",
    "PENDING",
    "RUNNING",
    "PAUSED",
    "CANCELLING",
    "CRASHED",  # its recovery is on its way
}


def dead_lettered_jobs(sqs: Any, url: str) -> list[str]:
    """The chaos jobs announced by the messages in the dead-letter queue (peeked, not deleted)."""
    found: dict[str, str] = {}
    for _ in range(DLQ_PEEKS):
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=DLQ_PEEK_HIDE_S
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            found[message["MessageId"]] = message["Body"]
    jobs = set()
    for body in found.values():
        try:
            records = json.loads(body).get("Records", [])
        except (ValueError, AttributeError):
            continue
        for record in records:
            key = unquote_plus(str(record.get("s3", {}).get("object", {}).get("key", "")))
            if key.startswith(f"videos/{USER_ID}/"):
                jobs.add(key.rsplit("/", 1)[1].rsplit(".", 1)[0])
    return sorted(jobs)


def count_result_objects(s3: Any, bucket: str) -> tuple[Counter[str], Counter[str]]:
    """Result JSON objects per job, and companion objects by kind."""
    results: Counter[str] = Counter()
    companions: Counter[str] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=RESULT_PREFIX):
        for item in page.get("Contents", []):
            name = item["Key"].removeprefix(RESULT_PREFIX)
            suffix = next((s for s in COMPANION_SUFFIXES if name.endswith(s)), None)
            if suffix is not None:
                companions[suffix] += 1
            elif name.endswith(".json"):
                results[name.removesuffix(".json")] += 1
            else:
                companions["other"] += 1
    return results, companions


def flow_runs_per_job(env: dict[str, str]) -> tuple[Counter[str], dict[str, str]]:
    """Flow runs per job, and the state type of each job's (last) run."""
    with prefect_client(env) as client:
        runs = [run for run in read_all_flow_runs(client) if run.name.startswith("job-")]
    states = {
        run.name.removeprefix("job-"): run.state_type.value if run.state_type else "?"
        for run in runs
    }
    return Counter(run.name.removeprefix("job-") for run in runs), states


def collect(
    chaos: Chaos,
    jobs: list[str],
    duplicated: set[str],
    processing_s: float,
    active_runs: int,
    s3: Any,
    sqs: Any,
) -> dict[str, Any]:
    env = chaos.env
    records = backend_jobs(env)
    done = [job for job in jobs if (records.get(job) or {}).get("state") == "DONE"]
    failed = [job for job in jobs if (records.get(job) or {}).get("state") == "FAILED"]
    unfinished = [job for job in jobs if not is_final(records.get(job))]
    duplicates = []
    resent: dict[str, int] = {}
    for job in jobs:
        callbacks = (records.get(job) or {}).get("callbacks", [])
        accepted = [c for c in callbacks if c.get("accepted")]
        if len(accepted) > 1:
            duplicates.append(
                {"job_id": job, "accepted": [c["body"].get("status") for c in accepted]}
            )
        repeats = sum(bool(c.get("duplicate_delivery")) for c in callbacks)
        if repeats:
            resent[job] = repeats
    results, companions = count_result_objects(s3, env["RESULT_BUCKET_NAME"])
    runs, run_states = flow_runs_per_job(env)
    late = [job for job in unfinished if run_states.get(job) in ON_ITS_WAY]
    lost = [job for job in unfinished if job not in late]
    stats = harness.fake_stats(env)
    fake_stats = {variable: stats[name] for name, variable in FAKES.items()}
    error_codes = Counter(
        str((records[job].get("final") or {}).get("error_code")) for job in failed
    )
    per_job_results = [results.get(job, 0) for job in jobs]
    dead_lettered = dead_lettered_jobs(sqs, env["SQS_DLQ_URL"])
    settings = chaos.settings
    return {
        "submitted": len(jobs),
        "done": len(done),
        "failed": len(failed),
        "late": len(late),
        "lost": len(lost),
        "duplicate_final_callbacks": len(duplicates),
        "max_result_objects_per_job": max(per_job_results, default=0),
        "result_objects_counted": "results/chaos/<job>.json only; companions counted apart",
        "jobs_without_result_object": sum(count == 0 for count in per_job_results),
        "companion_objects": dict(companions),
        "max_flow_runs_per_job": max((runs.get(job, 0) for job in jobs), default=0),
        "lost_by_run_state": dict(Counter(run_states.get(job, "no flow run") for job in lost)),
        "lost_dead_lettered": sorted(set(lost) & set(dead_lettered)),
        "dead_lettered_jobs_without_run": [job for job in dead_lettered if not runs.get(job)],
        "jobs_with_resent_callbacks": len(resent),
        "failed_error_codes": dict(error_codes),
        "wall_time_s": round(processing_s, 1),
        "jobs_per_min": round(len(done) / (processing_s / 60), 2) if processing_s else None,
        "target_met": (
            not failed and not late and not lost and not duplicates and set(per_job_results) == {1}
        ),
        "chaos": {
            "duplicate_events_sent": chaos.duplicates_sent,
            "jobs_duplicated": len(duplicated),
            "sensor_kills": chaos.sensor.kills,
            "worker_kills": chaos.worker.kills,
            "worker_terms": chaos.worker.terms,
            "faults_injected": {
                variable: chaos.faults_injected[env[variable]] for variable in FAULT_TARGETS
            },
            "fake_requests": {
                variable: {
                    key: fake_stats[variable].get(key)
                    for key in ("requests", "faults_applied", "by_status")
                }
                for variable in FAULT_TARGETS
            },
            "flow_runs_still_active": active_runs,
            "queue_depth": queue_depth(sqs, env["SQS_QUEUE_URL"]),
            "dlq_depth": queue_depth(sqs, env["SQS_DLQ_URL"]),
        },
        "settings": {
            "n": settings.n,
            "timeout_s": settings.timeout_s,
            "upload_s": settings.upload_s,
            "duplicate_ratio": settings.duplicate_ratio,
            "fault_ratio": settings.fault_ratio,
            "sensor_kill_s": settings.sensor_kill_s,
            "worker_kills": settings.worker_kills,
            "worker_terms": settings.worker_terms,
            "seed": settings.seed,
            "video_seconds": VIDEO_SECONDS,
            "cpus": os.cpu_count(),
        },
        "problems": {
            "late": {job: run_states.get(job) for job in late[:50]},
            "lost": lost[:50],
            "failed": failed[:50],
            "duplicates": duplicates[:50],
            "result_objects_not_one": [
                {"job_id": job, "objects": results.get(job, 0)}
                for job in jobs
                if results.get(job, 0) != 1
            ][:50],
        },
    }


def print_summary(report: dict[str, Any]) -> None:
    harness.print_figures(
        report,
        (
            "submitted",
            "done",
            "failed",
            "late",
            "lost",
            "duplicate_final_callbacks",
            "max_result_objects_per_job",
            "max_flow_runs_per_job",
            "wall_time_s",
            "jobs_per_min",
            "target_met",
        ),
    )
    print(json.dumps(report["chaos"], indent=2))
