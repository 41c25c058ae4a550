"""Noise alone: how much of a recording with nobody in it a model labels as speech.

White, pink and brown noise (60 s each, at -20 dBFS RMS and at -40 dBFS), and a music-like
signal the simulator never uses (a chord of harmonic tones with a slow tremolo), diarized with
the model given; prints the fraction of each recording's duration that the output RTTM covers
(speech of any speaker), and the number of speakers found.

    OMP_NUM_THREADS=1 python bench/noise_only.py [--model CKPT] [--seconds 60]

The target of the real-voices issue is at most 2 % of white or pink noise labelled as speech.
"""

from __future__ import annotations

import argparse

import numpy as np

from diarize import Diarizer
from diarize.data.simulate import coloured_noise

SAMPLE_RATE = 16000


def chord(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Three harmonic tones (A minor), 3 Hz tremolo, unit RMS."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = sum(
        np.sin(2 * np.pi * f * k * t + rng.uniform(0, 2 * np.pi)) / k
        for f in (220.0, 261.6, 329.6)
        for k in range(1, 6)
    )
    wave = wave * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    return wave / np.sqrt(np.mean(wave**2))


def signals(seconds: float) -> dict[str, np.ndarray]:
    """Unit-RMS test signals by name."""
    rng = np.random.default_rng(0)
    n = int(seconds * SAMPLE_RATE)
    out = {
        name: coloured_noise(n, exponent, rng)
        for name, exponent in (("white", 0.0), ("pink", 1.0), ("brown", 2.0))
    }
    out["chord"] = chord(seconds, rng)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="checkpoint (default: the bundled model)")
    p.add_argument("--seconds", type=float, default=60.0)
    args = p.parse_args()
    diarizer = Diarizer.from_pretrained(args.model)
    print(f"{'signal':<8}{'level dBFS':>11}{'speech %':>10}{'speakers':>10}")
    for name, wave in signals(args.seconds).items():
        for level in (-20.0, -40.0):
            scaled = (wave * 10 ** (level / 20)).astype(np.float32)
            result = diarizer((scaled, SAMPLE_RATE), uri=name)
            speech = result.annotation.get_timeline().support().duration()
            share = 100 * speech / args.seconds
            print(f"{name:<8}{level:>11.0f}{share:>10.2f}{len(result.annotation.labels()):>10}")


if __name__ == "__main__":
    main()
