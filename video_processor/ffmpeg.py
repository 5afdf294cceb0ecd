"""FFmpeg: probing the upload, the clean-up filter chains, decoding audio to raw PCM.

Every invocation reads the upload as the one local file it is (or, to probe, a presigned
URL of it) and only through container demuxers.
"""

from __future__ import annotations

import functools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from video_processor.config import AudioProfile
from video_processor.errors import AudioError

SAMPLE_RATE_HZ = 16_000
SAMPLE_BYTES = 2  # 16-bit mono
PROBE_TIMEOUT_S = 60
STDERR_TAIL_CHARS = 400
DENOISE_FILTERS = ("afftdn", "anlmdn")
# An upload may only be read as the one local file it is: no network or nested protocols,
# and only container demuxers. Playlist demuxers (hls, concat, …) are refused because
# their entries can name other local files, which the protocol whitelist alone allows.
INPUT_PROTOCOLS = "file"
# A presigned URL of the upload, for engines that fetch the video themselves (probe only).
URL_PROTOCOLS = "http,https,tls,tcp"
INPUT_DEMUXERS = "mov,matroska,avi,flv,mpegts,mpeg,asf,ogg,wav,mp3,aac,flac"
_INPUT_RESTRICTIONS = ("-protocol_whitelist", INPUT_PROTOCOLS, "-format_whitelist", INPUT_DEMUXERS)


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float
    has_audio: bool


@functools.cache
def available_denoise_filter(ffmpeg: str = "ffmpeg") -> str | None:
    """The first denoise filter this FFmpeg build has (probed once per process)."""
    listing = subprocess.run(
        [ffmpeg, "-hide_banner", "-filters"],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        check=False,
    ).stdout
    names = {line.split()[1] for line in listing.splitlines() if len(line.split()) > 1}
    return next((name for name in DENOISE_FILTERS if name in names), None)


def filter_chain(profile: AudioProfile, ffmpeg: str = "ffmpeg") -> tuple[str, str]:
    """The `-af` chain for a profile and a label for it (what `audio_quality` reports)."""
    if profile is AudioProfile.NONE:
        return "", "none"
    if profile is AudioProfile.HIGHPASS:
        return "highpass=f=200", "highpass"
    denoise = available_denoise_filter(ffmpeg)
    chain = "highpass=f=200,lowpass=f=3800" + (f",{denoise}" if denoise else "")
    return chain, f"denoise:{denoise or 'basic'}"


def _tail(text: str) -> str:
    return text.strip()[-STDERR_TAIL_CHARS:]


def probe_media(source: Path | str, ffprobe: str = "ffprobe") -> MediaInfo:
    """Duration and audio presence; an undecodable file is an AudioError saying so.

    ``source`` is the downloaded file, or a presigned URL of the upload: then HTTP(S) is
    the only protocol allowed, and ffprobe reads just the parts it needs.
    """
    protocols = INPUT_PROTOCOLS if isinstance(source, Path) else URL_PROTOCOLS
    result = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-protocol_whitelist",
            protocols,
            "-format_whitelist",
            INPUT_DEMUXERS,
            "-of",
            "json",
            "-show_entries",
            "format=duration:stream=codec_type",
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        detail = _tail(result.stderr.replace(str(source), "upload"))
        raise AudioError(f"the upload is not a decodable media file: {detail}")
    report = json.loads(result.stdout or "{}")
    streams = report.get("streams", [])
    has_audio = any(stream.get("codec_type") == "audio" for stream in streams)
    if not streams:
        raise AudioError("the upload is not a decodable media file: no streams found")
    duration = float(report.get("format", {}).get("duration") or 0.0)
    return MediaInfo(duration_s=duration, has_audio=has_audio)


def decode_to_pcm(
    video: Path, pcm: Path, *, chain: str, timeout_s: float, ffmpeg: str = "ffmpeg"
) -> None:
    """Decode the first audio stream, run ``chain``, write mono 16 kHz s16 raw ``pcm``."""
    command = [
        ffmpeg,
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        *_INPUT_RESTRICTIONS,
        "-i",
        str(video),
        "-map",
        "0:a:0",
        "-vn",
        *(["-af", chain] if chain else []),
        "-ac",
        "1",
        "-ar",
        str(SAMPLE_RATE_HZ),
        "-c:a",
        "pcm_s16le",
        "-f",
        "s16le",
        str(pcm),
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"audio extraction took longer than {timeout_s:.0f} s") from exc
    if result.returncode != 0:
        raise AudioError(f"audio extraction failed: {_tail(result.stderr)}")
