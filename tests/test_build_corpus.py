"""The pure parts of tools/build_corpus.py: texts, the person split, tool detection."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "tools" / "build_corpus.py"


@pytest.fixture(scope="module")
def bc():
    spec = importlib.util.spec_from_file_location("build_corpus", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_corpus"] = module
    spec.loader.exec_module(module)
    return module


def test_sentences_are_varied_and_deterministic(bc):
    rng = np.random.default_rng(0)
    sentences = [bc.make_sentence(rng) for _ in range(200)]
    assert len(set(sentences)) > 150
    for s in sentences:
        assert "{" not in s and s[0].isupper() and 4 <= len(s.split()) <= 25
    assert bc.utterance_text("flite_awb-0001", 0) == bc.utterance_text("flite_awb-0001", 0)
    assert bc.utterance_text("flite_awb-0001", 0) != bc.utterance_text("flite_awb-0002", 0)


def test_person_split_never_splits_a_person(bc):
    speakers = [
        "flite_kal16", "fest_kal", "fest_kal_sp0.9", "flite_slt", "fest_slt_sp1.1",
        "flite_rms", "flite_rms_sp0.9", "fest_ked", "espeak_tr00", "espeak_dev00",
        "codec2_david", "asterisk_allison_sp1.1",
    ]  # fmt: skip
    person = {s: bc.person_of(s) for s in speakers}
    assert person["fest_kal_sp0.9"] == person["flite_kal16"] == "cmu_kal"
    assert person["fest_slt_sp1.1"] == person["flite_slt"] == "cmu_slt"
    train, dev = bc.split_persons(person.values(), bc.DEV_PERSONS)
    assert not set(train) & set(dev)
    assert set(train) | set(dev) == set(person.values())
    assert {"cmu_rms", "cmu_ked", "codec2_david", "espeak_dev00"} <= set(dev)
    assert {"cmu_kal", "cmu_slt", "espeak_tr00", "asterisk_allison"} <= set(train)


def test_dev_espeak_voices_are_not_train_variants(bc):
    train = {(accent, variant) for accent, variant, _, _ in bc.ESPEAK_TRAIN}
    assert not {v for _, v, _, _ in bc.ESPEAK_DEV} & {v for _, v in train}


def test_missing_tools_are_named_with_apt_line(bc):
    available = {
        "flite": True,
        "text2wave": False,
        "espeak-ng": True,
        "asterisk": False,
        "codec2": True,
    }
    msg = bc.missing_message(available)
    assert "text2wave" in msg and "asterisk" in msg and "flite," not in msg
    assert "apt-get install" in msg and "festival" in msg and "asterisk-core-sounds-en-wav" in msg
    assert bc.missing_message(dict.fromkeys(available, True)) is None


def test_detection_matches_the_path(bc):
    found = bc.available_sources()
    assert found["flite"] == (shutil.which("flite") is not None)
    assert found["espeak-ng"] == (shutil.which("espeak-ng") is not None)


def test_trim_keeps_a_margin(bc):
    wave = np.zeros(3 * bc.SAMPLE_RATE, np.float32)
    wave[bc.SAMPLE_RATE : 2 * bc.SAMPLE_RATE] = 0.5
    out = bc._trim(wave, margin=0.1)
    assert out.size == pytest.approx(1.2 * bc.SAMPLE_RATE, abs=2)
