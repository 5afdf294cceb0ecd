"""The structured summary every engine returns, the tool that asks Claude for it, and its checks.

The model answers by calling one forced tool whose ``input_schema`` is ``SummaryDraft``'s
JSON schema; the reply is validated twice: by pydantic (shape) and by ``summary_problems``
(length bounds, language, empty fields, citations). What fails is told back to the model
once, in plain words, before the job gives up with ``LLM_BAD_RESPONSE``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from video_processor.models import KeyPoint, LlmUsage, Summary, Transcript

TOOL_NAME = "record_summary"
MIN_KEY_POINTS = 3
MAX_KEY_POINTS = 7
MAX_KEYWORDS = 10
# Share of letters that must be Hangul for text to count as Korean. Technical talks mix in
# English terms, so it is lenient; an English summary of a Korean video scores near 0.
MIN_HANGUL_LETTER_RATIO = 0.5
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LETTER = re.compile(r"[^\W\d_]")


class KeyPointDraft(BaseModel):
    """A key point as the model writes it: the point and the segment ids it comes from."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="핵심 내용 한 문장 (전사문의 언어로)")
    segment_ids: list[int] = Field(
        min_length=1,
        description="이 내용이 나온 전사문 구간 번호들 ([번호 mm:ss] 의 번호)",
    )


class SummaryDraft(BaseModel):
    """What the ``record_summary`` tool takes: the summary before the engine adds its metadata."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(description="영상 내용을 담은 짧은 제목")
    summary: str = Field(description="영상 전체를 요약한 문단")
    key_points: list[KeyPointDraft] = Field(
        min_length=1, max_length=MAX_KEY_POINTS, description="핵심 내용 3~7개, 시간 순서"
    )
    keywords: list[str] = Field(min_length=1, max_length=MAX_KEYWORDS, description="핵심어")
    language: str = Field(description="요약의 언어 코드 (예: ko)")

    @model_validator(mode="before")
    @classmethod
    def _strip_strings(cls, data: Any) -> Any:
        return _strip(data)

    def cited_ids(self) -> set[int]:
        return {segment_id for point in self.key_points for segment_id in point.segment_ids}


def _strip(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return [_strip(item) for item in value]
    if isinstance(value, dict):
        return {key: _strip(item) for key, item in value.items()}
    return value


def _inline_refs(schema: Any, defs: dict[str, Any]) -> Any:
    """The schema with every ``$ref`` replaced by its definition (no ``$defs`` left)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline_refs(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
        return {key: _inline_refs(value, defs) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inline_refs(item, defs) for item in schema]
    return schema


def tool_input_schema() -> dict[str, Any]:
    """``SummaryDraft``'s JSON schema, self-contained (no ``$ref``/``$defs`` to resolve)."""
    schema = SummaryDraft.model_json_schema()
    inlined = _inline_refs(schema, schema.get("$defs", {}))
    assert isinstance(inlined, dict)
    return inlined


def summary_tool() -> dict[str, Any]:
    return {
        "name": TOOL_NAME,
        "description": "전사문의 구조화된 요약을 기록합니다. 반드시 이 도구로만 답하세요.",
        "input_schema": tool_input_schema(),
    }


def parse_draft(tool_input: object) -> tuple[SummaryDraft | None, list[str]]:
    """The validated draft, or the problems to tell the model (pydantic's, one per line)."""
    try:
        return SummaryDraft.model_validate(tool_input), []
    except ValidationError as exc:
        return None, [
            f"{'.'.join(str(part) for part in error['loc']) or 'input'}: {error['msg']}"
            for error in exc.errors()
        ]


class SummaryLimits(BaseModel):
    """What a summary must satisfy besides its shape."""

    model_config = ConfigDict(frozen=True)

    min_chars: int = Field(ge=1)
    max_chars: int = Field(ge=1)
    language: str = "ko"
    min_key_points: int = Field(default=MIN_KEY_POINTS, ge=1, le=MAX_KEY_POINTS)

    @model_validator(mode="after")
    def _ordered(self) -> SummaryLimits:
        if self.min_chars > self.max_chars:
            raise ValueError(
                f"SUMMARY_MIN_CHARS ({self.min_chars}) > SUMMARY_MAX_CHARS ({self.max_chars})"
            )
        return self

    @classmethod
    def for_transcript(
        cls, transcript: Transcript, *, min_chars: int, max_chars: int, language: str = "ko"
    ) -> SummaryLimits:
        """Limits a transcript can honestly meet: a 15-character clip gets a short summary
        and as many key points as it has segments (up to three)."""
        text_chars = len(transcript.text)
        spoken = sum(1 for segment in transcript.segments if segment.text.strip())
        return cls(
            min_chars=max(1, min(min_chars, text_chars, max_chars)),
            max_chars=max_chars,
            language=language,
            min_key_points=max(1, min(MIN_KEY_POINTS, spoken)),
        )


def hangul_ratio(text: str) -> float:
    """Hangul letters / all letters (0 when there is no letter)."""
    letters = _LETTER.findall(text)
    if not letters:
        return 0.0
    return sum(1 for letter in letters if _HANGUL.match(letter)) / len(letters)


def language_matches(text: str, language: str) -> bool:
    """Whether ``text`` reads as ``language``: checked for Korean, trusted otherwise."""
    if language.lower().startswith("ko"):
        return hangul_ratio(text) >= MIN_HANGUL_LETTER_RATIO
    return hangul_ratio(text) < MIN_HANGUL_LETTER_RATIO


def summary_problems(
    draft: SummaryDraft, limits: SummaryLimits, allowed_ids: Collection[int]
) -> list[str]:
    """Everything wrong with a well-formed draft, in words the model can act on."""
    problems: list[str] = []
    length = len(draft.summary)
    if not limits.min_chars <= length <= limits.max_chars:
        problems.append(
            f"summary is {length} characters; it must be {limits.min_chars}–{limits.max_chars}"
        )
    for name in ("title", "summary", "language"):
        if not getattr(draft, name):
            problems.append(f"{name} is empty")
    if any(not point.text for point in draft.key_points):
        problems.append("a key point has empty text")
    if any(not keyword for keyword in draft.keywords):
        problems.append("a keyword is empty")
    if len(draft.key_points) < limits.min_key_points:
        problems.append(
            f"{len(draft.key_points)} key points; give {limits.min_key_points}–{MAX_KEY_POINTS}"
        )
    expected = limits.language.split("-")[0].lower()
    if draft.language.split("-")[0].lower() != expected:
        problems.append(f"language is {draft.language!r}; the transcript's is {expected!r}")
    written = " ".join([draft.title, draft.summary, *(p.text for p in draft.key_points)])
    if not language_matches(written, expected):
        problems.append(
            f"the summary is not written in the transcript's language ({expected}): "
            f"{hangul_ratio(written):.0%} of its letters are Hangul"
        )
    unknown = sorted(draft.cited_ids() - set(allowed_ids))
    if unknown:
        problems.append(
            f"key points cite segment ids that do not exist here: {unknown[:10]}; "
            "cite only the [number] of the segments given"
        )
    return problems


def to_summary(
    draft: SummaryDraft,
    transcript: Transcript,
    *,
    engine: str,
    model: str,
    usage: LlmUsage,
    strategy: str = "single-call",
    chunks: int = 1,
) -> Summary:
    """The stored summary: the draft plus where each key point starts and the usage ledger."""
    by_id = transcript.segment_by_id()
    key_points = [
        KeyPoint(
            text=point.text,
            segment_ids=sorted(set(point.segment_ids)),
            start_s=min(by_id[segment_id].start_s for segment_id in point.segment_ids),
        )
        for point in draft.key_points
    ]
    return Summary.model_validate(
        {
            "engine": engine,
            "model": model,
            "text": draft.summary,
            "title": draft.title,
            "key_points": key_points,
            "keywords": _unique(draft.keywords),
            "language": draft.language,
            "strategy": strategy,
            "chunks": chunks,
            "input_tokens": usage.input_tokens
            + usage.cache_read_input_tokens
            + usage.cache_creation_input_tokens,
            "output_tokens": usage.output_tokens,
            "usage": usage,
        }
    )


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
