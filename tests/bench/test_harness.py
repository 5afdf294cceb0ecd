"""The bench harness's parts that need no stack: flags, reports, ids, /proc probes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import harness
from bench.harness import Component

linux_only = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux /proc")


def test_every_bench_writes_to_its_own_results_file_and_may_keep_its_stack():
    args = harness.bench_parser("soak", "Soak benchmark: many runs.\n\nMore.").parse_args([])
    assert args.output == harness.RESULTS / "soak.json"
    assert args.output.parent.name == "results" and args.output.parent.parent.name == "bench"
    assert args.keep is False and not hasattr(args, "db")
    parser = harness.bench_parser("chaos", "Chaos.", database=True)
    assert parser.prog == "python -m bench.chaos" and parser.description == "Chaos."
    chosen = parser.parse_args(["--keep", "--db", "postgres", "--output", "/tmp/x.json"])
    assert (chosen.keep, chosen.db, chosen.output) == (True, "postgres", Path("/tmp/x.json"))


def test_the_report_is_written_as_json_and_its_title_printed(tmp_path: Path, capsys):
    output = tmp_path / "deeper" / "bench.json"
    harness.write_report({"figure": 1.5, "text": "한국어"}, output, "bench, N=2")
    assert json.loads(output.read_text()) == {"figure": 1.5, "text": "한국어"}
    assert "한국어" in output.read_text() and output.read_text().endswith("}\n")
    assert capsys.readouterr().out == f"bench, N=2 (written to {output}):\n"


def test_figures_are_printed_aligned_in_the_order_given(capsys):
    harness.print_figures({"done": 3, "wall_time_s": 12.5, "other": 0}, ["wall_time_s", "done"])
    assert capsys.readouterr().out == "  wall_time_s  12.5\n  done         3\n"


def test_log_lines_name_the_bench(capsys):
    harness.logger("soak")("hello")
    line = capsys.readouterr().out
    assert line.startswith("[soak ") and line.endswith("] hello\n")


def test_job_ids_are_distinct_and_repeat_with_the_seed():
    ids = harness.job_ids(50, seed=7)
    assert len(set(ids)) == 50 and ids == harness.job_ids(50, seed=7)
    assert ids != harness.job_ids(50, seed=8)
    assert ids[3].startswith("c0003") and len(ids[3]) == 13


def test_only_done_and_failed_are_final():
    assert harness.is_final({"state": "DONE"}) and harness.is_final({"state": "FAILED"})
    assert not harness.is_final({"state": "PROCESSING"}) and not harness.is_final(None)


def test_the_machine_figures():
    figures = harness.machine((1.0, 2.0, 3.0))
    assert figures["cpus"] == os.cpu_count()
    assert figures["load_average_at_start"] == (1.0, 2.0, 3.0)
    assert len(figures["load_average_at_end"]) == 3


@linux_only
def test_this_process_has_a_resident_size_and_its_environment():
    assert harness.rss_mib(os.getpid()) > 1.0
    assert harness.environ(os.getpid()) is not None


@pytest.fixture
def stack_child() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A process of a pretend stack: its marker in the command line, its API URL in its
    environment (what a stack's sensor or worker has)."""
    api_url = f"http://127.0.0.1:1/api-{os.getpid()}-{time.monotonic_ns()}"
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "bench-harness-marker"],
        env={**os.environ, "PREFECT_API_URL": api_url},
    )
    time.sleep(0.3)  # its exec done: /proc shows its own command line
    yield child, api_url
    child.kill()
    child.wait()


@linux_only
def test_a_component_is_found_by_marker_and_api_url_and_killed(stack_child):
    child, api_url = stack_child
    component = Component("worker", ["bench-harness-marker"], api_url)
    assert component.find() == child.pid
    assert Component("worker", ["bench-harness-marker"], api_url + "-other").find() is None
    assert Component("worker", ["no-such-marker"], api_url).find() is None
    assert component.kill(with_children=True) == [child.pid]
    assert child.wait(timeout=10) == -9 and component.kills == 1
    assert component.wait_for_successor(child.pid, timeout_s=0.5) is None


@linux_only
def test_leftovers_of_a_stack_are_killed_and_nothing_else(stack_child):
    child, api_url = stack_child
    assert harness.kill_leftovers(api_url + "-other") == []
    assert child.poll() is None
    assert harness.kill_leftovers(api_url) == [child.pid]
    assert child.wait(timeout=10) == -9
