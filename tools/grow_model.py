#!/usr/bin/env python
"""Deepen a trained EEND-EDA checkpoint without changing what it computes: the model's
Transformer layers keep their weights, and new layers whose residual branches start at
zero are spread among them (``diarize.models.deepen``). Training from the result
(``diarize train --init OUT --set model.n_layers=N``) starts at the original model's
accuracy with more capacity. Prints the largest output difference on a test signal.

    python tools/grow_model.py diarize/assets/default.pt exp/deep6/init.pt --layers 6
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from diarize.checkpoint import load_model, save_checkpoint
from diarize.models import deepen
from diarize.utils import DiarizeError, run_tool


def largest_difference(a: torch.nn.Module, b: torch.nn.Module, seconds: float = 8.0) -> float:
    """Largest activity-probability difference of ``a`` and ``b`` on seeded noise."""
    wave = torch.randn(int(16000 * seconds), generator=torch.Generator().manual_seed(0)) * 0.1
    ((pa, _),) = a.infer(wave, num_speakers=2)
    ((pb, _),) = b.infer(wave, num_speakers=2)
    return float((pa - pb).abs().max())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path, help="EEND-EDA checkpoint (a training or exported one)")
    p.add_argument("dst", type=Path, help="checkpoint to write, ready for diarize train --init")
    p.add_argument("--layers", type=int, required=True, help="Transformer layers of the result")
    args = p.parse_args()
    model, config = load_model(args.src)
    try:
        grown = deepen(model, args.layers)
    except ValueError as e:
        raise DiarizeError(f"{args.src}: {e}") from None
    config = replace(config, model=grown.config)
    save_checkpoint(args.dst, grown, config)
    params = sum(t.numel() for t in grown.parameters())
    print(
        f"{args.dst}: {len(model.encoder.layers)} -> {args.layers} layers, {params / 1e6:.2f} M "
        f"parameters; largest output difference {largest_difference(model, grown):.2e}"
    )
    return 0


if __name__ == "__main__":
    run_tool(main, Path(__file__).name)
