"""CPU accounting of process trees from /proc (no stack, no timing)."""

from __future__ import annotations

import os

import pytest

from bench.proc_cpu import CpuSampler, ProcStat, RoleCpu, account, parse_stat, read_stat

# /proc/<pid>/stat of a flow-run engine: a comm with a space and a ")" in it.
STAT_LINE = (
    "4242 (python (x) y) S 4200 4242 4200 0 -1 4194560 1000 0 0 0 "
    "250 30 120 15 20 0 3 0 987654 100000000 5000 18446744073709551615 "
    "0 0 0 0 0 0 0 16781312 17410 0 0 0 17 1 0 0 0 0 0"
)


def stat(pid, ppid, comm="python", own=(0.0, 0.0), children=(0.0, 0.0), start=1):
    utime, stime = own
    cutime, cstime = children
    return ProcStat(pid, comm, "S", ppid, utime, stime, cutime, cstime, start)


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


def test_a_child_seen_once_under_its_parents_name_is_not_an_orchestrator():
    """An ffmpeg between fork and exec still bears the worker's name for an instant."""
    worker = stat(30, 1, comm="prefect")
    forked = stat(31, 30, comm="prefect")
    sampler = CpuSampler({"worker": 30})
    sampler._observe({"worker": [worker, forked]})
    assert sampler.orchestrates == set()
    sampler._observe({"worker": [worker, forked]})  # still there a sample later: a process
    assert sampler.orchestrates == {worker.key}
