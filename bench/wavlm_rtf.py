"""CPU real-time factor of the WavLM frontend (base size, random weights) on 60 s of audio.

For each setting: RTF = median of 3 timed runs (after one warm-up) / audio duration, and the
relative deviation of the kept layers' hidden states, max over kept layers of
``||h - h_ref|| / ||h_ref||``, from two fp32 references (all 12 layers, no quantization):

- ``dev/window``: fp32 run on the *same windows*. ``diarize run`` never sees more than one
  window (the training chunk, 8-30 s) at a time anyway, so this is the honest reference: it
  measures the numeric approximation (int8, truncation, ...) and nothing else.
- ``dev/full``: fp32 run on the whole audio in one pass. For a windowed setting this adds
  the loss of context beyond the window, which the diarization model never had; it is shown
  for information only.

The last line is ``RTF <value>`` of the fastest setting whose ``dev/window`` stays below 1 %.

Windows are cut as :func:`diarize.inference.window_starts` does, with the hop equal to the
window (the last window ends at the end of the audio) and run in batches of ``--batch-size``;
each output frame comes from the last window covering it. ``diarize run`` uses half-window
hops by default (``infer.hop``), which runs the frontend on every second twice: pass
``--hop`` equal to ``--window`` to get the frontend cost measured here.

Settings: fp32 with 12, 6, 4 layers (``features.wavlm.layers``: truncation drops upper
layers exactly, so the kept ones equal the full model's and deviate by 0), dynamic int8 of
the Transformer's Linear layers (``features.wavlm.quantize``; its error grows with depth:
0.6 % after layer 1, 1.3 % after layer 6 with random weights), on the whole audio or in 8 or
10 s windows. Tried and dropped: dynamic int8 of the convolutional feature extractor (2.5x
faster convolutions, but ~35 % deviation) and of WavLM's feature projection (~2 % at hidden
state 0 by itself). Not tried: bf16 autocast (no bf16 units on AVX2 CPUs, where it is
emulated) and ``torch.compile`` (C++ toolchain, minutes of compilation per shape). At 6
layers the convolutional feature extractor, the same in every setting, is over half the
time. Everything runs in ``torch.inference_mode`` with ``--threads`` intra-op threads and
one inter-op thread.

    nice python bench/wavlm_rtf.py [--seconds 60] [--threads 2] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from diarize.config import FeatureConfig, WavLMConfig
from diarize.features.wavlm import HOP, WavLMFrontend
from diarize.inference import window_starts

SAMPLE_RATE = 16000
MAX_DEVIATION = 0.01


@dataclass(frozen=True)
class Setting:
    layers: int  # Transformer layers kept (12 = all)
    quantize: str  # "" (fp32) | "int8" (dynamic int8 Linear layers of the Transformer)
    window: float  # seconds per window; 0 = the whole audio in one pass

    @property
    def name(self) -> str:
        where = f"{self.window:g} s windows" if self.window else "full"
        return f"{self.quantize or 'fp32'} {self.layers} layers, {where}"


SETTINGS = [
    Setting(12, "", 0.0),  # the full-context reference
    Setting(6, "", 0.0),
    Setting(12, "int8", 0.0),
    Setting(6, "int8", 0.0),
    Setting(12, "", 10.0),  # the 10 s window reference
    Setting(6, "", 10.0),
    Setting(4, "", 10.0),
    Setting(6, "int8", 10.0),
    Setting(4, "int8", 10.0),
    Setting(3, "int8", 10.0),
    Setting(12, "", 8.0),  # the 8 s window reference
    Setting(4, "", 8.0),
    Setting(4, "int8", 8.0),
]


def make_frontend(layers: int, quantize: bool) -> WavLMFrontend:
    torch.manual_seed(0)  # the same random weights in every setting
    config = FeatureConfig(kind="wavlm", wavlm=WavLMConfig(shape="base", layers=layers))
    frontend = WavLMFrontend(config).eval()
    if quantize:
        frontend.quantize()
    return frontend


def run_frontend(
    frontend: WavLMFrontend, wave: torch.Tensor, window: float, batch_size: int
) -> list[torch.Tensor]:
    """Hidden states of ``wave`` (1, samples), each (1, frames, dim), frames = samples // 320:
    in one pass, or in ``window``-second windows put back in order."""
    if not window:
        states, _ = frontend.hidden_states(wave, torch.tensor([wave.shape[1]]))
        return states
    frames, size = wave.shape[1] // HOP, round(window * SAMPLE_RATE) // HOP  # 20 ms frames
    starts = window_starts(frames, size, size)
    out = None
    for b in range(0, len(starts), batch_size):
        group = starts[b : b + batch_size]
        batch = torch.stack([wave[0, s * HOP : (s + size) * HOP] for s in group])
        lengths = torch.full((len(group),), batch.shape[1])
        states, _ = frontend.hidden_states(batch, lengths)  # each (windows, size, dim)
        if out is None:
            out = [h.new_zeros(1, frames, h.shape[-1]) for h in states]
        for o, h in zip(out, states, strict=True):
            for i, s in enumerate(group):
                o[0, s : s + size] = h[i, : frames - s]
    return out


def time_it(
    fn: Callable[[], list[torch.Tensor]], runs: int = 3
) -> tuple[float, list[torch.Tensor]]:
    """Median seconds of ``runs`` calls after one warm-up, and the last result."""
    out = fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def deviation(states: list[torch.Tensor], reference: list[torch.Tensor]) -> float:
    """Max over the kept hidden states of ||h - h_ref|| / ||h_ref||."""
    return max(((h - r).norm() / r.norm()).item() for h, r in zip(states, reference, strict=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio duration")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(1)
    wave = 0.1 * torch.randn(1, round(args.seconds * SAMPLE_RATE))

    print(
        f"WavLM base (random weights), {args.seconds:g} s audio, {torch.get_num_threads()} threads"
    )
    print(f"{'setting':34s} {'RTF':>7s} {'dev/window':>11s} {'dev/full':>9s}")
    frontends: dict[tuple[int, str], WavLMFrontend] = {}  # (layers, quantize) -> frontend
    references: dict[float, list[torch.Tensor]] = {}  # window -> fp32 12-layer states
    results = {}
    with torch.inference_mode():
        for s in SETTINGS:
            key = (s.layers, s.quantize)
            if key not in frontends:
                frontends[key] = make_frontend(s.layers, bool(s.quantize))
            seconds, states = time_it(
                lambda f=frontends[key], w=s.window: run_frontend(f, wave, w, args.batch_size)
            )
            if s.layers == 12 and not s.quantize:
                references[s.window] = states
            rtf = seconds / args.seconds
            dev_window = deviation(states, references[s.window])
            dev_full = deviation(states, references[0.0])
            results[s.name] = (rtf, dev_window)
            print(f"{s.name:34s} {rtf:7.3f} {dev_window:11.2%} {dev_full:9.2%}", flush=True)
    ok = {name: rtf for name, (rtf, dev) in results.items() if dev < MAX_DEVIATION}
    best = min(ok, key=ok.get)
    print(f"fastest below {MAX_DEVIATION:.0%} deviation from fp32 on the same windows: {best}")
    print(f"RTF {ok[best]:.3f}")


if __name__ == "__main__":
    main()
