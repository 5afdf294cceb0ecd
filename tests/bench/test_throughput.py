"""The throughput bench's flags (its figures: test_throughput_figures)."""

from __future__ import annotations

import pytest

from bench.throughput import DEFAULT_DATABASES, database_choices, main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--modes", "warm,bogus"], "--modes: unknown ['bogus']"),
        (["--modes", ","], "--modes: unknown []"),
        (["--n", "0"], "--n and --sequential-n must be at least 1"),
        (["--sequential-n", "0"], "--n and --sequential-n must be at least 1"),
        (["--db", "postgres,mysql"], "--db: expected sqlite, postgres or a postgresql"),
        (["--db", ","], "--db: give at least one database"),
    ],
)
def test_bad_flags_are_refused_before_any_stack_starts(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_databases_are_measured_in_the_order_given_the_first_the_headline():
    assert database_choices("sqlite, postgres") == ["sqlite", "postgres"]
    assert list(DEFAULT_DATABASES) == ["postgres", "sqlite"]
