"""The latency bench's pure parts: the latency model, its flags, the fake CSR's text."""

from __future__ import annotations

import argparse

import pytest

from bench.latency import CSR_TEXT, parse_modes
from bench.latency_model import ISSUE_MODEL, chunk_durations, makespan
from video_processor.llm.gate import is_dominated, repeated_ngram_ratio


def test_the_issue_model():
    assert ISSUE_MODEL.csr_s(55) == pytest.approx(0.5 + 0.15 * 55)
    assert ISSUE_MODEL.claude_s(200) == pytest.approx(2 + 0.015 * 200)
    assert ISSUE_MODEL.claude_s(200, calls=3) == pytest.approx(6 + 3)
    assert ISSUE_MODEL.scaled(0.1).csr_s(55) == pytest.approx(0.1 * (0.5 + 0.15 * 55))
    configs = ISSUE_MODEL.fake_configs()
    assert configs["FAKE_CLOVA_URL"] == {"base_latency_s": 0.5, "per_audio_second_s": 0.15}
    assert configs["FAKE_ANTHROPIC_URL"]["per_output_token_s"] == pytest.approx(0.015)


def test_chunks_and_makespan():
    assert chunk_durations(600) == [55.0] * 10 + [50.0]
    assert chunk_durations(110) == [55.0, 55.0]
    assert chunk_durations(3600)[-1] == pytest.approx(25.0)
    assert len(chunk_durations(3600)) == 66
    assert chunk_durations(0) == []
    assert makespan([1.0] * 9, workers=8) == pytest.approx(2.0)
    assert makespan([3.0, 1.0, 1.0, 1.0], workers=2) == pytest.approx(3.0)
    assert makespan([2.0, 2.0], workers=1) == pytest.approx(4.0)


def test_sequential_modes_parse():
    assert parse_modes("both") == ["thread-pool", "limit"]
    assert parse_modes("limit") == ["limit"]
    assert parse_modes("none") == []
    with pytest.raises(argparse.ArgumentTypeError):
        parse_modes("parallel")


def test_the_fake_csr_text_passes_the_quality_gate_on_long_videos():
    transcript = " ".join(CSR_TEXT.replace("{call}", str(call)) for call in range(1, 67))
    assert repeated_ngram_ratio(transcript) == 0.0


def test_no_word_dominates_a_chunk_of_the_fake_csr_text():
    assert not any(is_dominated(CSR_TEXT.replace("{call}", str(call))) for call in range(1, 200))
