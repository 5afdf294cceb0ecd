"""The summary evaluation harness: fixtures load, scoring works, the local run is complete."""

from __future__ import annotations

import json

from bench.summary_eval import fact_covered, load_cases, main, normalise


def test_fixtures_cover_the_kinds_and_lengths():
    cases = load_cases()
    real = [case for case in cases if not case["expect_rejected"]]
    assert len(real) >= 10
    assert {"lecture", "interview", "vlog", "meeting"} <= {case["kind"] for case in real}
    assert all(case["reference_facts"] for case in real)
    lengths = sorted(len(case["segments"]) for case in real)
    assert lengths[0] <= 5 and lengths[-1] >= 30


def test_fact_matching_is_normalised_and_takes_alternatives():
    haystack = normalise("출시일은 4월 15일, 교육비는 스물여덟 자…")
    assert fact_covered(["4월15일"], haystack)
    assert fact_covered(["28자|스물여덟자"], haystack)
    assert not fact_covered(["4월15일", "예산"], haystack)


def test_local_and_fake_runs_write_the_report(tmp_path, capsys):
    output = tmp_path / "summary_eval.json"
    assert main(["--engines", "local,fake", "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    for engine in ("local", "fake"):
        totals = report["engines"][engine]["summary"]
        assert totals["as_expected"] == totals["cases"]
        assert totals["mean_citation_validity"] == 1.0
    assert "mean fact coverage" in capsys.readouterr().out
