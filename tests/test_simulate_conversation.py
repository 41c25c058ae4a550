"""Simulated conversations and meetings (turn-taking), noise-only recordings, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import test_simulate
from pyannote.core import Annotation, Segment

from diarize.data import augment
from diarize.data.simulate import (
    SimulationConfig,
    activity_stats,
    build_pool,
    gaps_from_rttm,
    make_mixture,
)
from diarize.utils import DiarizeError

SR = 16000
corpus = test_simulate.corpus  # the tone-burst corpus fixture


def _speech_seconds(ann: Annotation) -> float:
    return ann.get_timeline().support().duration()


def test_conversation_overlaps_within_natural_range(corpus, tmp_path):
    cfg = SimulationConfig(num_mixtures=8, speakers=(2, 3), mode="conversation", min_utts=3,
                           max_utts=3, activity="segments", seed=3)  # fmt: skip
    pool = build_pool(corpus, cfg, tmp_path)
    mixtures = [make_mixture(i, pool) for i in range(8)]
    stats = activity_stats([m.annotation for m in mixtures],
                           {m.id: m.wave.size / SR for m in mixtures})  # fmt: skip
    # turn-taking: some overlap, far less than Fujita mixtures' 40-74 %
    assert 0.02 < stats.overlap_ratio < 0.4
    for m in mixtures:
        assert 2 <= len(m.annotation.labels()) <= 3
        # a leading stretch with no speech (noise only) before the first turn
        assert m.annotation.get_timeline()[0].start >= 0.5
        assert m.annotation.get_timeline()[-1].end <= m.wave.size / SR


def test_conversation_is_deterministic(corpus, tmp_path):
    cfg = SimulationConfig(num_mixtures=2, speakers=(2,), mode="conversation", seed=5)
    pool = build_pool(corpus, cfg, tmp_path)
    a, b = make_mixture(1, pool), make_mixture(1, pool)
    assert np.array_equal(a.wave, b.wave) and a.annotation == b.annotation


def test_no_overlap_without_overlap_probability(corpus, tmp_path):
    cfg = SimulationConfig(num_mixtures=4, speakers=(3,), mode="conversation", overlap_prob=0.0,
                           activity="segments", seed=1)  # fmt: skip
    pool = build_pool(corpus, cfg, tmp_path)
    for i in range(4):
        ann = make_mixture(i, pool).annotation
        assert ann.get_overlap().duration() == pytest.approx(0.0, abs=1e-9)


def test_gaps_drawn_from_reference_turns(corpus, tmp_path):
    # only a fixed 0.5 s overlap at every change of speaker, 1 s pause for the same speaker
    cfg = SimulationConfig(num_mixtures=1, speakers=(2,), mode="conversation",
                           activity="segments", turn_gaps=(-0.5,), same_gaps=(1.0,), seed=2)  # fmt: skip
    ann = make_mixture(0, build_pool(corpus, cfg, tmp_path)).annotation
    change, same = gaps_from_rttm([ann])
    assert change and all(g == pytest.approx(-0.5, abs=1e-3) for g in change)
    assert all(g == pytest.approx(1.0, abs=1e-3) for g in same)


def test_gaps_from_rttm_exact():
    ann = Annotation(uri="r")
    ann[Segment(0, 2)] = "A"
    ann[Segment(1.5, 4)] = "B"  # change, overlap 0.5
    ann[Segment(4.25, 5)] = "B"  # same speaker, pause 0.25
    ann[Segment(6, 7)] = "A"  # change, pause 1
    ann[Segment(30, 31)] = "A"  # a 23 s gap is not turn-taking
    change, same = gaps_from_rttm([ann])
    assert change == [-0.5, 1.0] and same == [0.25]


def test_noise_only_recording_has_no_label(corpus, tmp_path):
    cfg = SimulationConfig(num_mixtures=1, speakers=(0,), seed=0)
    m = make_mixture(0, build_pool(corpus, cfg, tmp_path))
    assert len(m.annotation) == 0 and m.speakers == []
    assert 20 * SR <= m.wave.size <= 60 * SR and np.sqrt(np.mean(m.wave**2)) > 1e-4


def test_meeting_persons_come_and_go(corpus, tmp_path):
    cfg = SimulationConfig(num_mixtures=1, speakers=(5,), mode="meeting", meeting_minutes=0.5,
                           min_utts=2, max_utts=2, activity="segments", seed=4)  # fmt: skip
    m = make_mixture(0, build_pool(corpus, cfg, tmp_path))
    assert m.wave.size >= 30 * SR
    assert len(m.annotation.labels()) == 5  # every person speaks at some point
    # not everybody is present all along: some person is silent for a long stretch
    gaps = [
        max(b.start - a.end for a, b in zip(tl, list(tl)[1:], strict=False)) if len(tl) > 1 else 0
        for tl in (m.annotation.label_timeline(lab) for lab in m.annotation.labels())
    ]
    assert max(gaps) > 3.0


def test_bad_mode_is_one_line():
    with pytest.raises(DiarizeError, match="--mode"):
        SimulationConfig(mode="chat").check()


def _tone(freq: float, seconds: float = 2.0) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)


def _band_energy(wave: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(wave)) ** 2
    f = np.fft.rfftfreq(wave.size, 1 / SR)
    return float(spec[(f >= lo) & (f < hi)].sum())


def test_telephone_band_removes_high_frequencies():
    wave = _tone(1000) + _tone(6000)
    out = augment.telephone(wave)
    assert out.shape == wave.shape
    assert _band_energy(out, 5000, 7000) < 1e-3 * _band_energy(wave, 5000, 7000)
    assert _band_energy(out, 900, 1100) > 0.5 * _band_energy(wave, 900, 1100)


@pytest.mark.parametrize("kind", augment.CHANNELS)
def test_channels_keep_length_and_signal(kind):
    rng = np.random.default_rng(0)
    wave = 0.1 * rng.standard_normal(3 * SR)
    out = augment.channel(wave, kind, rng)
    assert out.shape == wave.shape and np.isfinite(out).all()
    assert 0.05 < np.std(out) / np.std(wave) < 5


def test_events_add_energy_only_where_placed():
    rng = np.random.default_rng(0)
    wave = np.zeros(60 * SR)
    out = augment.add_events(wave, [_tone(440, 1.0)], 5.0, (0.0, 0.0), rng)
    active = np.abs(out) > 0
    assert 0 < active.mean() < 0.5  # a few one-second events in a minute
    assert augment.add_events(wave, [], 5.0, (0.0, 0.0), rng) is wave


def test_speed_plays_a_tone_faster_and_higher():
    tone = _tone(400, 1.0)
    fast = augment.speed(tone, 1.1)
    assert fast.size == pytest.approx(tone.size / 1.1, abs=2)
    spectrum = np.abs(np.fft.rfft(fast))
    assert np.fft.rfftfreq(fast.size, 1 / SR)[np.argmax(spectrum)] == pytest.approx(440, abs=3)


def test_voice_shift_gives_each_speaker_its_own_speed(corpus, tmp_path):
    base = dict(num_mixtures=3, speakers=(3,), mode="conversation", overlap_prob=0.0,
                activity="segments", seed=4)  # fmt: skip
    plain = build_pool(corpus, SimulationConfig(**base), tmp_path / "a")
    shifted = build_pool(corpus, SimulationConfig(**base, voice_shift=0.1), tmp_path / "b")
    factors = []
    for i in range(3):
        a, b = make_mixture(i, plain), make_mixture(i, shifted)
        assert a.speakers == b.speakers  # the other draws are those of the plain recording
        for spk in a.annotation.labels():
            ratio = _speech_seconds(a.annotation.subset([spk])) / _speech_seconds(
                b.annotation.subset([spk])
            )
            factors.append(ratio)  # the speed factor: its speech lasts 1 / factor as long
    assert all(0.9 - 1e-3 <= f <= 1.1 + 1e-3 for f in factors)
    assert all(abs(f * 100 - round(f * 100)) < 0.05 for f in factors)  # on the 0.01 grid
    assert len(set(np.round(factors, 2))) > 2  # speakers get different factors
    with pytest.raises(DiarizeError, match="--voice-shift must lie in"):
        SimulationConfig(voice_shift=0.5).check()
