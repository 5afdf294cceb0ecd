"""The throughput bench's figures: rates, quantiles, CPU, events and API calls per run,
the engines' limits, the report and its table (pure: no stack; see bench.throughput)."""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from prefect.client.schemas.objects import FlowRun

from bench.harness import is_final
from bench.latency_model import ISSUE_MODEL
from bench.proc_cpu import RoleCpu
from video_processor.config import LlmEngineName, SttEngineName, concurrency_limit_name

VIDEO_SECONDS = 60.0
MODEL = ISSUE_MODEL  # CSR 0.5 s + 0.15 s × chunk seconds, Claude 2 s + 15 ms × output tokens
CSR_LIMIT = concurrency_limit_name("stt", SttEngineName.CLOVA_CSR)
CLAUDE_LIMIT = concurrency_limit_name("llm", LlmEngineName.CLAUDE)
TARGET_SPEEDUP = 10.0
TARGET_CPU_S_PER_JOB = 1.5
HEADLINE_MODE = "warm"
SUSTAINED_QUANTILES = (0.1, 0.9)
ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>/\S*) HTTP/[0-9.]+" (?P<status>\d{3})')
ID_IN_PATH = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CPU_ACCOUNTING = (
    "CPU seconds from /proc (utime+stime of live processes plus cutime+cstime of reaped "
    "children) of the Prefect server (and of its PostgreSQL when the stack runs one), the "
    "SQS sensor and the worker that runs the mode's flow runs (the warm worker or the "
    "process worker), with every process they started, from the "
    "first upload until the phase's runs are final and their processes gone; minus "
    "ffmpeg/ffprobe. Includes the stage code inside flow runs; excludes the idle other "
    "worker, moto, the fakes, the backend and the bench."
)
EVENTS_METHOD = (
    "POST /api/events/count-by/event on the stack's Prefect server after the phase: "
    "events_per_run filters any_resource.id on the mode's flow runs "
    "(prefect.flow-run.<id>: the runs' own, their task runs', artifacts', blocks' and "
    "concurrency-limit events), events_in_window_per_run filters only on the phase's "
    "time window (workers, sensor, automations too); both over N."
)
API_CALLS_METHOD = (
    "HTTP requests in the Prefect server's uvicorn access log (the server runs with "
    "PREFECT_SERVER_LOGGING_LEVEL=INFO) written between the first upload and the end of "
    "the phase, over N; by method and path, ids replaced by {id}. Every client is "
    "counted: the flow runs, the workers' and the sensor's polling, and this bench's "
    "check that no run is left active once every callback arrived (one flow-run "
    "filter a second, for a few seconds). Events go over one websocket per process "
    "and are not API calls."
)


def per_minute(jobs: int, seconds: float | None) -> float | None:
    return round(jobs / (seconds / 60), 2) if seconds else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 2) if numerator and denominator else None


def completion_seconds(started_at: datetime, records: Iterable[dict[str, Any]]) -> list[float]:
    """Each job's first accepted final callback, in seconds after the first upload, sorted."""
    times = []
    for record in records:
        accepted = [
            datetime.fromisoformat(callback["received_at"])
            for callback in record.get("callbacks", [])
            if callback.get("accepted")
        ]
        if accepted:
            times.append((min(accepted) - started_at).total_seconds())
    return sorted(times)


def wall_seconds(started_at: datetime, records: Iterable[dict[str, Any]]) -> float | None:
    """From the first upload to the last accepted final callback the backend received."""
    last = None
    for record in records:
        for callback in record.get("callbacks", []):
            if callback.get("accepted"):
                received = datetime.fromisoformat(callback["received_at"])
                last = received if last is None or received > last else last
    return (last - started_at).total_seconds() if last else None


def sustained_per_minute(
    completions: Sequence[float], quantiles: tuple[float, float] = SUSTAINED_QUANTILES
) -> float | None:
    """Completions per minute between the low and the high quantile completion (sorted
    seconds): the rate without the ramp-up and the tail."""
    if len(completions) < 3:
        return None
    first = max(0, math.ceil(quantiles[0] * len(completions)) - 1)
    last = min(len(completions) - 1, math.ceil(quantiles[1] * len(completions)) - 1)
    span = completions[last] - completions[first]
    return round((last - first) / (span / 60), 2) if last > first and span > 0 else None


def quantile(values: Sequence[float], q: float) -> float | None:
    """The value at quantile q of the sorted values (nearest rank)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))], 2)


def api_calls(lines: Iterable[str]) -> Counter[str]:
    """HTTP requests in uvicorn access-log lines, by `METHOD /path` with ids as {id}."""
    calls: Counter[str] = Counter()
    for line in lines:
        found = ACCESS_LINE.search(line)
        if found:
            path = ID_IN_PATH.sub("{id}", found["path"].split("?", 1)[0])
            calls[f"{found['method']} {path}"] += 1
    return calls


def per_run(counts: Counter[str], runs: int, top: int = 15) -> dict[str, Any]:
    """A count's total per run and its largest parts per run."""
    total = sum(counts.values())
    return {
        "per_run": round(total / runs, 1) if runs else None,
        "total": total,
        "top_per_run": {name: round(count / runs, 2) for name, count in counts.most_common(top)}
        if runs
        else {},
    }


def cpu_figures(cpu: dict[str, RoleCpu], jobs: int) -> dict[str, Any]:
    orchestration = sum(role.orchestration_s for role in cpu.values())
    return {
        "orchestration_cpu_s": round(orchestration, 2),
        "orchestration_cpu_s_per_job": round(orchestration / jobs, 3) if jobs else None,
        "media_cpu_s": round(sum(role.media_s for role in cpu.values()), 2),
        "cpu_by_role": {
            name: {
                "total_s": round(role.total_s, 2),
                "media_s": round(role.media_s, 2),
                "orchestration_s": round(role.orchestration_s, 2),
            }
            for name, role in cpu.items()
        },
    }


def meets_targets(mode: dict[str, Any]) -> dict[str, bool]:
    speedup = mode.get("speedup_vs_sequential")
    cpu = mode.get("orchestration_cpu_s_per_job")
    return {
        "speedup": speedup is not None and speedup >= TARGET_SPEEDUP and not mode.get("lost"),
        "cpu": cpu is not None and cpu <= TARGET_CPU_S_PER_JOB,
    }


def pick_headline(modes: dict[str, dict[str, Any]]) -> str:
    """The warm worker (the deployed set-up) when measured, else the first mode."""
    return HEADLINE_MODE if HEADLINE_MODE in modes else next(iter(modes))


def build_report(
    sequential: dict[str, Any],
    modes: dict[str, dict[str, Any]],
    limits: dict[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The report: the headline mode's figures on top, every mode under `modes`."""
    for mode in modes.values():
        mode["speedup_vs_sequential"] = ratio(
            mode["sustained_jobs_per_min"], sequential["sustained_jobs_per_min"]
        )
        mode["speedup_whole_batch"] = ratio(mode["jobs_per_min"], sequential["jobs_per_min"])
        mode["targets_met"] = meets_targets(mode)
    headline = pick_headline(modes)
    chosen = modes[headline]
    return {
        "mode": headline,
        "n": chosen["n"],
        "sustained_jobs_per_min": chosen["sustained_jobs_per_min"],
        "jobs_per_min": chosen["jobs_per_min"],
        "sequential_jobs_per_min": sequential["jobs_per_min"],
        "sequential_sustained_jobs_per_min": sequential["sustained_jobs_per_min"],
        "speedup_vs_sequential": chosen["speedup_vs_sequential"],
        "speedup_whole_batch": chosen["speedup_whole_batch"],
        "orchestration_cpu_s_per_job": chosen["orchestration_cpu_s_per_job"],
        "events_per_run": chosen.get("events", {}).get("per_run"),
        "api_calls_per_run": chosen.get("api_calls", {}).get("per_run"),
        "dispatch_s": chosen.get("dispatch_s"),
        "target": {
            "speedup_vs_sequential_min": TARGET_SPEEDUP,
            "orchestration_cpu_s_per_job_max": TARGET_CPU_S_PER_JOB,
        },
        "target_met": all(chosen["targets_met"].values()),
        "limits": limits,
        "latency_model": MODEL.to_json(),
        "video_seconds": VIDEO_SECONDS,
        "sustained_rate": (
            f"completions between the {SUSTAINED_QUANTILES[0]:.0%} and the "
            f"{SUSTAINED_QUANTILES[1]:.0%} completion (nearest rank) over the time between them"
        ),
        "cpu_counted": CPU_ACCOUNTING,
        "events_counted": EVENTS_METHOD,
        "api_calls_counted": API_CALLS_METHOD,
        "sequential": sequential,
        "modes": modes,
        **extra,
    }


def print_table(report: dict[str, Any]) -> None:
    sequential = report["sequential"]
    header = (
        "mode",
        "n",
        "done",
        "wall s",
        "jobs/min",
        "sustained",
        "× seq",
        "orch CPU-s/job",
        "events/run",
        "API calls/run",
        "dispatch s",
        "target",
    )
    rows: list[list[Any]] = [
        [
            "sequential",
            sequential["n"],
            sequential["done"],
            sequential["wall_s"],
            sequential["jobs_per_min"],
            sequential["sustained_jobs_per_min"],
            1.0,
            sequential.get("cpu_s_per_job"),
            None,
            None,
            None,
            "",
        ]
    ]
    for name, mode in report["modes"].items():
        met = mode["targets_met"]
        verdict = "yes" if all(met.values()) else ", ".join(k for k, ok in met.items() if not ok)
        dispatch = mode.get("dispatch_s") or {}
        rows.append(
            [
                name,
                mode["n"],
                mode["done"],
                mode["wall_s"],
                mode["jobs_per_min"],
                mode["sustained_jobs_per_min"],
                mode["speedup_vs_sequential"],
                mode["orchestration_cpu_s_per_job"],
                mode.get("events", {}).get("per_run"),
                mode.get("api_calls", {}).get("per_run"),
                dispatch.get("first"),
                verdict,
            ]
        )
    table = [header, *[tuple("-" if v is None else str(v) for v in row) for row in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  " + "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    print(
        f"  headline: {report['mode']} — {report['sustained_jobs_per_min']} jobs/min "
        f"sustained ({report['jobs_per_min']} whole batch), "
        f"{report['speedup_vs_sequential']}× sequential ({report['speedup_whole_batch']}× "
        f"whole batch), {report['orchestration_cpu_s_per_job']} orchestration CPU-s/job; "
        f"target met: {report['target_met']}"
    )
    print("  (sequential row: CPU-s/job is the worker's own CPU without ffmpeg, no Prefect;")
    print("   × seq: sustained rates; dispatch s: the first run's upload → Running)")


def rate_figures(
    n: int, started_at: datetime, records: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Done, failed and lost jobs; the whole-batch and the sustained rate."""
    done = sum(record.get("state") == "DONE" for record in records.values())
    wall = wall_seconds(started_at, records.values())
    return {
        "n": n,
        "done": done,
        "failed": sum(record.get("state") == "FAILED" for record in records.values()),
        "lost": n - sum(is_final(record) for record in records.values()),
        "wall_s": round(wall, 1) if wall else None,
        "jobs_per_min": per_minute(done, wall),
        "sustained_jobs_per_min": sustained_per_minute(
            completion_seconds(started_at, records.values())
        ),
    }


def median_run_seconds(runs: list[FlowRun]) -> float | None:
    durations = [
        (run.end_time - run.start_time).total_seconds()
        for run in runs
        if run.start_time and run.end_time
    ]
    return round(statistics.median(durations), 1) if durations else None


def engine_seconds_per_job(stats: dict[str, Any], jobs: int) -> dict[str, float] | None:
    """Modelled engine seconds per job (what one job holds of each concurrency limit)."""
    clova, claude = stats.get("clova", {}), stats.get("anthropic", {})
    if not jobs or not clova.get("requests") or not claude.get("messages"):
        return None
    csr = clova["requests"] * MODEL.csr_base_s + clova.get("audio_seconds", 0.0) * (
        MODEL.csr_per_audio_s
    )
    llm = MODEL.claude_s(claude.get("output_tokens", 0), calls=claude["messages"])
    return {"clova_csr": round(csr / jobs, 2), "claude": round(llm / jobs, 2)}


def slot_utilisation(limits: dict[str, Any], mode: dict[str, Any]) -> dict[str, float] | None:
    """Modelled engine seconds over slot seconds available during the wall time (1 = full)."""
    seconds = engine_seconds_per_job(mode["fakes"], 1)
    if not seconds or not mode["wall_s"]:
        return None
    return {
        "clova_csr": round(seconds["clova_csr"] / (limits[CSR_LIMIT] * mode["wall_s"]), 2),
        "claude": round(seconds["claude"] / (limits[CLAUDE_LIMIT] * mode["wall_s"]), 2),
    }


def engine_bound(limits: dict[str, Any], seconds: dict[str, float] | None) -> float | None:
    """The most jobs per minute the engines' global concurrency limits allow."""
    if not seconds:
        return None
    csr: float = limits[CSR_LIMIT] * 60 / seconds["clova_csr"]
    claude: float = limits[CLAUDE_LIMIT] * 60 / seconds["claude"]
    return round(min(csr, claude), 1)


def recommendation(report: dict[str, Any]) -> str:
    modes = report["modes"]
    parts = [
        f"{name}: {mode['sustained_jobs_per_min']} jobs/min sustained "
        f"({mode['speedup_vs_sequential']}× sequential; whole batch {mode['jobs_per_min']}, "
        f"{mode['speedup_whole_batch']}×), {mode['orchestration_cpu_s_per_job']} "
        f"orchestration CPU-s/job"
        for name, mode in modes.items()
    ]
    met = report["target_met"]
    verdict = f"{report['mode']} {'meets' if met else 'misses'} the targets"
    return f"{verdict}. " + "; ".join(parts) + "."
