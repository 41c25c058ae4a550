"""What augmentation costs on this CPU: pre-rendered once per recording, or per training chunk.

Times each step of :mod:`diarize.data.augment` and the simulator's reverberation and noise on
a 20 s chunk (one training example of the default config) and on a 90 s recording (a
simulated conversation), one thread, median of ``--repeats`` runs; prints the cost per hour
of audio. Pre-rendering pays once per simulated hour; on the fly it is paid again every epoch
for every chunk drawn (the default recipe draws 60 x 1024 chunks of 20 s = 341 hours).

    OMP_NUM_THREADS=1 python bench/augment_cost.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from diarize.data import augment
from diarize.data.simulate import _reverberate, add_noise, coloured_noise, synthetic_rir

SAMPLE_RATE = 16000


def steps(rng: np.random.Generator) -> dict:
    """Name -> function of a wave (the random draws are part of the cost)."""
    rir = synthetic_rir(0.5, rng)
    event = coloured_noise(3 * SAMPLE_RATE, 1.0, rng)
    out = {
        f"channel {kind}": (lambda w, k=kind: augment.channel(w, k, rng))
        for kind in augment.CHANNELS
    }
    out["reverb (RT60 0.5 s)"] = lambda w: _reverberate(w, rir)
    out["noise (coloured)"] = lambda w: add_noise(w, coloured_noise(w.size, 1.0, rng), 10.0)
    out["events (2 / min)"] = lambda w: augment.add_events(w, [event], 2.0, (0.0, 10.0), rng)
    return out


def median_seconds(fn, wave: np.ndarray, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(wave)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    waves = {s: 0.1 * rng.standard_normal(s * SAMPLE_RATE) for s in (20, 90)}
    print(f"{'step':<22}{'20 s chunk ms':>14}{'90 s rec. ms':>14}{'s per audio hour':>18}")
    for name, fn in steps(rng).items():
        t20, t90 = (median_seconds(fn, waves[s], args.repeats) for s in (20, 90))
        print(f"{name:<22}{1000 * t20:>14.1f}{1000 * t90:>14.1f}{t90 * 3600 / 90:>18.1f}")


if __name__ == "__main__":
    main()
