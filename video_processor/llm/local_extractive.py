"""Offline extractive summary: the transcript's most representative sentences, in order.

It returns the same structured ``Summary`` as Claude: the summary paragraph, a title, key
points (the top sentences, each citing the segment it was taken from), keywords and the
transcript's language, so the demo and the result JSON have one shape.
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter

from video_processor.errors import SummaryError
from video_processor.models import KeyPoint, Summary, Transcript

ENGINE = "local"
MODEL = "extractive-v1"
DEFAULT_MAX_CHARS = 500
DEFAULT_MAX_SENTENCES = 5
MAX_KEY_POINTS = 5
KEY_POINT_MAX_CHARS = 120
TITLE_MAX_CHARS = 40
MAX_KEYWORDS = 8
# Whisper often emits no punctuation at all: longer runs are cut at word boundaries.
MAX_SENTENCE_CHARS = 200
MIN_TOKEN_CHARS = 2

# A boundary follows sentence punctuation, or a Korean sentence-final ending before a space.
_SENTENCE_END = re.compile(
    r"(?<=[.?!。…])\s+"
    r"|(?<=니다|니까|[가-힣]죠|[가어아여해에예네군데지까세래]요|[었았했였겠있없한된인이]다)\s+"
    r"|\n+"
)
_TOKEN_EDGE_PUNCTUATION = "\"'“”‘’()[]{}<>.,?!…·:;-~"
# Common postpositions, stripped so that "회의는" and "회의에서" count as the same word.
_PARTICLES = (
    "에서는", "에게서", "으로는", "에서", "에게", "으로", "까지", "부터", "처럼", "보다",
    "은", "는", "이", "가", "을", "를", "에", "의", "도", "로", "와", "과", "만",
)  # fmt: skip


class LocalExtractiveSummarizer:
    """Picks the sentences whose words recur most across the transcript; no model, no network."""

    name = ENGINE

    def __init__(
        self, max_chars: int = DEFAULT_MAX_CHARS, max_sentences: int = DEFAULT_MAX_SENTENCES
    ) -> None:
        if max_chars < 1 or max_sentences < 1:
            raise ValueError("max_chars and max_sentences must be positive")
        self.max_chars = max_chars
        self.max_sentences = max_sentences

    def summarize(self, transcript: Transcript) -> Summary:
        """The top-scoring sentences in their original order, within ``max_chars``."""
        # Segment boundaries count as sentence boundaries: they are Whisper's own utterances.
        width = min(MAX_SENTENCE_CHARS, self.max_chars)
        located = [
            (sentence, segment)
            for segment in transcript.segments
            for sentence in split_sentences(segment.text, width)
        ]
        if not located:
            raise SummaryError("transcript is empty")
        sentences = [sentence for sentence, _ in located]
        scores = _scores(sentences)
        ranked = sorted(range(len(sentences)), key=lambda index: (-scores[index], index))
        chosen: list[int] = []
        used_chars = 0
        for index in ranked:
            cost = len(sentences[index]) + (1 if chosen else 0)  # the joining space
            if used_chars + cost <= self.max_chars:
                chosen.append(index)
                used_chars += cost
            if len(chosen) == self.max_sentences:
                break
        summary = " ".join(sentences[index] for index in sorted(chosen))
        points = sorted(ranked[:MAX_KEY_POINTS])
        key_points = [
            KeyPoint(
                text=_shorten(sentences[index], KEY_POINT_MAX_CHARS),
                segment_ids=[located[index][1].id if located[index][1].id is not None else 0],
                start_s=located[index][1].start_s,
            )
            for index in points
        ]
        return Summary(
            engine=ENGINE,
            model=MODEL,
            text=summary,
            title=_shorten(sentences[ranked[0]], TITLE_MAX_CHARS),
            key_points=key_points,
            keywords=_keywords(sentences),
            language=transcript.language,
            strategy="extractive",
            input_tokens=0,
            output_tokens=0,
        )


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Sentences of a Korean text, none longer than ``max_chars`` characters."""
    pieces = (" ".join(piece.split()) for piece in _SENTENCE_END.split(text))
    return [
        line
        for piece in pieces
        if piece
        for line in textwrap.wrap(piece, max_chars, break_on_hyphens=False)
    ]


def _scores(sentences: list[str]) -> list[float]:
    """Mean normalised frequency of each sentence's tokens (0 for a sentence without any)."""
    tokens = [_tokens(sentence) for sentence in sentences]
    counts = Counter(token for sentence_tokens in tokens for token in sentence_tokens)
    top = max(counts.values(), default=1)
    return [
        sum(counts[token] / top for token in sentence_tokens) / len(sentence_tokens)
        if sentence_tokens
        else 0.0
        for sentence_tokens in tokens
    ]


def _shorten(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def _keywords(sentences: list[str]) -> list[str]:
    """The most frequent content words (ties: first seen first)."""
    counts = Counter(token for sentence in sentences for token in _tokens(sentence))
    return [word for word, _ in counts.most_common(MAX_KEYWORDS)]


def _tokens(sentence: str) -> list[str]:
    words = (
        _strip_particle(word.strip(_TOKEN_EDGE_PUNCTUATION).lower()) for word in sentence.split()
    )
    return [word for word in words if len(word) >= MIN_TOKEN_CHARS]


def _strip_particle(word: str) -> str:
    for particle in _PARTICLES:
        if word.endswith(particle) and len(word) - len(particle) >= MIN_TOKEN_CHARS:
            return word[: -len(particle)]
    return word
