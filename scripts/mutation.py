"""Mutation testing of the pure modules, each against its own unit tests (`make mutation`).

Mutants come from poodle's mutators, which change the whole module: operators,
comparisons, numbers, strings, keywords, calls, returns and decorators, module-level
constants and decorated functions (properties, validators) included. Each mutant is run
in a child forked from this process, which has already imported the third-party
libraries the tests need: the child puts the mutated module in ``sys.modules`` and runs
pytest on the module's tests. A mutant is killed when the tests fail, error or time out.

Prints a table per module, writes it with the surviving mutants to
``bench/results/mutation.json``, and exits 1 when a core module scores under 85 %.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib
import importlib.util
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
from poodle import __version__ as poodle_version
from poodle.config import build_config
from poodle.data_types import PoodleWork
from poodle.mutate import initialize_mutators

ROOT = Path(__file__).resolve().parent.parent
THRESHOLD = 0.85
# Packages of this project: imported fresh in every child, never kept from the warm-up.
FIRST_PARTY = ("video_processor", "tests", "local_stack", "flows", "blocks", "sensors", "workers")
PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "--no-header", "-W", "ignore"]


@dataclass(frozen=True)
class Target:
    module: str
    tests: tuple[str, ...]
    core: bool = False


TARGETS = (
    Target("video_processor/llm/gate.py", ("tests/llm/test_gate.py",), core=True),
    Target("video_processor/models.py", ("tests/test_models.py",), core=True),
    Target("video_processor/events.py", ("tests/test_events.py",), core=True),
    Target("video_processor/signing.py", ("tests/test_signing.py",), core=True),
    Target("video_processor/outbox.py", ("tests/test_outbox.py",), core=True),
    Target("video_processor/subtitles.py", ("tests/test_subtitles.py",)),
    Target("video_processor/errors.py", ("tests/test_errors.py",)),
    Target("video_processor/llm/pii.py", ("tests/llm/test_pii.py",)),
    Target("video_processor/llm/tokens.py", ("tests/llm/test_tokens.py",)),
    Target("video_processor/logs.py", ("tests/test_logs.py",)),
)


@dataclass(frozen=True)
class Mutant:
    line: int
    col: int
    end_line: int
    end_col: int
    mutator: str
    text: str

    def apply(self, lines: list[str]) -> str:
        """The module's source with this mutant; ast offsets count UTF-8 bytes."""
        first = lines[self.line - 1].encode()
        last = lines[self.end_line - 1].encode()
        changed = (first[: self.col] + self.text.encode() + last[self.end_col :]).decode()
        return "".join([*lines[: self.line - 1], changed, *lines[self.end_line :]])

    def describe(self, lines: list[str]) -> str:
        before = "".join(lines[self.line - 1 : self.end_line]).strip()
        return f"line {self.line} {self.mutator}: {before[:120]!r} -> {self.text[:120]!r}"


@dataclass
class ModuleResult:
    module: str
    tests: list[str]
    core: bool
    mutants: int = 0
    killed: int = 0
    timed_out: int = 0
    survived: int = 0
    seconds: float = 0.0
    source_sha256: str = ""
    # Only the survivors of an earlier run of the same source were run again.
    rechecked_from: str | None = None
    survivors: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.killed / self.mutants if self.mutants else 1.0


def mutants_of(path: Path) -> list[Mutant]:
    config = build_config(
        (path.parent,), None, 0, 0, None, (), (), (), None, None, None
    )  # poodle's defaults: every builtin mutator
    work = PoodleWork(config)
    tree = ast.parse(path.read_bytes(), str(path))
    found: set[Mutant] = set()
    for mutator in initialize_mutators(work):
        for mutation in mutator.create_mutations(parsed_ast=tree, file_lines=[]):
            found.add(
                Mutant(
                    mutation.lineno,
                    mutation.col_offset,
                    mutation.end_lineno,
                    mutation.end_col_offset,
                    mutation.mutator_name,
                    mutation.text,
                )
            )
        tree = ast.parse(path.read_bytes(), str(path))  # mutators may change the tree
    return sorted(found, key=lambda m: (m.line, m.col, m.mutator, m.text))


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def warm_up(targets: list[Target]) -> None:
    """Import every test module once, then forget this project's modules: the children
    inherit the third-party imports and import the project afresh."""
    sys.path.insert(0, str(ROOT))
    importlib.import_module("tests.conftest")
    for target in targets:
        for test in target.tests:
            importlib.import_module(module_name(test))
    for name in [n for n in sys.modules if n.split(".")[0] in FIRST_PARTY or n == "conftest"]:
        del sys.modules[name]


def run_child(target: Target, source: str | None) -> NoReturn:
    """In a forked child: install the (mutated) module, run its tests, exit with pytest's code."""
    os.setpgid(0, 0)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    code = 3
    try:
        if source is not None:
            name = module_name(target.module)
            parent, _, leaf = name.rpartition(".")
            package = importlib.import_module(parent)
            spec = importlib.util.spec_from_file_location(name, ROOT / target.module)
            assert spec is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            setattr(package, leaf, module)
            exec(compile(source, str(ROOT / target.module), "exec"), module.__dict__)
        code = int(pytest.main([*target.tests, *PYTEST_ARGS]))
    finally:
        os._exit(code)


def run_all(target: Target, sources: list[str | None], jobs: int, timeout: float) -> list[int]:
    """Exit codes of one child per source (None: unmutated), ``jobs`` at a time; -9 is a
    timeout."""
    codes: dict[int, int] = {}
    running: dict[int, tuple[int, float]] = {}  # pid -> (index, deadline)
    pending = list(enumerate(sources))
    while pending or running:
        while pending and len(running) < jobs:
            index, source = pending.pop(0)
            pid = os.fork()
            if pid == 0:
                run_child(target, source)
            running[pid] = (index, time.monotonic() + timeout)
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid in running:
            codes[running.pop(pid)[0]] = os.waitstatus_to_exitcode(status)
            continue
        for pid, (index, deadline) in list(running.items()):
            if time.monotonic() > deadline:
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                codes[index] = -9
                del running[pid]
        time.sleep(0.01)
    return [codes[index] for index in range(len(sources))]


def test_module(target: Target, jobs: int, earlier: dict[str, Any] | None) -> ModuleResult:
    """Every mutant of the module, or, given an earlier report of the same source, only the
    mutants that survived it (tests are only ever added: a killed mutant stays killed)."""
    started = time.monotonic()
    path = ROOT / target.module
    lines = path.read_text("utf-8").splitlines(keepends=True)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    mutants = mutants_of(path)
    result = ModuleResult(target.module, list(target.tests), target.core, mutants=len(mutants))
    result.source_sha256 = sha
    if earlier is not None and earlier.get("source_sha256") == sha:
        survivors = set(earlier["survivors"])
        result.rechecked_from = earlier["report"]
        result.killed = sum(m.describe(lines) not in survivors for m in mutants)
        mutants = [m for m in mutants if m.describe(lines) in survivors]
    clean_started = time.monotonic()
    [clean] = run_all(target, [None], 1, timeout=600)
    if clean != 0:
        sys.exit(f"{target.module}: its tests {' '.join(target.tests)} fail unmutated ({clean})")
    timeout = max(10.0, 10 * (time.monotonic() - clean_started))
    codes = run_all(target, [m.apply(lines) for m in mutants], jobs, timeout)
    for mutant, code in zip(mutants, codes, strict=True):
        if code == 0:
            result.survived += 1
            result.survivors.append(mutant.describe(lines))
        else:
            result.killed += 1
            result.timed_out += code == -9
    result.seconds = round(time.monotonic() - started, 1)
    return result


def table(results: list[ModuleResult]) -> str:
    rows = [f"{'module':<34} {'mutants':>7} {'killed':>6} {'survived':>8} {'score':>6}  core"]
    for r in results:
        rows.append(
            f"{r.module:<34} {r.mutants:>7} {r.killed:>6} {r.survived:>8} {r.score:>6.1%}"
            f"  {'yes' if r.core else ''}"
        )
    return "\n".join(rows)


def write_report(path: Path, results: list[ModuleResult], seconds: float) -> None:
    report: dict[str, Any] = {
        "tool": f"poodle {poodle_version} mutators, forked pytest runs (scripts/mutation.py)",
        "threshold": THRESHOLD,
        "seconds": round(seconds, 1),
        "modules": [{**asdict(r), "score": round(r.score, 4)} for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", help="only this module (repeatable)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/mutation.json")
    parser.add_argument("--show-survivors", action="store_true")
    parser.add_argument(
        "--recheck", type=Path, help="an earlier report: run only its survivors where unchanged"
    )
    args = parser.parse_args(argv)
    earlier: dict[str, dict[str, Any]] = {}
    if args.recheck:
        for module in json.loads(args.recheck.read_text())["modules"]:
            earlier[module["module"]] = {**module, "report": str(args.recheck)}
    targets = [t for t in TARGETS if not args.module or t.module in args.module]
    os.chdir(ROOT)
    started = time.monotonic()
    warm_up(targets)
    results = []
    for target in targets:
        result = test_module(target, args.jobs, earlier.get(target.module))
        results.append(result)
        print(
            f"{target.module}: {result.score:.1%} of {result.mutants} killed ({result.seconds} s)"
        )
        if args.show_survivors:
            print("\n".join(f"  survived: {s}" for s in result.survivors))
        write_report(args.output, results, time.monotonic() - started)  # kept if interrupted
    print(table(results))
    low = [r.module for r in results if r.core and r.score < THRESHOLD]
    if low:
        print(f"under {THRESHOLD:.0%}: {', '.join(low)}")
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
