"""FFmpeg invocation against the real binary: probing, filter chains, decoding to PCM."""

from pathlib import Path

import pytest

from local_stack.sample_video import make_corrupt_video, make_tone_video, make_video_without_audio
from video_processor import ffmpeg
from video_processor.config import AudioProfile
from video_processor.errors import AudioError


def test_installed_ffmpeg_has_a_denoise_filter_and_the_denoise_chain_uses_it():
    denoise = ffmpeg.available_denoise_filter()
    chain, label = ffmpeg.filter_chain(AudioProfile.DENOISE)
    assert denoise in ("afftdn", "anlmdn")
    assert chain == f"highpass=f=200,lowpass=f=3800,{denoise}"
    assert label == f"denoise:{denoise}"


def test_denoise_chain_falls_back_to_basic_filtering_without_denoise(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(ffmpeg, "available_denoise_filter", lambda ffmpeg="ffmpeg": None)
    chain = ("highpass=f=200,lowpass=f=3800", "denoise:basic")
    assert ffmpeg.filter_chain(AudioProfile.DENOISE) == chain


def test_other_profiles():
    assert ffmpeg.filter_chain(AudioProfile.NONE) == ("", "none")
    assert ffmpeg.filter_chain(AudioProfile.HIGHPASS) == ("highpass=f=200", "highpass")


def test_probe_reads_duration_and_audio_presence(tmp_path: Path):
    info = ffmpeg.probe_media(make_tone_video(tmp_path / "a.mp4", seconds=4))
    assert info.has_audio
    assert info.duration_s == pytest.approx(4, abs=0.2)
    assert not ffmpeg.probe_media(make_video_without_audio(tmp_path / "b.mp4", seconds=2)).has_audio


def test_undecodable_file_is_an_ffmpeg_failure_that_says_so(tmp_path: Path):
    with pytest.raises(AudioError, match="not a decodable media file") as caught:
        ffmpeg.probe_media(make_corrupt_video(tmp_path / "c.mp4"))
    assert caught.value.code == "FFMPEG_FAILED"


def test_decode_writes_mono_16_khz_pcm_of_the_whole_audio(tmp_path: Path):
    pcm = tmp_path / "audio.pcm"
    video = make_tone_video(tmp_path / "a.mp4", seconds=3)
    ffmpeg.decode_to_pcm(video, pcm, chain="highpass=f=200", timeout_s=60)
    seconds = pcm.stat().st_size / ffmpeg.SAMPLE_BYTES / ffmpeg.SAMPLE_RATE_HZ
    assert seconds == pytest.approx(3, abs=0.1)


def test_an_upload_without_audio_or_too_slow_is_an_audio_error(tmp_path: Path):
    pcm = tmp_path / "audio.pcm"
    without_audio = make_video_without_audio(tmp_path / "b.mp4", seconds=2)
    with pytest.raises(AudioError, match="extraction failed"):
        ffmpeg.decode_to_pcm(without_audio, pcm, chain="", timeout_s=30)
    with pytest.raises(AudioError, match="extraction failed"):
        ffmpeg.decode_to_pcm(make_corrupt_video(tmp_path / "c.mp4"), pcm, chain="", timeout_s=30)
    tone = make_tone_video(tmp_path / "tone.mp4", seconds=30)
    with pytest.raises(AudioError, match="took longer than"):
        ffmpeg.decode_to_pcm(tone, pcm, chain="", timeout_s=0.001)


def _playlists(tmp_path: Path) -> dict[str, Path]:
    """Uploads that are really playlists naming another local file (another job's audio)."""
    secret = make_tone_video(tmp_path / "other-job.mp4", seconds=2)
    hls = tmp_path / "hls.mp4"
    hls.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\n{secret}\n#EXT-X-ENDLIST\n")
    concat = tmp_path / "concat.mp4"
    concat.write_text(f"ffconcat version 1.0\nfile {secret}\n")
    return {"hls": hls, "concat": concat}


@pytest.mark.parametrize("kind", ["hls", "concat"])
def test_playlist_uploads_cannot_make_ffmpeg_read_other_files(tmp_path: Path, kind: str):
    upload = _playlists(tmp_path)[kind]
    with pytest.raises(AudioError, match="not a decodable media file"):
        ffmpeg.probe_media(upload)
    pcm = tmp_path / "audio.pcm"
    with pytest.raises(AudioError, match="extraction failed"):
        ffmpeg.decode_to_pcm(upload, pcm, chain="", timeout_s=30)
    assert not pcm.exists() or pcm.stat().st_size == 0
