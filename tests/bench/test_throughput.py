"""The throughput bench's pure parts: /proc accounting and the report (no stack, no timing)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from bench.proc_cpu import ProcStat, RoleCpu, account, parse_stat, read_stat
from bench.throughput import (
    CLAUDE_LIMIT,
    CSR_LIMIT,
    api_calls,
    build_report,
    completion_seconds,
    cpu_figures,
    engine_bound,
    engine_seconds_per_job,
    per_run,
    pick_headline,
    print_table,
    quantile,
    slot_utilisation,
    sustained_per_minute,
    wall_seconds,
)

# /proc/<pid>/stat of a flow-run engine: a comm with a space and a ")" in it.
STAT_LINE = (
    "4242 (python (x) y) S 4200 4242 4200 0 -1 4194560 1000 0 0 0 "
    "250 30 120 15 20 0 3 0 987654 100000000 5000 18446744073709551615 "
    "0 0 0 0 0 0 0 16781312 17410 0 0 0 17 1 0 0 0 0 0"
)


def stat(
    pid: int,
    ppid: int,
    comm: str = "python",
    own: tuple[float, float] = (0.0, 0.0),
    children: tuple[float, float] = (0.0, 0.0),
    start: int = 1,
) -> ProcStat:
    return ProcStat(pid, comm, "S", ppid, *own, *children, start)


def test_a_stat_line_is_parsed_in_seconds():
    parsed = parse_stat(STAT_LINE, ticks=100)
    assert (parsed.pid, parsed.comm, parsed.state, parsed.ppid) == (4242, "python (x) y", "S", 4200)
    assert (parsed.utime, parsed.stime, parsed.cutime, parsed.cstime) == (2.5, 0.3, 1.2, 0.15)
    assert parsed.starttime == 987654
    assert parsed.own_s == pytest.approx(2.8)
    assert parsed.total_s == pytest.approx(4.15)
    assert not parsed.is_media


def test_a_truncated_line_is_refused():
    with pytest.raises(ValueError):
        parse_stat("4242 (python) S 1 2 3")


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="Linux /proc only")
def test_this_process_can_be_read():
    own = read_stat(os.getpid())
    assert own is not None and own.pid == os.getpid() and own.own_s > 0


def test_ffmpeg_reaped_by_a_flow_run_is_media_not_orchestration():
    worker_before = stat(10, 1, own=(5.0, 0.0))
    before = {"worker": [worker_before]}
    # During the phase: one engine ran ffmpeg (seen alive) and exited; another still runs.
    engine_done = stat(11, 10, own=(3.0, 0.5), children=(0.8, 0.2))
    engine_live = stat(12, 10, own=(2.0, 0.0), children=(0.4, 0.0))
    ffmpeg = stat(13, 12, comm="ffmpeg", own=(0.3, 0.0))
    # The worker reaped engine 11 (its own and its ffmpeg's time are in its cutime).
    worker_after = stat(10, 1, own=(6.0, 0.0), children=(4.5, 0.0))
    after = {"worker": [worker_after, engine_live, ffmpeg]}
    last = {p.key: ("worker", p) for p in (worker_after, engine_done, engine_live, ffmpeg)}
    # The sampler saw the engines (not media) under the worker, only ffmpeg under engines.
    cpu = account(before, after, last, {worker_after.key})["worker"]
    # 1 (worker) + 4.5 (engine 11 reaped) + 2.4 (engine 12) + 0.3 (live ffmpeg)
    assert cpu.total_s == pytest.approx(8.2)
    assert cpu.media_s == pytest.approx(1.0 + 0.4 + 0.3)
    assert cpu.orchestration_s == pytest.approx(6.5)


def test_reaped_time_is_orchestration_under_a_process_seen_with_other_children():
    root = stat(20, 1, children=(2.0, 0.0))
    last = {root.key: ("server", root)}
    assert account({"server": []}, {"server": [root]}, last, {root.key})["server"] == RoleCpu(
        total_s=2.0, media_s=0.0
    )
    # No child but ffmpeg/ffprobe ever seen under it: its reaped time is media.
    assert account({"server": []}, {"server": [root]}, last, set())["server"] == RoleCpu(
        total_s=2.0, media_s=2.0
    )


def test_wall_time_runs_to_the_last_accepted_callback():
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def callback(seconds, accepted=True):
        at = (start + timedelta(seconds=seconds)).isoformat()
        return {"received_at": at, "accepted": accepted}

    records = [
        {"callbacks": [callback(30)]},
        {"callbacks": [callback(45), callback(90, accepted=False)]},
        {"callbacks": []},
    ]
    assert wall_seconds(start, records) == 45
    assert wall_seconds(start, [{"callbacks": []}]) is None


def test_engine_seconds_and_the_bound_of_the_limits():
    stats = {
        "clova": {"requests": 20, "audio_seconds": 600.0},
        "anthropic": {"messages": 10, "output_tokens": 1230},
    }
    seconds = engine_seconds_per_job(stats, 10)
    assert seconds == {"clova_csr": 10.0, "claude": 3.85}
    # 8 CSR slots of 10 s each: 48 jobs/min; 4 Claude slots of 3.85 s: 62.3 jobs/min.
    assert engine_bound({CSR_LIMIT: 8, CLAUDE_LIMIT: 4}, seconds) == 48.0
    assert engine_seconds_per_job({"clova": {}, "anthropic": {}}, 10) is None
    # 100 CSR seconds over 8 slots × 50 s: a quarter of what the limit allows.
    mode = {"fakes": stats, "wall_s": 50.0}
    limits = {CSR_LIMIT: 8, CLAUDE_LIMIT: 4}
    assert slot_utilisation(limits, mode) == {"clova_csr": 0.25, "claude": 0.19}


def test_completions_are_each_jobs_first_accepted_callback_sorted():
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def at(seconds):
        return (start + timedelta(seconds=seconds)).isoformat()

    records = [
        {"callbacks": [{"received_at": at(50), "accepted": True}]},
        {"callbacks": [{"received_at": at(20), "accepted": False}]},
        {
            "callbacks": [
                {"received_at": at(40), "accepted": True},
                {"received_at": at(45), "accepted": True},
            ]
        },
    ]
    assert completion_seconds(start, records) == [40.0, 50.0]


def test_the_sustained_rate_leaves_out_the_ramp_and_the_tail():
    # 10 jobs: a slow first one (ramp), 8 one every 6 s, a slow last one (tail).
    completions = [30.0, *[36.0 + 6 * i for i in range(8)], 200.0]
    # 10th percentile = the 1st completion (30 s), 90th = the 9th (78 s): 8 in 48 s.
    assert sustained_per_minute(completions) == 10.0
    # The whole batch over 200 s would be 3 jobs/min: the tail weighs on it alone.
    assert sustained_per_minute([1.0, 2.0]) is None
    assert sustained_per_minute([5.0, 5.0, 5.0]) is None


def test_quantiles_by_nearest_rank():
    assert quantile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert quantile(list(range(1, 11)), 0.9) == 9
    assert quantile([], 0.5) is None


def test_api_calls_are_counted_from_access_log_lines_by_path_template():
    run = "0b6f3c1e-98f4-4c1b-9a57-1f0d2c3b4a59"
    lines = [
        'INFO:     127.0.0.1:50432 - "POST /api/flow_runs/filter HTTP/1.1" 200 OK',
        f'INFO:     127.0.0.1:50433 - "POST /api/flow_runs/{run}/set_state HTTP/1.1" 201',
        f'INFO:     127.0.0.1:50434 - "GET /api/flow_runs/{run}?x=1 HTTP/1.1" 200 OK',
        "14:02:11.123 | INFO | prefect.server - a server log line, not a request",
    ]
    calls = api_calls(lines)
    assert calls == {
        "POST /api/flow_runs/filter": 1,
        "POST /api/flow_runs/{id}/set_state": 1,
        "GET /api/flow_runs/{id}": 1,
    }
    assert per_run(calls, 2) == {
        "per_run": 1.5,
        "total": 3,
        "top_per_run": {
            "POST /api/flow_runs/filter": 0.5,
            "POST /api/flow_runs/{id}/set_state": 0.5,
            "GET /api/flow_runs/{id}": 0.5,
        },
    }


def mode_figures(jobs_per_min, cpu_s_per_job, n=10, sustained=None):
    cpu = {"prefect-server": RoleCpu(total_s=cpu_s_per_job * n, media_s=0.0)}
    return {
        "n": n,
        "done": n,
        "failed": 0,
        "lost": 0,
        "wall_s": round(n / jobs_per_min * 60, 1),
        "jobs_per_min": jobs_per_min,
        "sustained_jobs_per_min": sustained or jobs_per_min,
        **cpu_figures(cpu, n),
        "events": {"per_run": 30.0},
        "api_calls": {"per_run": 40.0},
        "dispatch_s": {"first": 1.2, "median": 9.0, "p90": 20.0},
    }


def test_the_report_puts_the_warm_worker_on_top_with_the_sustained_speedup(capsys):
    sequential = {
        "n": 3,
        "done": 3,
        "wall_s": 45.0,
        "jobs_per_min": 4.0,
        "sustained_jobs_per_min": 4.0,
        "cpu_s_per_job": 0.4,
    }
    modes = {
        "warm": mode_figures(36.0, 1.2, sustained=44.0),
        "process": mode_figures(20.0, 8.0),
    }
    limits = {CSR_LIMIT: 16, CLAUDE_LIMIT: 8}
    report = build_report(sequential, modes, limits, {"stack_start_s": 50.0})
    assert report["mode"] == "warm" and report["target_met"]
    assert report["speedup_vs_sequential"] == 11.0  # sustained 44 / 4
    assert report["speedup_whole_batch"] == 9.0  # 36 / 4
    assert report["orchestration_cpu_s_per_job"] == 1.2
    assert (report["events_per_run"], report["api_calls_per_run"]) == (30.0, 40.0)
    assert report["modes"]["process"]["targets_met"] == {"speedup": False, "cpu": False}
    assert report["limits"] == limits and report["stack_start_s"] == 50.0
    json.dumps(report)  # serialisable as written
    print_table(report)
    table = capsys.readouterr().out
    assert "sequential" in table and "process" in table and "headline: warm" in table


def test_the_warm_worker_is_the_headline_even_when_it_misses_a_target():
    modes = {"process": mode_figures(20.0, 8.0), "warm": mode_figures(30.0, 2.5)}
    assert pick_headline(modes) == "warm"
    assert pick_headline({"process": modes["process"]}) == "process"
