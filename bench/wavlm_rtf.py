"""CPU real-time factor of the WavLM frontend (base size, random weights) on 60 s of audio.

For each setting: RTF = median of 3 timed runs (after one warm-up) / audio duration, and the
relative deviation of the kept layers' hidden states from the fp32 single-pass reference,
max over kept layers of ||h - h_fp32|| / ||h_fp32||. The last line is ``RTF <value>`` for
the fastest setting whose deviation stays below 1 %.

    nice python bench/wavlm_rtf.py [--seconds 60] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from diarize.config import FeatureConfig, WavLMConfig
from diarize.features.wavlm import WavLMFrontend

SAMPLE_RATE = 16000
MAX_DEVIATION = 0.01


def make_frontend(layers: int = 0, quantize: bool = False) -> WavLMFrontend:
    torch.manual_seed(0)  # the same random weights in every setting
    config = FeatureConfig(kind="wavlm", wavlm=WavLMConfig(shape="base", layers=layers))
    frontend = WavLMFrontend(config).eval()
    if quantize:
        frontend.quantize()
    return frontend


def run_frontend(
    frontend: WavLMFrontend, wave: torch.Tensor, window: float = 0.0, bf16: bool = False
):
    """Hidden states of ``wave`` (1, samples), each (1, frames, dim); with ``window`` seconds
    the audio is cut into equal windows run as one batch and the frames put back in order."""
    batch, frames = wave, wave.shape[1] // 320
    if window:
        size = round(window * SAMPLE_RATE)
        batch = F.pad(wave, (0, -wave.shape[1] % size)).reshape(-1, size)  # (windows, samples)
    lengths = torch.full((batch.shape[0],), batch.shape[1])
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        states, _ = frontend.hidden_states(batch, lengths)
    return [h.float().reshape(1, -1, h.shape[-1])[:, :frames] for h in states]  # (1, frames, dim)


def time_it(
    fn: Callable[[], list[torch.Tensor]], runs: int = 3
) -> tuple[float, list[torch.Tensor]]:
    out = fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def deviation(states: list[torch.Tensor], reference: list[torch.Tensor]) -> float:
    return max(((h - r).norm() / r.norm()).item() for h, r in zip(states, reference, strict=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    wave = 0.1 * torch.randn(1, round(args.seconds * SAMPLE_RATE))

    full, cut = make_frontend(), make_frontend(layers=6)
    full_q, cut_q = make_frontend(quantize=True), make_frontend(layers=6, quantize=True)
    settings = {  # name -> (frontend, window seconds, bf16 autocast)
        "fp32 12 layers": (full, 0.0, False),
        "fp32 6 layers": (cut, 0.0, False),
        "int8 12 layers": (full_q, 0.0, False),
        "int8 6 layers": (cut_q, 0.0, False),
        "fp32 12 layers, 10 s windows": (full, 10.0, False),
        "fp32 6 layers, 10 s windows": (cut, 10.0, False),
        "int8 6 layers, 10 s windows": (cut_q, 10.0, False),
        "bf16 6 layers": (cut, 0.0, True),
    }
    print(
        f"WavLM base (random weights), {args.seconds:g} s audio, {torch.get_num_threads()} threads"
    )
    print(f"{'setting':32s} {'RTF':>7s} {'rel. dev.':>10s}")
    reference, results = None, {}
    with torch.inference_mode():
        for name, (frontend, window, bf16) in settings.items():
            seconds, states = time_it(
                lambda f=frontend, w=window, b=bf16: run_frontend(f, wave, w, b)
            )
            reference = reference or states  # the first setting is the fp32 reference
            results[name] = (seconds / args.seconds, deviation(states, reference))
            print(f"{name:32s} {results[name][0]:7.3f} {results[name][1]:10.2%}", flush=True)
    ok = {name: rtf for name, (rtf, dev) in results.items() if dev < MAX_DEVIATION}
    best = min(ok, key=ok.get)
    print(f"fastest below {MAX_DEVIATION:.0%} deviation: {best}")
    print(f"RTF {ok[best]:.3f}")


if __name__ == "__main__":
    main()
