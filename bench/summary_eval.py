"""Summary evaluation harness: Korean transcripts with reference facts, run per engine.

Engines: ``local`` (the offline extractive summariser), ``fake`` (the Claude engine
against the in-process fake Anthropic server: mechanics only, the fake copies transcript
lines), and ``claude`` (the real API, only when ``ANTHROPIC_API_KEY`` or ``CLAUDE_API_KEY``
is set; model from ``CLAUDE_MODEL``). Every transcript first goes through the quality gate
and PII masking exactly as in the pipeline.

Per transcript it reports:

- ``fact_coverage``: share of reference facts covered. A fact is a list of keywords; it is
  covered when every keyword occurs in the summary (title, summary paragraph and key
  points), both sides normalised (NFKC, lower case, spaces and punctuation removed); a
  keyword ``a|b`` accepts either form ("28자|스물여덟자").
- ``citation_validity``: share of key points whose cited segment ids all exist in the
  transcript (and are not empty).
- ``length_ok``: the summary paragraph is within the bounds the pipeline enforces.
- the strategy, LLM calls and token ledger; for junk transcripts, whether the gate
  rejected them (``expect_rejected``).

Run: ``python -m bench.summary_eval [--engines local,fake,claude]``; the results go to
``bench/results/summary_eval.json`` and are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from local_stack.fake_anthropic import AnthropicConfig, start_fake_anthropic
from video_processor.config import Settings
from video_processor.errors import PipelineError, TranscriptRejected
from video_processor.llm.base import Summarizer, SummaryPolicy
from video_processor.llm.claude import ClaudeSummarizer
from video_processor.llm.gate import screen_for_summary
from video_processor.llm.local_extractive import LocalExtractiveSummarizer
from video_processor.llm.structured import SummaryLimits
from video_processor.models import Summary, Transcript, TranscriptSegment

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data" / "summaries"
RESULTS_PATH = HERE / "results" / "summary_eval.json"
FAKE_KEY = "bench-fake-key"
_DROP = re.compile(r"[\s\W_]+")


def normalise(text: str) -> str:
    return _DROP.sub("", unicodedata.normalize("NFKC", text).lower())


def fact_covered(fact: Sequence[str], haystack: str) -> bool:
    return all(
        any(normalise(option) in haystack for option in keyword.split("|")) for keyword in fact
    )


def load_cases(directory: Path = DATA_DIR) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]


def transcript_of(case: dict[str, Any]) -> Transcript:
    return Transcript(
        engine="bench",
        language=case.get("language", "ko"),
        segments=[TranscriptSegment.model_validate(s) for s in case["segments"]],
    )


def score(case: dict[str, Any], transcript: Transcript, summary: Summary, policy: SummaryPolicy):
    haystack = normalise(
        " ".join([summary.title, summary.text, *(p.text for p in summary.key_points)])
    )
    facts = case["reference_facts"]
    covered = [fact for fact in facts if fact_covered(fact, haystack)]
    ids = set(transcript.segment_by_id())
    valid = [p for p in summary.key_points if p.segment_ids and set(p.segment_ids) <= ids]
    limits = SummaryLimits.for_transcript(
        transcript, min_chars=policy.min_chars, max_chars=policy.max_chars
    )
    return {
        "fact_coverage": round(len(covered) / len(facts), 3) if facts else None,
        "facts_covered": len(covered),
        "facts": len(facts),
        "missed_facts": [fact for fact in facts if fact not in covered],
        "citation_validity": round(len(valid) / len(summary.key_points), 3)
        if summary.key_points
        else 0.0,
        "key_points": len(summary.key_points),
        "summary_chars": len(summary.text),
        "length_bounds": [limits.min_chars, limits.max_chars],
        "length_ok": limits.min_chars <= len(summary.text) <= limits.max_chars,
        "strategy": summary.strategy,
        "usage": summary.usage.model_dump(),
        "title": summary.title,
    }


def run_case(
    case: dict[str, Any], summarizer: Summarizer, settings: Settings, policy: SummaryPolicy
) -> dict[str, Any]:
    transcript = transcript_of(case)
    row: dict[str, Any] = {
        "id": case["id"],
        "kind": case["kind"],
        "segments": len(transcript.segments),
        "chars": len(transcript.text),
        "expect_rejected": case.get("expect_rejected", False),
    }
    started = time.monotonic()
    try:
        screened = screen_for_summary(transcript, case["audio_duration_s"], settings)
        summary = summarizer.summarize(screened.transcript)
    except TranscriptRejected as exc:
        row.update(outcome="rejected", error=exc.message)
    except PipelineError as exc:
        row.update(outcome="failed", error=f"{exc.code}: {exc.message}")
    else:
        row.update(outcome="summarised", masked=screened.report.masked)
        row.update(score(case, transcript, summary, policy))
    row["as_expected"] = (row["outcome"] == "rejected") == row["expect_rejected"]
    row["seconds"] = round(time.monotonic() - started, 2)
    return row


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    done = [row for row in rows if row["outcome"] == "summarised" and row.get("facts")]

    def mean(key: str) -> float | None:
        values = [row[key] for row in done if row.get(key) is not None]
        return round(sum(values) / len(values), 3) if values else None

    return {
        "cases": len(rows),
        "as_expected": sum(1 for row in rows if row["as_expected"]),
        "mean_fact_coverage": mean("fact_coverage"),
        "mean_citation_validity": mean("citation_validity"),
        "length_ok": sum(1 for row in done if row["length_ok"]),
        "summarised": len(done),
        "llm_calls": sum(row.get("usage", {}).get("llm_calls", 0) for row in rows),
    }


def engines(names: Sequence[str], settings: Settings, policy: SummaryPolicy):
    """(name, summariser factory, cleanup) for each engine that can run here."""
    for name in names:
        if name == "local":
            yield name, LocalExtractiveSummarizer(max_chars=policy.max_chars), None
        elif name == "fake":
            server = start_fake_anthropic(AnthropicConfig(api_key=FAKE_KEY))
            summarizer = ClaudeSummarizer(
                api_key=FAKE_KEY,
                model=settings.claude_model,
                max_tokens=settings.claude_max_tokens,
                base_url=server.url,
                policy=policy,
            )
            yield name, summarizer, server.stop
        elif name == "claude":
            key = os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("CLAUDE_API_KEY")
            if not key:
                print("claude: skipped (no ANTHROPIC_API_KEY / CLAUDE_API_KEY)")
                continue
            summarizer = ClaudeSummarizer(
                api_key=key,
                model=settings.claude_model,
                max_tokens=settings.claude_max_tokens,
                base_url=os.environ.get("ANTHROPIC_BASE_URL"),
                timeout_s=settings.claude_timeout_seconds,
                policy=policy,
            )
            yield name, summarizer, None
        else:
            raise SystemExit(f"unknown engine {name!r}: local, fake or claude")


def print_table(engine: str, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    print(f"\n== {engine} ==")
    print(f"{'transcript':<32}{'kind':<10}{'outcome':<11}{'facts':>7}{'cites':>7}{'len':>9}")
    for row in rows:
        facts = f"{row['facts_covered']}/{row['facts']}" if row.get("facts") is not None else "-"
        cites = f"{row['citation_validity']:.0%}" if "citation_validity" in row else "-"
        length = (
            f"{row['summary_chars']}{'' if row['length_ok'] else '!'}"
            if "summary_chars" in row
            else "-"
        )
        flag = "" if row["as_expected"] else " (unexpected)"
        print(
            f"{row['id']:<32}{row['kind']:<10}{row['outcome'] + flag:<11}"
            f"{facts:>7}{cites:>7}{length:>9}"
        )
    print(
        f"mean fact coverage {summary['mean_fact_coverage']}, citation validity "
        f"{summary['mean_citation_validity']}, length ok {summary['length_ok']}/"
        f"{summary['summarised']}, as expected {summary['as_expected']}/{summary['cases']}, "
        f"LLM calls {summary['llm_calls']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="local,fake,claude")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    settings = Settings(_env_file=None)
    policy = SummaryPolicy.from_settings(settings)
    cases = load_cases()
    report: dict[str, Any] = {
        "cases": [case["id"] for case in cases],
        "policy": policy.model_dump(),
        "engines": {},
    }
    for name, summarizer, cleanup in engines(args.engines.split(","), settings, policy):
        try:
            rows = [run_case(case, summarizer, settings, policy) for case in cases]
        finally:
            if cleanup is not None:
                cleanup()
        totals = aggregate(rows)
        report["engines"][name] = {"summary": totals, "transcripts": rows}
        print_table(name, rows, totals)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"\nresults: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
