"""Voice features for linking: pitch, spectral envelope, profiles and their similarity."""

from __future__ import annotations

import numpy as np
import pytest

from diarize.features.voice import (
    N_MELS,
    analysis_pitch,
    speaker_frames,
    voice_and_speaker_frames,
    voice_frames,
    voice_profiles,
)
from diarize.inference import voice_similarity

SR = 16000
SPF = 1600  # 100 ms model frames


def harmonic(f0: float, seconds: float, tilt: float = 1.0, seed: int = 0) -> np.ndarray:
    """A steady voiced sound: harmonics of ``f0`` falling off as 1 / h**tilt, light noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    harmonics = range(1, int(7000 / f0) + 1)
    wave = sum(np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 6)) / h**tilt for h in harmonics)
    wave = wave + 0.01 * rng.standard_normal(len(t))
    return (0.05 * wave / np.sqrt(np.mean(wave**2))).astype(np.float32)  # same loudness


@pytest.mark.parametrize("f0", [90.0, 150.0, 230.0])
def test_pitch_of_a_harmonic_voice(f0):
    feats = voice_frames(harmonic(f0, 1.0), SPF)
    assert feats.shape == (10, N_MELS + 1)
    np.testing.assert_allclose(np.exp(feats[:, N_MELS]), f0, rtol=0.03)
    assert np.isfinite(feats[:, :N_MELS]).all()


def test_silence_and_noise_are_unvoiced():
    assert np.isnan(voice_frames(np.zeros(SR, dtype=np.float32), SPF)[:, N_MELS]).all()
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    assert np.isnan(voice_frames(noise, SPF)[:, N_MELS]).mean() > 0.8


def test_frame_count_and_bad_frame_size():
    assert voice_frames(np.zeros(SPF * 3 + 700, dtype=np.float32), SPF).shape == (3, N_MELS + 1)
    assert voice_frames(np.zeros(100, dtype=np.float32), SPF).shape == (0, N_MELS + 1)
    with pytest.raises(ValueError, match="multiple"):
        voice_frames(np.zeros(SR, dtype=np.float32), 1000)


@pytest.mark.parametrize("extra", [0, 700])
def test_voice_and_speaker_frames_analyse_pitch_once_and_give_the_same(extra):
    wave = np.concatenate([harmonic(120.0, 1.2), harmonic(210.0, 1.0, seed=1)])[: SR * 2 + extra]
    voice, speaker = voice_and_speaker_frames(wave, SPF)
    np.testing.assert_array_equal(voice, voice_frames(wave, SPF))
    np.testing.assert_array_equal(speaker, speaker_frames(wave[: len(voice) * SPF]))
    assert speaker.shape[0] == 10 * len(voice) == 200
    with pytest.raises(ValueError, match="analysis frames"):
        voice_frames(wave[:SR], SPF, pitch=analysis_pitch(wave[: SR // 2]))


def test_spectral_tilt_shows_in_the_log_mel():
    bright = voice_frames(harmonic(120.0, 1.0, tilt=0.5), SPF)[:, :N_MELS].mean(0)
    dull = voice_frames(harmonic(120.0, 1.0, tilt=2.0), SPF)[:, :N_MELS].mean(0)
    # relative to the lowest bands, the bright voice keeps more energy up high
    assert (bright[-10:] - bright[:5].mean()).mean() > (dull[-10:] - dull[:5].mean()).mean() + 3


def test_profiles_pool_the_frames_where_a_speaker_is_alone():
    feats = np.zeros((6, N_MELS + 1))
    feats[:, :N_MELS] = np.arange(6)[:, None]
    feats[:, N_MELS] = [np.log(100), np.nan, np.log(200), np.log(400), 5.0, 5.0]
    active = np.array([[1, 0], [1, 0], [1, 1], [0, 1], [0, 1], [0, 0]], dtype=bool)
    profiles, counts = voice_profiles(feats, active)
    assert counts.tolist() == [2, 2]  # frame 2 has both: nobody's alone there
    assert profiles[0, 0] == 0.5 and profiles[0, N_MELS] == pytest.approx(np.log(100))
    assert profiles[1, 0] == 3.5 and profiles[1, N_MELS] == pytest.approx((np.log(400) + 5) / 2)
    profiles, counts = voice_profiles(feats, np.zeros((6, 1), dtype=bool))
    assert counts.tolist() == [0] and np.isnan(profiles).all()


def profiles_of(voices: list[tuple[float, float]], seconds: float = 3.0) -> np.ndarray:
    """One profile per (f0, tilt), each from its own few seconds of sound."""
    rows = []
    for i, (f0, tilt) in enumerate(voices):
        feats = voice_frames(harmonic(f0, seconds, tilt, seed=i), SPF)
        profile, _ = voice_profiles(feats, np.ones((len(feats), 1), dtype=bool))
        rows.append(profile[0])
    return np.stack(rows)


def test_voice_similarity_separates_voices_and_keeps_one_voice_together():
    voices = [(110.0, 1.0), (110.0, 1.0), (210.0, 1.6), (210.0, 1.6)]
    sim = voice_similarity(profiles_of(voices), np.full(4, 30))
    assert sim[0, 1] > 0.8 and sim[2, 3] > 0.8
    assert sim[0, 2] < 0 and sim[1, 3] < 0
    np.testing.assert_allclose(sim, sim.T)
    # One voice only: centred on itself nothing but noise is left, and the floor keeps the
    # profiles together; without the floor they would look unrelated.
    one = profiles_of([(140.0, 1.2)] * 4)
    assert (voice_similarity(one, np.full(4, 30)) > 0.55).all()
    assert voice_similarity(one, np.full(4, 30), floor=0.0).min() < 0.55


def test_unvoiced_profiles_compare_by_spectrum_only():
    profiles = profiles_of([(110.0, 1.0), (110.0, 1.0), (210.0, 1.6)])
    profiles[1, N_MELS] = np.nan  # no voiced frame heard for this one
    sim = voice_similarity(profiles, np.full(3, 30))
    assert sim[0, 1] > sim[0, 2] and sim[0, 1] > sim[1, 2]
