"""The bundled model on noise alone: no one speaks, so (almost) nothing is speech."""

from __future__ import annotations

import numpy as np
import pytest

from diarize import Diarizer
from diarize.data.simulate import coloured_noise

SAMPLE_RATE = 16000


@pytest.fixture(scope="module")
def diarizer() -> Diarizer:
    return Diarizer.from_pretrained()


@pytest.mark.slow
@pytest.mark.parametrize("exponent", [0.0, 1.0], ids=["white", "pink"])
@pytest.mark.parametrize("level_db", [-20.0, -40.0])
def test_noise_alone_is_not_speech(diarizer, exponent, level_db):
    rng = np.random.default_rng(7)
    wave = coloured_noise(30 * SAMPLE_RATE, exponent, rng) * 10 ** (level_db / 20)
    result = diarizer((wave.astype(np.float32), SAMPLE_RATE), uri="noise")
    speech = result.annotation.get_timeline().support().duration()
    assert speech <= 0.02 * 30  # the real-voices target: at most 2 % labelled speech
