"""Test and demo videos made with the real espeak-ng and ffmpeg binaries."""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

# Text and rate chosen by measurement (Whisper base, the default audio profile; CER with
# spaces and punctuation removed): of four short texts at 120, 135, 150 and 175 words
# per minute, this one at 120 came out most recognisable, CER 0.52 ("아 논하세요, 오
# 논하우스카촌 마우초 습니다. 감사합니다."); the previous text at 150 had 0.67, and
# some texts at some rates loop ("오, 오, 오…"). espeak-ng has one Korean voice.
DEFAULT_KOREAN_TEXT = "안녕하세요. 오늘 날씨가 정말 좋습니다. 감사합니다."

ESPEAK_VOICE = "ko"
ESPEAK_SPEED_WPM = 120
# Silence before and after the speech, as in a real recording; without it Whisper looped
# on the first words more often (the afftdn denoiser then adapts on speech, not silence).
SPEECH_PAD_S = 1.0
PICTURE_SIZE = "320x240"
PICTURE_FPS = 5
TINY_PICTURE_SIZE = "160x120"
TINY_PICTURE_FPS = 1
LONG_PICTURE_SIZE = "64x48"
LONG_TONE_TREMOLO_DEPTH = 0.9
RATE_MAX_DENOMINATOR = 1_000
AUDIO_SAMPLE_RATE_HZ = 16_000
AUDIO_BITRATE = "48k"
TONE_FREQUENCY_HZ = 220
# Amplitude modulated at a syllable-like rate so VAD and loudness look roughly speech-like.
TONE_SYLLABLE_RATE_HZ = 4
CORRUPT_PAYLOAD_BYTES = 64 * 1024
CORRUPT_SEED = 20240611
# A complete mp4 'ftyp' box, then noise: no 'moov' atom, like an upload cut off early.
CORRUPT_HEADER = bytes.fromhex("00000018667479706973366d0000020069736f6d69736f32")
STDERR_TAIL_CHARS = 2_000
COMMAND_TIMEOUT_S = 900.0

_H264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
_AAC = ("-c:a", "aac", "-b:a", AUDIO_BITRATE)


_NOT_LETTERS = re.compile(r"[\s\W_]+")


def korean_cer(script: str, transcript: str) -> float:
    """Character error rate of a transcript against the script read, spaces and
    punctuation removed (Korean spacing varies); 1.0 for an empty transcript."""
    import jiwer  # a development dependency (requirements-dev.txt), like the demo itself

    reference, hypothesis = _NOT_LETTERS.sub("", script), _NOT_LETTERS.sub("", transcript)
    return 1.0 if not hypothesis else round(float(jiwer.cer(reference, hypothesis)), 4)


def make_korean_speech_video(path: Path, text: str = DEFAULT_KOREAN_TEXT) -> Path:
    """An mp4 (H.264 test picture + AAC) in which espeak-ng reads ``text`` in Korean."""
    with tempfile.TemporaryDirectory(prefix="sample-video-") as work:
        speech = Path(work) / "speech.wav"
        voice = ["-v", ESPEAK_VOICE, "-s", str(ESPEAK_SPEED_WPM)]
        _run(["espeak-ng", *voice, "-w", str(speech)], stdin=text)
        pad_ms = round(SPEECH_PAD_S * 1000)
        padding = f"adelay={pad_ms}:all=1,apad=pad_dur={SPEECH_PAD_S}"
        seconds = _wav_seconds(speech) + 2 * SPEECH_PAD_S
        # The picture's own length keeps -shortest from overshooting by a muxing interval.
        picture = f"testsrc=size={PICTURE_SIZE}:rate={PICTURE_FPS}:d={seconds:.3f}"
        audio = ["-i", str(speech), "-af", padding]
        _ffmpeg(["-f", "lavfi", "-i", picture, *audio, *_H264, *_AAC, "-shortest"], path)
    return path


def make_tone_video(path: Path, seconds: float) -> Path:
    """A tiny 1 fps video whose audio is a syllable-rate modulated tone of ``seconds``."""
    tone = (
        f"aevalsrc=0.5*sin(2*PI*{TONE_FREQUENCY_HZ}*t)*(0.5+0.5*sin(2*PI*{TONE_SYLLABLE_RATE_HZ}*t))"
        f":s={AUDIO_SAMPLE_RATE_HZ}:d={_positive(seconds)}"
    )
    return _ffmpeg([*_tiny_picture(seconds), "-f", "lavfi", "-i", tone, *_H264, *_AAC], path)


def make_long_tone_video(path: Path, seconds: float) -> Path:
    """Like ``make_tone_video``, made fast enough for half an hour or more.

    A flat 64x48 1 fps picture and ffmpeg's ``sine`` source with a syllable-rate
    ``tremolo`` (never below a tenth of full scale, so no stretch is silent): 30 minutes
    take a few seconds, where ``aevalsrc`` evaluates its expression per sample.
    """
    duration = _positive(seconds)
    picture = f"color=c=gray:size={LONG_PICTURE_SIZE}:rate={TINY_PICTURE_FPS}:d={duration}"
    tone = (
        f"sine=frequency={TONE_FREQUENCY_HZ}:sample_rate={AUDIO_SAMPLE_RATE_HZ}:duration={duration},"
        f"tremolo=f={TONE_SYLLABLE_RATE_HZ}:d={LONG_TONE_TREMOLO_DEPTH}"
    )
    audio = ["-f", "lavfi", "-i", tone, *_AAC, "-ac", "1"]
    return _ffmpeg(["-f", "lavfi", "-i", picture, *audio, *_H264, "-shortest"], path)


def make_video_without_audio(path: Path, seconds: float) -> Path:
    """A tiny video with no audio stream at all."""
    return _ffmpeg([*_tiny_picture(seconds), *_H264, "-an"], path)


def make_silent_video(path: Path, seconds: float) -> Path:
    """A tiny video whose audio stream is digital silence."""
    silence = f"anullsrc=r={AUDIO_SAMPLE_RATE_HZ}:cl=mono:d={_positive(seconds)}"
    return _ffmpeg([*_tiny_picture(seconds), "-f", "lavfi", "-i", silence, *_H264, *_AAC], path)


def make_corrupt_video(path: Path) -> Path:
    """A file named like a video that holds a truncated mp4 header and random bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = random.Random(CORRUPT_SEED).randbytes(CORRUPT_PAYLOAD_BYTES)
    path.write_bytes(CORRUPT_HEADER + payload)
    return path


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


def _tiny_picture(seconds: float) -> list[str]:
    # A whole number of frames at about 1 fps, so that the picture lasts exactly `seconds`.
    frames = max(1, round(_positive(seconds) * TINY_PICTURE_FPS))
    rate = Fraction(frames) / Fraction(seconds).limit_denominator(RATE_MAX_DENOMINATOR)
    source = f"testsrc=size={TINY_PICTURE_SIZE}:rate={rate}:d={seconds}"
    return ["-f", "lavfi", "-i", source]


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {seconds} s")
    return seconds


def _ffmpeg(arguments: Sequence[str], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *arguments, str(path)])
    return path


def _run(command: list[str], stdin: str | None = None) -> None:
    try:
        result = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise RuntimeError(f"{command[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{command[0]} took longer than {COMMAND_TIMEOUT_S} s") from exc
    if result.returncode != 0:
        tail = result.stderr[-STDERR_TAIL_CHARS:].strip()
        raise RuntimeError(f"{command[0]} exited with {result.returncode}: {tail}")


KINDS = ("korean", "tone", "no-audio", "silent", "corrupt")


def make_sample_video(kind: str, path: Path, text: str, seconds: float) -> Path:
    """One of the ``KINDS`` of sample video."""
    match kind:
        case "korean":
            return make_korean_speech_video(path, text)
        case "tone":
            return make_tone_video(path, seconds)
        case "no-audio":
            return make_video_without_audio(path, seconds)
        case "silent":
            return make_silent_video(path, seconds)
        case "corrupt":
            return make_corrupt_video(path)
    raise ValueError(f"unknown sample kind {kind!r}, expected one of {KINDS}")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m local_stack.sample_video OUT.mp4 [--kind ...]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="the video file to write")
    parser.add_argument("--kind", choices=KINDS, default="korean")
    parser.add_argument("--text", default=DEFAULT_KOREAN_TEXT, help="what the Korean voice says")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of non-speech kinds")
    args = parser.parse_args(argv)
    print(make_sample_video(args.kind, args.out, args.text, args.seconds))


if __name__ == "__main__":
    main()
