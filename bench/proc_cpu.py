"""CPU seconds of process trees, read from /proc (Linux), split into orchestration and media.

A tree's CPU at one instant is the sum, over its live processes, of their own time
(utime + stime) and of their reaped children's time (cutime + cstime): a process that
ends during a measurement is reaped by its parent, whose cutime/cstime then holds all of
its time (and its own reaped children's). The CPU a tree spent over a phase is the
difference of two such sums, taken before and after the phase.

"Media" is the CPU of ffmpeg/ffprobe (the work itself, not orchestration). A
`CpuSampler` polls the trees every `interval_s` while the phase runs and keeps, for each
process, its last stat and whether a child that is not ffmpeg/ffprobe was seen under it
in two samples. The reaped-children time (cutime + cstime) a process gained over the
phase is media unless such a child was seen: the pipeline starts no other subprocesses,
and the orchestration's own children (flow-run processes under the worker) live for
seconds, so the sampler sees them many times, while an ffmpeg caught between fork and
exec (still under its parent's name) is renamed or gone by the next sample. A live
ffmpeg/ffprobe at the end counts as media with its own time.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
MEDIA_COMMANDS = frozenset({"ffmpeg", "ffprobe"})
ORCHESTRATOR_SIGHTINGS = 2
PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/<pid>/stat this accounting uses (times in seconds)."""

    pid: int
    comm: str
    state: str
    ppid: int
    utime: float
    stime: float
    cutime: float
    cstime: float
    starttime: int  # clock ticks after boot: tells a reused pid apart

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.starttime)

    @property
    def own_s(self) -> float:
        return self.utime + self.stime

    @property
    def children_s(self) -> float:
        return self.cutime + self.cstime

    @property
    def total_s(self) -> float:
        return self.own_s + self.children_s

    @property
    def is_media(self) -> bool:
        return self.comm in MEDIA_COMMANDS


def parse_stat(line: str, ticks: int = CLOCK_TICKS) -> ProcStat:
    """Parse one /proc/<pid>/stat line (`comm` may hold spaces and parentheses)."""
    head, _, tail = line.strip().rpartition(")")
    pid, _, comm = head.partition(" (")
    fields = tail.split()  # fields[0] is field 3 (state) of proc(5)
    if not pid or len(fields) < 20:
        raise ValueError(f"not a /proc stat line: {line[:80]!r}")

    def seconds(number: int) -> float:
        return int(fields[number - 3]) / ticks

    return ProcStat(
        pid=int(pid),
        comm=comm,
        state=fields[0],
        ppid=int(fields[1]),
        utime=seconds(14),
        stime=seconds(15),
        cutime=seconds(16),
        cstime=seconds(17),
        starttime=int(fields[22 - 3]),
    )


def read_stat(pid: int) -> ProcStat | None:
    try:
        return parse_stat((PROC / str(pid) / "stat").read_text())
    except (OSError, ValueError):
        return None


def command_label(pid: int, comm: str) -> str:
    """What a process runs, briefly: its command name, and the module after ``-m``."""
    try:
        words = [word.decode(errors="replace") for word in _cmdline(pid)]
    except OSError:
        return comm
    if "-m" in words[:-1]:
        return f"{comm} -m {words[words.index('-m') + 1]}"
    return comm


def _cmdline(pid: int) -> list[bytes]:
    return [word for word in (PROC / str(pid) / "cmdline").read_bytes().split(b"\0") if word]


def all_stats() -> dict[int, ProcStat]:
    """Every process now, by pid."""
    stats = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None:
                stats[stat.pid] = stat
    return stats


def tree(root: int, stats: Mapping[int, ProcStat]) -> list[ProcStat]:
    """The root and its live descendants (empty when the root is gone)."""
    if root not in stats:
        return []
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found, pending = [stats[root]], [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(stats[child])
            pending.append(child)
    return found


Snapshot = dict[str, list[ProcStat]]


def snapshot(roots: Mapping[str, int]) -> Snapshot:
    """The trees of the named roots, read at (nearly) one instant."""
    stats = all_stats()
    return {name: tree(pid, stats) for name, pid in roots.items()}


@dataclass
class RoleCpu:
    """What one tree spent over a phase, in CPU seconds."""

    total_s: float
    media_s: float

    @property
    def orchestration_s(self) -> float:
        return max(0.0, self.total_s - self.media_s)


@dataclass
class CpuSampler:
    """Samples the trees of `roots` until stopped; see the module docstring."""

    roots: dict[str, int]
    interval_s: float = 0.25
    before: Snapshot = field(default_factory=dict)
    after: Snapshot = field(default_factory=dict)
    # Per process (pid, starttime) seen in a tree: its role, its last stat, and whether
    # a child other than ffmpeg/ffprobe was seen under it in two samples or more (once
    # may be a child between fork and exec, still bearing its parent's name).
    last: dict[tuple[int, int], tuple[str, ProcStat]] = field(default_factory=dict)
    orchestrates: set[tuple[int, int]] = field(default_factory=set)
    sightings: Counter[tuple[int, int]] = field(default_factory=Counter)
    labels: dict[tuple[int, int], str] = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.before = snapshot(self.roots)
        self._observe(self.before)
        self._thread = threading.Thread(target=self._loop, name="cpu-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, RoleCpu]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.after = snapshot(self.roots)
        self._observe(self.after)
        return self.result()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._observe(snapshot(self.roots))

    def _observe(self, trees: Snapshot) -> None:
        self.samples += 1
        for role, members in trees.items():
            by_pid = {member.pid: member for member in members}
            for member in members:
                if member.key not in self.last:
                    self.labels[member.key] = command_label(member.pid, member.comm)
                self.last[member.key] = (role, member)
                parent = by_pid.get(member.ppid)
                if parent is not None and not member.is_media:
                    self.sightings[member.key] += 1
                    if self.sightings[member.key] >= ORCHESTRATOR_SIGHTINGS:
                        self.orchestrates.add(parent.key)

    def result(self) -> dict[str, RoleCpu]:
        return account(self.before, self.after, self.last, self.orchestrates)

    def started(self) -> dict[str, dict[str, int]]:
        """Per role, the processes seen that were not there at the start, by command."""
        existing = {member.key for members in self.before.values() for member in members}
        counts: dict[str, Counter[str]] = {role: Counter() for role in self.roots}
        for key, (role, _stat) in self.last.items():
            if key not in existing:
                counts[role][self.labels.get(key, "?")] += 1
        return {role: dict(counter.most_common()) for role, counter in counts.items()}


def tree_total(members: Iterable[ProcStat]) -> float:
    return sum(member.total_s for member in members)


def account(
    before: Snapshot,
    after: Snapshot,
    last: Mapping[tuple[int, int], tuple[str, ProcStat]],
    orchestrates: Collection[tuple[int, int]],
) -> dict[str, RoleCpu]:
    """Per role: CPU over the phase, and the part of it that was ffmpeg/ffprobe."""
    result = {}
    for role in after:
        start = {member.key: member for member in before.get(role, [])}
        end = {member.key: member for member in after[role]}
        total = tree_total(end.values()) - tree_total(start.values())
        media = 0.0
        for key, (seen_role, stat) in last.items():
            if seen_role != role:
                continue
            baseline = start.get(key)
            if stat.is_media:
                # A live ffmpeg at the end (its reaped part is its parent's children_s).
                if key in end:
                    media += end[key].own_s - (baseline.own_s if baseline else 0.0)
            elif key not in orchestrates:
                media += stat.children_s - (baseline.children_s if baseline else 0.0)
        result[role] = RoleCpu(total_s=total, media_s=min(media, max(total, 0.0)))
    return result
