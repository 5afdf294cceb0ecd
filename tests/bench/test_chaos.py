"""The chaos bench's parts that need no stack: the order of the worker hits, its flags."""

from __future__ import annotations

import pytest

from bench.chaos import main, worker_hits


def test_each_drain_falls_between_two_losses():
    assert worker_hits(2, 1) == ["kill", "term", "kill"]
    assert worker_hits(1, 1) == ["kill", "term"]
    assert worker_hits(0, 1) == ["term"]
    assert worker_hits(0, 0) == []


def test_bad_flags_are_refused_before_any_stack_starts(capsys, tmp_path):
    output = tmp_path / "chaos.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["--n", "0", "--output", str(output)])
    assert exit_info.value.code == 2
    assert "--n must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--worker-kills", "3"])
    assert not output.exists()
