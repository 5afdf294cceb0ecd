"""The structured summary: its schema, its checks, and where it lands in the result."""

from __future__ import annotations

import json

from video_processor.llm.local_extractive import LocalExtractiveSummarizer
from video_processor.llm.structured import (
    SummaryDraft,
    SummaryLimits,
    hangul_ratio,
    parse_draft,
    summary_problems,
)
from video_processor.models import (
    RESULT_SCHEMA_VERSION,
    AudioChunk,
    AudioManifest,
    JobContext,
    LlmUsage,
    ResultKeys,
    StageTimings,
    Transcript,
    TranscriptSegment,
)
from video_processor.stages import build_result, done_callback

TEXTS = [
    "오늘 회의에서는 영상 서비스 출시 일정을 논의했습니다.",
    "개발팀은 영상 서비스 업로드 기능을 다음 주까지 완성합니다.",
    "영상 서비스 출시 전에 요약 기능을 테스트하기로 했습니다.",
    "다음 회의는 목요일입니다.",
]
TRANSCRIPT = Transcript(
    engine="local",
    language="ko",
    segments=[
        TranscriptSegment(start_s=i * 4.0, end_s=i * 4.0 + 4, text=t) for i, t in enumerate(TEXTS)
    ],
)


def draft(**changes) -> SummaryDraft:
    data = {
        "title": "출시 회의",
        "summary": "영상 서비스 출시 일정과 업로드 기능, 요약 기능 테스트를 논의했습니다.",
        "key_points": [
            {"text": "출시 일정을 논의했습니다.", "segment_ids": [0]},
            {"text": "업로드 기능은 다음 주까지 완성합니다.", "segment_ids": [1]},
            {"text": "출시 전에 요약 기능을 테스트합니다.", "segment_ids": [2]},
        ],
        "keywords": ["출시", "영상 서비스"],
        "language": "ko",
    }
    data.update(changes)
    parsed, problems = parse_draft(data)
    assert parsed is not None, problems
    return parsed


def test_segments_are_numbered_by_index_and_keep_given_ids():
    assert [s.id for s in TRANSCRIPT.segments] == [0, 1, 2, 3]
    subset = TRANSCRIPT.model_copy(update={"segments": TRANSCRIPT.segments[2:]})
    assert [s.id for s in Transcript.model_validate(subset.model_dump()).segments] == [2, 3]


def test_schema_problems_come_back_as_lines():
    parsed, problems = parse_draft({"title": "x", "key_points": []})
    assert parsed is None
    assert any(problem.startswith("summary:") for problem in problems)
    assert any(problem.startswith("key_points:") for problem in problems)


def test_limits_adapt_to_a_short_transcript():
    tiny = Transcript(
        engine="x", language="ko", segments=[TranscriptSegment(start_s=0, end_s=2, text="안녕")]
    )
    limits = SummaryLimits.for_transcript(tiny, min_chars=100, max_chars=800)
    assert (limits.min_chars, limits.min_key_points) == (2, 1)


def test_a_good_draft_has_no_problems():
    limits = SummaryLimits.for_transcript(TRANSCRIPT, min_chars=20, max_chars=200)
    assert summary_problems(draft(), limits, {0, 1, 2, 3}) == []


def test_problems_name_what_is_wrong():
    limits = SummaryLimits.for_transcript(TRANSCRIPT, min_chars=20, max_chars=200)
    bad = draft(
        summary="The launch was discussed at length by everyone in the room today.",
        language="en",
        key_points=[{"text": "Launch", "segment_ids": [0, 9]}] * 3,
    )
    problems = " | ".join(summary_problems(bad, limits, {0, 1, 2, 3}))
    assert "language is 'en'" in problems
    assert "Hangul" in problems
    assert "[9]" in problems


def test_hangul_ratio_counts_letters_only():
    assert hangul_ratio("Python 비동기 프로그래밍 3.12") > 0.5
    assert hangul_ratio("123 !!") == 0.0


def test_local_summary_has_the_same_structured_shape():
    summary = LocalExtractiveSummarizer(max_chars=200).summarize(TRANSCRIPT)
    assert summary.strategy == "extractive" and summary.language == "ko"
    assert summary.title and summary.keywords and summary.text
    assert 3 <= len(summary.key_points) <= 7
    for point in summary.key_points:
        [segment_id] = point.segment_ids
        assert point.text in TEXTS[segment_id]
        assert point.start_s == TRANSCRIPT.segments[segment_id].start_s
    assert [p.start_s for p in summary.key_points] == sorted(p.start_s for p in summary.key_points)
    assert summary.usage == LlmUsage()


def test_result_json_carries_the_structured_summary_and_the_ledger_callback_a_string():
    job = JobContext(bucket="b", key="videos/u/j.mp4", user_id="u", job_id="j", extension="mp4")
    manifest = AudioManifest(
        chunks=[AudioChunk(index=0, key="k", start_s=0, duration_s=16, size_bytes=1)],
        video_duration_s=16,
        audio_filter="none",
    )
    summary = LocalExtractiveSummarizer(max_chars=200).summarize(TRANSCRIPT)
    summary = summary.model_copy(
        update={
            "usage": LlmUsage(
                llm_calls=3,
                token_count_calls=1,
                input_tokens=1000,
                output_tokens=300,
                cache_read_input_tokens=2000,
                cache_creation_input_tokens=1100,
            )
        }
    )
    result = build_result(job, manifest, TRANSCRIPT, summary, StageTimings(), 5)
    stored = json.loads(result.model_dump_json())
    assert stored["schema_version"] == RESULT_SCHEMA_VERSION == "1.3"
    assert stored["summary"]["usage"] == {
        "llm_calls": 3,
        "token_count_calls": 1,
        "input_tokens": 1000,
        "output_tokens": 300,
        "cache_read_input_tokens": 2000,
        "cache_creation_input_tokens": 1100,
    }
    assert {"title", "key_points", "keywords", "language", "text"} <= set(stored["summary"])
    assert stored["transcript"]["segments"][1]["id"] == 1
    body = done_callback(result, ResultKeys.for_job(job)).model_dump(mode="json")
    assert body["summary"] == summary.text and isinstance(body["summary"], str)
