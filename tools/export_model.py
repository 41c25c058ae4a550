#!/usr/bin/env python
"""Export a trained checkpoint as a model to ship: weights + config only (no optimiser or
RNG state), float16 storage when float32 would exceed --max-mb (weights are cast back to
float32 on load). Prints the size and a checksum.

    python tools/export_model.py exp/offline_sim/avg.pt diarize/assets/default.pt
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

from diarize.checkpoint import load_checkpoint
from diarize.utils import atomic_path

KEEP = ("format", "version", "versions", "config", "model", "epoch", "step", "averaged")


def export(src: Path, dst: Path, max_mb: float) -> tuple[float, str]:
    ckpt = load_checkpoint(src)
    out = {k: ckpt[k] for k in KEEP if k in ckpt}
    size = sum(v.numel() * v.element_size() for v in out["model"].values()) / 2**20
    if size > max_mb:
        out["model"] = {k: v.half() if v.is_floating_point() else v for k, v in out["model"].items()}
    with atomic_path(dst) as tmp:
        torch.save(out, tmp)
    digest = hashlib.sha256(dst.read_bytes()).hexdigest()[:16]
    return dst.stat().st_size / 2**20, digest


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--max-mb", type=float, default=25.0, help="store float16 above this float32 size")
    args = p.parse_args()
    mb, digest = export(args.src, args.dst, args.max_mb)
    print(f"{args.dst}: {mb:.1f} MB, sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
