"""Smoke tests of the accuracy bench's corpus, noise, mixing and scoring helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.accuracy import (
    DATA_ROOT,
    NOISE_SEEDS,
    conditions,
    join,
    load_corpus,
    make_noise,
    mix_at_snr,
    normalise,
    power,
    read_wav,
    recommend,
    score,
    summarise,
    write_wav,
)
from video_processor.ffmpeg import SAMPLE_RATE_HZ


def test_normaliser_lowercases_strips_markup_and_punctuation():
    assert normalise("<s> Mr. John, don't GO! [3] </s> (utt-01)") == "mister john don't go"
    assert normalise("10 of clubs; 4 queen.") == "ten of clubs four queen"
    assert normalise("'quoted' words") == "quoted words"


def test_scoring_uses_the_normaliser():
    assert score("ten of clubs", "10 of Clubs.") == {"wer": 0.0, "cer": 0.0}
    assert score("ten of clubs", "ten of clothes")["wer"] == pytest.approx(1 / 3, abs=1e-3)
    assert score("ten of clubs", "  ") == {"wer": 1.0, "cer": 1.0}


@pytest.mark.parametrize("kind", sorted(NOISE_SEEDS))
def test_noise_is_reproducible_and_unit_power(kind):
    first = make_noise(kind, 16_000, seed=7)
    assert np.array_equal(first, make_noise(kind, 16_000, seed=7))
    assert power(first) == pytest.approx(1.0, rel=1e-6)
    assert abs(float(first.mean())) < 1e-9


def test_pink_noise_has_more_power_at_low_frequencies():
    spectrum = np.abs(np.fft.rfft(make_noise("pink", 64_000, seed=1))) ** 2
    frequencies = np.fft.rfftfreq(64_000, 1 / SAMPLE_RATE_HZ)
    low = spectrum[(frequencies > 100) & (frequencies < 200)].mean()
    high = spectrum[(frequencies > 3_200) & (frequencies < 6_400)].mean()
    assert 10 < low / high < 60  # 1/f: 32x between these bands


def test_hum_is_fifty_hertz():
    spectrum = np.abs(np.fft.rfft(make_noise("hum", 16_000, seed=3)))
    assert int(np.argmax(spectrum)) == 50  # 1 Hz bins over one second


@pytest.mark.parametrize("snr_db", [0, 5, 10])
def test_mixing_hits_the_requested_snr(snr_db):
    rng = np.random.default_rng(0)
    speech = 0.1 * np.sin(np.linspace(0, 2000, 32_000)) * rng.uniform(0.5, 1, 32_000)
    noise = make_noise("white", 32_000, seed=2)
    mixed = mix_at_snr(speech, noise, snr_db)
    measured = 10 * np.log10(power(speech) / power(mixed - speech))
    assert measured == pytest.approx(snr_db, abs=0.01)


def test_a_loud_mix_is_scaled_down_not_clipped():
    speech = np.full(1000, 0.9)
    mixed = mix_at_snr(speech, make_noise("white", 1000, seed=5), 0)
    assert float(np.max(np.abs(mixed))) == pytest.approx(0.99)


def test_conditions_are_clean_plus_each_noise_and_snr():
    names = list(conditions(np.ones(100) * 0.1, ["white", "hum"], [0, 10]))
    assert names == ["clean", "white@0dB", "white@10dB", "hum@0dB", "hum@10dB"]


def test_wav_round_trip_and_join(tmp_path: Path):
    signal = join([np.full(160, 0.5), np.full(160, -0.5)], gap_s=0.01)
    assert len(signal) == 160 + 160 + 160
    write_wav(tmp_path / "x.wav", signal)
    assert np.allclose(read_wav(tmp_path / "x.wav"), signal, atol=1e-4)


def test_summary_means_wins_and_recommendation():
    results = {
        "clean": {"none": {"wer": 0.1, "cer": 0.05}, "denoise": {"wer": 0.1, "cer": 0.05}},
        "white@0dB": {"none": {"wer": 0.3, "cer": 0.2}, "denoise": {"wer": 0.5, "cer": 0.3}},
    }
    summary = summarise(results, ["denoise", "none"])
    assert summary["mean"]["none"]["wer"] == pytest.approx(0.2)
    assert summary["mean_noisy"]["denoise"]["wer"] == pytest.approx(0.5)
    assert summary["wins"] == {"denoise": 1, "none": 2}
    assert summary["recommended_default"] == "none"
    # A tie goes to the simpler profile.
    assert recommend({"denoise": {"wer": 0.2}, "highpass": {"wer": 0.2}}) == "highpass"


@pytest.mark.skipif(not DATA_ROOT.exists(), reason="pocketsphinx-testdata is not installed")
def test_corpus_has_ten_utterances_with_references():
    utterances = load_corpus()
    assert len(utterances) == 10
    assert {u.corpus for u in utterances} == {"librivox", "cards"}
    assert all(u.wav.exists() and u.reference for u in utterances)
    assert utterances[0].reference.startswith("and mister john dashwood")
