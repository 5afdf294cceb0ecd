"""The audio stage against the real FFmpeg binary."""

from pathlib import Path

import pytest

from local_stack.sample_video import make_corrupt_video, make_tone_video, make_video_without_audio
from video_processor import audio
from video_processor.config import AudioProfile
from video_processor.errors import AudioError


def test_installed_ffmpeg_has_a_denoise_filter_and_the_seed_chain_uses_it():
    denoise = audio.available_denoise_filter()
    chain, label = audio.filter_chain(AudioProfile.SEED)
    assert denoise in ("afftdn", "anlmdn")
    assert chain == f"highpass=f=200,lowpass=f=3800,{denoise}"
    assert label == f"seed:{denoise}"


def test_seed_chain_falls_back_to_basic_filtering_without_denoise(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(audio, "available_denoise_filter", lambda ffmpeg="ffmpeg": None)
    assert audio.filter_chain(AudioProfile.SEED) == ("highpass=f=200,lowpass=f=3800", "seed:basic")


def test_other_profiles():
    assert audio.filter_chain(AudioProfile.NONE) == ("", "none")
    assert audio.filter_chain(AudioProfile.HIGHPASS) == ("highpass=f=200", "highpass")


def test_probe_reads_duration_and_audio_presence(tmp_path: Path):
    info = audio.probe_media(make_tone_video(tmp_path / "a.mp4", seconds=4))
    assert info.has_audio
    assert info.duration_s == pytest.approx(4, abs=0.2)
    assert not audio.probe_media(make_video_without_audio(tmp_path / "b.mp4", seconds=2)).has_audio


def test_undecodable_file_is_an_ffmpeg_failure_that_says_so(tmp_path: Path):
    with pytest.raises(AudioError, match="not a decodable media file") as caught:
        audio.probe_media(make_corrupt_video(tmp_path / "c.mp4"))
    assert caught.value.code == "FFMPEG_FAILED"


def test_extraction_makes_chunks_no_longer_than_requested_give_or_take_a_packet(tmp_path: Path):
    video = make_tone_video(tmp_path / "long.mp4", seconds=25)
    out = tmp_path / "chunks"
    out.mkdir()
    chunks = audio.extract_audio_chunks(
        video, out, chain="highpass=f=200", chunk_seconds=10, timeout_s=60
    )
    assert [round(chunk.start_s) for chunk in chunks] == [0, 10, 20]
    assert all(chunk.duration_s <= 10.1 for chunk in chunks)
    assert sum(chunk.duration_s for chunk in chunks) == pytest.approx(25, abs=0.2)
    probe = audio.probe_media(chunks[0].path)
    assert probe.has_audio and probe.duration_s == pytest.approx(10, abs=0.1)


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
        audio.probe_media(upload)
    out = tmp_path / "chunks"
    out.mkdir()
    with pytest.raises(AudioError, match="extraction failed"):
        audio.extract_audio_chunks(upload, out, chain="", chunk_seconds=10, timeout_s=30)
    assert list(out.glob("*.wav")) == []
