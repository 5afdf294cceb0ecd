"""FFmpeg: probing the upload and extracting mono 16 kHz audio in STT-sized chunks."""

from __future__ import annotations

import csv
import functools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from video_processor.config import AudioProfile
from video_processor.errors import AudioError

SAMPLE_RATE_HZ = 16_000
PROBE_TIMEOUT_S = 60
STDERR_TAIL_CHARS = 400
DENOISE_FILTERS = ("afftdn", "anlmdn")
# An upload may only be read as the one local file it is: no network or nested protocols,
# and only container demuxers. Playlist demuxers (hls, concat, …) are refused because
# their entries can name other local files, which the protocol whitelist alone allows.
INPUT_PROTOCOLS = "file"
INPUT_DEMUXERS = "mov,matroska,avi,flv,mpegts,mpeg,asf,ogg,wav,mp3,aac,flac"
_INPUT_RESTRICTIONS = ("-protocol_whitelist", INPUT_PROTOCOLS, "-format_whitelist", INPUT_DEMUXERS)


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float
    has_audio: bool


@dataclass(frozen=True)
class ExtractedChunk:
    path: Path
    start_s: float
    duration_s: float


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
    return chain, f"seed:{denoise or 'basic'}"


def _tail(text: str) -> str:
    return text.strip()[-STDERR_TAIL_CHARS:]


def probe_media(path: Path, ffprobe: str = "ffprobe") -> MediaInfo:
    """Duration and audio presence; an undecodable file is an AudioError saying so."""
    result = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            *_INPUT_RESTRICTIONS,
            "-of",
            "json",
            "-show_entries",
            "format=duration:stream=codec_type",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        detail = _tail(result.stderr.replace(str(path), "upload"))
        raise AudioError(f"the upload is not a decodable media file: {detail}")
    report = json.loads(result.stdout or "{}")
    streams = report.get("streams", [])
    has_audio = any(stream.get("codec_type") == "audio" for stream in streams)
    if not streams:
        raise AudioError("the upload is not a decodable media file: no streams found")
    duration = float(report.get("format", {}).get("duration") or 0.0)
    return MediaInfo(duration_s=duration, has_audio=has_audio)


def extract_audio_chunks(
    video: Path,
    out_dir: Path,
    *,
    chain: str,
    chunk_seconds: float,
    timeout_s: float,
    ffmpeg: str = "ffmpeg",
) -> list[ExtractedChunk]:
    """One FFmpeg pass: decode, clean up, resample to mono 16 kHz WAV cut into chunks.

    WAV, not FLAC: the segment muxer cannot finalise a FLAC header, so FLAC chunks would
    carry no duration; 55 s of 16-bit 16 kHz PCM is 1.76 MB, well under CLOVA's 3 MB.
    """
    segment_list = out_dir / "chunks.csv"
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
        "-ac",
        "1",
        "-ar",
        str(SAMPLE_RATE_HZ),
    ]
    if chain:
        command += ["-af", chain]
    command += [
        "-c:a",
        "pcm_s16le",
        "-f",
        "segment",
        "-segment_time",
        f"{chunk_seconds:.3f}",
        "-segment_list",
        str(segment_list),
        "-segment_list_type",
        "csv",
        str(out_dir / "chunk-%05d.wav"),
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"audio extraction took longer than {timeout_s:.0f} s") from exc
    if result.returncode != 0:
        raise AudioError(f"audio extraction failed: {_tail(result.stderr)}")
    chunks = _read_segment_list(segment_list, out_dir)
    if not chunks:
        raise AudioError("audio extraction produced no audio")
    return chunks


def _read_segment_list(segment_list: Path, out_dir: Path) -> list[ExtractedChunk]:
    if not segment_list.exists():
        return []
    with segment_list.open(newline="") as handle:
        rows = list(csv.reader(handle))
    return [
        ExtractedChunk(
            path=out_dir / name, start_s=float(start), duration_s=float(end) - float(start)
        )
        for name, start, end in rows
        if float(end) > float(start)
    ]
