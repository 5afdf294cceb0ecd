"""Korean personal data masking: what the summariser reads, and optionally what is stored.

Patterns, applied in this order (a span masked once is not looked at again):

- e-mail addresses                                       → ``[이메일]``
- resident / alien registration numbers (YYMMDD-GNNNNNN,
  hyphen optional, the 7th digit 1–8)                    → ``[주민등록번호]``
- card numbers: 16 digits in groups of 4, or Amex 4-6-5   → ``[카드번호]``
- phone numbers: mobile 010/011/016–019, Seoul 02, area
  codes 031–064, 070 and 050x, 1588-style numbers         → ``[전화번호]``
- bank accounts: 10–14 digits in 3–4 hyphenated groups,
  or a 10–14 digit run after the word 계좌                 → ``[계좌번호]``

Separators may be hyphens, dots or spaces (as STT writes them). Numbers spoken as Korean
words ("공일공 …") are not recognised: STT engines normally write digits for them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from video_processor.models import Transcript

_SEP = r"[-.\s]?"
_NOT_DIGIT_BEFORE = r"(?<![\d-])"
_NOT_DIGIT_AFTER = r"(?![\d])"

PATTERNS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    (
        "email",
        "[이메일]",
        re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    ),
    (
        "resident_registration_number",
        "[주민등록번호]",
        re.compile(
            _NOT_DIGIT_BEFORE
            + r"\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\s?-?\s?[1-8]\d{6}"
            + _NOT_DIGIT_AFTER
        ),
    ),
    (
        "card_number",
        "[카드번호]",
        re.compile(
            _NOT_DIGIT_BEFORE
            + rf"(?:\d{{4}}{_SEP}\d{{4}}{_SEP}\d{{4}}{_SEP}\d{{4}}"
            + rf"|\d{{4}}{_SEP}\d{{6}}{_SEP}\d{{5}})"
            + _NOT_DIGIT_AFTER
        ),
    ),
    (
        "phone_number",
        "[전화번호]",
        re.compile(
            _NOT_DIGIT_BEFORE
            + r"(?:\+82[-.\s]?0?|0)(?:1[016789]|2|[3-6][1-5]|70|50\d?)"
            + rf"{_SEP}\d{{3,4}}{_SEP}\d{{4}}"
            + _NOT_DIGIT_AFTER
            + r"|"
            + _NOT_DIGIT_BEFORE
            + rf"1[5-9]\d{{2}}{_SEP}\d{{4}}"
            + _NOT_DIGIT_AFTER
        ),
    ),
    (
        "bank_account_number",
        "[계좌번호]",
        re.compile(
            _NOT_DIGIT_BEFORE
            + r"(?=(?:\d-?){10,14}(?![\d-]))\d{2,6}-\d{2,6}-\d{1,6}(?:-\d{1,6})?"
            + _NOT_DIGIT_AFTER
        ),
    ),
    (
        "bank_account_number",
        r"\g<context>[계좌번호]",
        re.compile(r"(?P<context>계좌(?:\s*번호)?(?:는|은|가|:)?\s*)\d{10,14}" + _NOT_DIGIT_AFTER),
    ),
)


@dataclass
class MaskResult:
    text: str
    counts: Counter[str] = field(default_factory=Counter)


def mask_text(text: str) -> MaskResult:
    """``text`` with every match replaced by its label, and how many of each kind."""
    counts: Counter[str] = Counter()
    for kind, label, pattern in PATTERNS:
        text, found = pattern.subn(label, text)
        if found:
            counts[kind] += found
    return MaskResult(text, counts)


def mask_transcript(transcript: Transcript) -> tuple[Transcript, Counter[str]]:
    """The transcript with every segment masked (ids and times kept) and the totals."""
    totals: Counter[str] = Counter()
    segments = []
    for segment in transcript.segments:
        masked = mask_text(segment.text)
        totals.update(masked.counts)
        segments.append(
            segment if not masked.counts else segment.model_copy(update={"text": masked.text})
        )
    return transcript.model_copy(update={"segments": segments}), totals
