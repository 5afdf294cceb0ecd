"""Smoke tests of the transcripts bench's scoring helpers."""

from __future__ import annotations

from bench.transcripts import coverage, english_wer, music
from local_stack.sample_video import korean_cer
from video_processor.ffmpeg import SAMPLE_RATE_HZ
from video_processor.models import AudioChunk, TimeRange, Transcript, TranscriptSegment


def test_coverage_counts_windows_with_sound_that_have_a_segment():
    chunk = AudioChunk(
        index=0,
        key="k",
        start_s=0.0,
        duration_s=90.0,
        size_bytes=1,
        sound=[TimeRange(start_s=0.0, end_s=55.0), TimeRange(start_s=89.0, end_s=90.0)],
    )
    heard = TranscriptSegment(start_s=2.0, end_s=8.0, text="앞")
    transcript = Transcript(engine="local", language="ko", segments=[heard])
    # Windows 0-30 (heard) and 30-60 (sound, no text); 60-90 has 1 s of sound: not counted.
    assert coverage([chunk], transcript) == 0.5


def test_scores_of_empty_and_exact_transcripts():
    assert korean_cer("안녕하세요. 감사합니다.", "안녕 하세요 감사합니다") == 0.0
    assert korean_cer("안녕하세요.", "") == 1.0
    assert english_wer("Mr. Smith has 3 cats", "mister smith has three cats") == 0.0


def test_music_is_chords_of_the_requested_length():
    signal = music(2.0)
    assert len(signal) == 2 * SAMPLE_RATE_HZ
    assert 0 < abs(signal).max() <= 1.0
