"""Simulated mixtures on a tiny corpus of tone bursts with silences inside."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pyannote.core import Annotation, Segment

from diarize.data.kaldi import load_diarization_set
from diarize.data.simulate import (
    SimulationConfig,
    activity_stats,
    add_noise,
    coloured_noise,
    energy_vad,
    simulate,
    split_speakers,
)
from diarize.rttm import read_rttm
from diarize.utils import DiarizeError

SR = 16000


def burst(rng: np.random.Generator, freq: float, seconds: float) -> np.ndarray:
    """A tone with a raised-cosine envelope plus a little shaped noise."""
    t = np.arange(int(seconds * SR)) / SR
    env = np.sin(np.pi * t / seconds) ** 0.5
    return (0.3 * env * (np.sin(2 * np.pi * freq * t) + 0.1 * rng.standard_normal(t.size))).astype(
        np.float32
    )


def utterance(rng: np.random.Generator, freq: float) -> np.ndarray:
    """0.1 s silence, 0.5 s burst, 0.5 s silence, 0.4 s burst, 0.1 s silence."""
    z = lambda s: np.zeros(int(s * SR), np.float32)  # noqa: E731
    return np.concatenate([z(0.1), burst(rng, freq, 0.5), z(0.5), burst(rng, freq, 0.4), z(0.1)])


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """6 speakers (persons p0..p4; s5 is a second speaker of person p0), 3 utterances each."""
    root = tmp_path / "corpus"
    (root / "audio").mkdir(parents=True)
    rng = np.random.default_rng(1)
    scp, u2s = [], []
    for s in range(6):
        for u in range(3):
            utt = f"s{s}-{u}"
            sf.write(root / "audio" / f"{utt}.wav", utterance(rng, 200 + 90 * s), SR)
            scp.append(f"{utt} audio/{utt}.wav\n")
            u2s.append(f"{utt} s{s}\n")
    (root / "wav.scp").write_text("".join(scp))
    (root / "utt2spk").write_text("".join(u2s))
    persons = [f"s{s} p{s % 5}\n" for s in range(6)]
    (root / "spk2person").write_text("".join(persons))
    return root


def small(**kw) -> SimulationConfig:
    base = dict(num_mixtures=4, speakers=(1, 2), beta=0.5, min_utts=2, max_utts=3, rir_prob=0.5)
    return SimulationConfig(**(base | kw))


def test_energy_vad_finds_the_gap(rng):
    regions = energy_vad(utterance(rng, 300))
    assert len(regions) == 2
    # each burst is covered, widened by at most the hangover (0.05 s) plus one frame
    for (a, b), (start, end) in zip(regions, [(0.1, 0.6), (1.1, 1.5)], strict=True):
        assert start - 0.08 <= a <= start + 0.01
        assert end - 0.01 <= b <= end + 0.08


def test_energy_vad_leaves_a_noise_floor_out(rng):
    # two 0.4 s syllables at -13 dBFS over hiss 26 dB under them, as in klettres hu: only the
    # syllables are speech (the floor is within 40 dB of the peak, so a peak-relative
    # threshold alone labels the whole wave)
    t = np.arange(int(0.4 * SR)) / SR
    syllable = 0.3 * np.sin(2 * np.pi * 180 * t) * np.hanning(t.size) ** 0.2
    wave = 0.016 * rng.standard_normal(3 * SR)
    for start in (0.5, 2.0):
        wave[int(start * SR) : int(start * SR) + t.size] += syllable
    regions = energy_vad(wave)
    assert len(regions) == 2
    for (a, b), start in zip(regions, (0.5, 2.0), strict=True):
        assert start - 0.1 <= a and b <= start + 0.5
    assert energy_vad(wave, floor_margin_db=-np.inf) == [(0.0, 3.0)]  # without the floor


def test_energy_vad_keeps_speech_without_pauses(rng):
    # no pause to measure a floor in: the floor's threshold stays 20 dB under the peak
    t = np.arange(2 * SR) / SR
    wave = (0.2 + 0.15 * np.sin(2 * np.pi * 3 * t)) * np.sin(2 * np.pi * 150 * t)
    assert energy_vad(wave) == [(0.0, 2.0)]


def test_rttm_lines_are_speech_regions(corpus, tmp_path):
    cfg = small(num_mixtures=1, speakers=(1,), min_utts=1, max_utts=1, rir_prob=0.0)
    simulate(corpus, tmp_path / "out", cfg, progress=False)
    ann = read_rttm(tmp_path / "out" / "rttm")["mix_000000"]
    segs = [s for s, _ in ann.itertracks()]
    assert len(segs) == 2  # one utterance with a silent gap: two regions
    # the 0.5 s silence inside, narrowed by the VAD hangover (0.05 s each side)
    assert segs[1].start - segs[0].end == pytest.approx(0.4, abs=0.06)
    assert segs[0].duration == pytest.approx(0.6, abs=0.06)


def test_same_seed_same_output_whatever_the_workers(corpus, tmp_path):
    cfg = small()
    simulate(corpus, tmp_path / "a", cfg, workers=1, progress=False)
    simulate(corpus, tmp_path / "b", cfg, workers=2, progress=False)
    for name in ["rttm", "wav.scp", "reco2dur"]:
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    for wav in sorted((tmp_path / "a" / "wav").glob("*.wav")):
        assert wav.read_bytes() == (tmp_path / "b" / "wav" / wav.name).read_bytes()
    other = simulate(corpus, tmp_path / "c", small(seed=1), progress=False)
    assert other.mixtures == 4
    assert (tmp_path / "c" / "rttm").read_text() != (tmp_path / "a" / "rttm").read_text()


def test_rerun_resumes_and_other_settings_fail(corpus, tmp_path):
    out = tmp_path / "out"
    simulate(corpus, out, small(), progress=False)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "wav").glob("*.wav")}
    (out / "wav" / "mix_000001.wav").unlink()
    simulate(corpus, out, small(), progress=False)
    for p, t in stamps.items():
        if p.name != "mix_000001.wav":
            assert p.stat().st_mtime_ns == t
    assert (out / "wav" / "mix_000001.wav").exists()
    with pytest.raises(DiarizeError, match="other settings"):
        simulate(corpus, out, small(beta=1.0), progress=False)
    # a set made before a field existed (its simulation.json lacks it) was made with its
    # default: it resumes under that default, and only under it
    meta = json.loads((out / "simulation.json").read_text())
    del meta["config"]["voice_shift"]
    (out / "simulation.json").write_text(json.dumps(meta))
    simulate(corpus, out, small(), progress=False)
    with pytest.raises(DiarizeError, match="other settings"):
        simulate(corpus, out, small(voice_shift=0.1), progress=False)


def test_output_loads_as_a_diarization_set(corpus, tmp_path):
    simulate(corpus, tmp_path / "out", small(), progress=False)
    dset = load_diarization_set(tmp_path / "out")
    assert len(dset) == 4
    for rec in dset:
        labels = set(rec.annotation.labels())
        assert 1 <= len(labels) <= 2
        assert rec.annotation.get_timeline().extent().end <= rec.duration + 0.01


def test_speaker_lists_are_respected(corpus, tmp_path):
    person_of = {f"s{s}": f"p{s % 5}" for s in range(6)}
    train, dev = split_speakers(person_of, num_dev=2, seed=0, person_of=person_of)
    assert not {person_of[s] for s in train} & {person_of[s] for s in dev}
    assert sorted(train + dev) == sorted(person_of)
    simulate(corpus, tmp_path / "tr", small(num_mixtures=6), speaker_list=train, progress=False)
    used = {lab for ann in read_rttm(tmp_path / "tr" / "rttm").values() for lab in ann.labels()}
    assert used <= set(train)
    for ann in read_rttm(tmp_path / "tr" / "rttm").values():  # never one person twice
        persons = [person_of[s] for s in ann.labels()]
        assert len(persons) == len(set(persons))
    with pytest.raises(DiarizeError, match="distinct persons"):
        simulate(corpus, tmp_path / "x", small(speakers=(5,)), speaker_list=dev, progress=False)


@pytest.mark.parametrize("snr", [5.0, 20.0])
def test_snr_is_achieved(rng, snr):
    signal = np.concatenate([np.zeros(8000), np.sin(np.arange(16000) * 0.1)])
    noise = coloured_noise(signal.size, 1.0, rng)
    assert np.mean(noise**2) == pytest.approx(1.0, rel=1e-6)
    mixed = add_noise(signal, noise, snr)
    achieved = 10 * np.log10(np.mean(signal**2) / np.mean((mixed - signal) ** 2))
    assert achieved == pytest.approx(snr, abs=1e-6)


def test_overlap_and_silence_ratios_by_hand():
    a = Annotation(uri="r1")
    a[Segment(0, 4), "t1"] = "A"
    a[Segment(2, 6), "t2"] = "B"
    b = Annotation(uri="r2")
    b[Segment(1, 2), "t1"] = "A"
    stats = activity_stats([a, b], {"r1": 10.0, "r2": 10.0})
    assert stats.speech == pytest.approx(7.0)
    assert stats.overlap == pytest.approx(2.0)
    assert stats.overlap_ratio == pytest.approx(2 / 7)
    assert stats.silence_ratio == pytest.approx(13 / 20)


def test_cli_missing_source_is_one_clear_line(tmp_path):
    cmd = [sys.executable, "-m", "diarize", "simulate", str(tmp_path / "nope"), str(tmp_path / "o")]
    proc = subprocess.run(cmd + ["--num-mixtures", "2"], capture_output=True, text=True)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope: no such directory" in lines[0]
    assert not (tmp_path / "o").exists()


def test_a_set_can_be_extended(corpus, tmp_path):
    simulate(corpus, tmp_path / "a", small(num_mixtures=2), progress=False)
    simulate(corpus, tmp_path / "a", small(num_mixtures=4), progress=False)
    simulate(corpus, tmp_path / "b", small(num_mixtures=4), progress=False)
    assert (tmp_path / "a" / "rttm").read_text() == (tmp_path / "b" / "rttm").read_text()
