#!/usr/bin/env python
"""Export a trained checkpoint as a model to ship: weights + config only (no optimiser or
RNG state), float16 storage when float32 would exceed --max-mb (weights are cast back to
float32 on load), and inference settings tuned on a dev set (``--infer KEY=VALUE``: they
live apart from the weights, so they change without retraining) and optionally a speaker
encoder for linking (``--speaker``). Prints size and checksum.

    python tools/export_model.py exp/offline_sim/avg.pt diarize/assets/default.pt \
        --infer median=11 threshold=0.5
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import replace
from pathlib import Path

import torch

from diarize.checkpoint import SPEAKER_FORMAT, config_of, load_checkpoint, speaker_encoder_of
from diarize.config import InferConfig, from_dict, parse_value, to_dict
from diarize.utils import atomic_path, run_tool

KEEP = ("format", "version", "versions", "config", "model", "epoch", "step", "averaged", "speaker")


def export(
    src: Path,
    dst: Path,
    max_mb: float,
    infer: dict[str, str] | None = None,
    speaker: Path | None = None,
) -> tuple[float, str]:
    ckpt = load_checkpoint(src)
    out = {k: ckpt[k] for k in KEEP if k in ckpt}
    if speaker is not None:
        entry = load_checkpoint(speaker, kind=SPEAKER_FORMAT)
        speaker_encoder_of(entry, str(speaker))  # fails here, not at inference, if broken
        out["speaker"] = {"config": entry["config"], "model": entry["model"]}
    if infer:
        config = config_of(ckpt)
        fields = {k: parse_value(v) for k, v in infer.items()}
        out["config"] = to_dict(
            replace(config, infer=from_dict(InferConfig, {**to_dict(config.infer), **fields}))
        )
    size = sum(v.numel() * v.element_size() for v in out["model"].values()) / 2**20
    if size > max_mb:
        out["model"] = {
            k: v.half() if v.is_floating_point() else v for k, v in out["model"].items()
        }
    with atomic_path(dst) as tmp:
        torch.save(out, tmp)
    digest = hashlib.sha256(dst.read_bytes()).hexdigest()[:16]
    return dst.stat().st_size / 2**20, digest


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument(
        "--max-mb", type=float, default=25.0, help="store float16 above this float32 size"
    )
    p.add_argument(
        "--infer", nargs="*", default=[], metavar="KEY=VALUE", help="inference settings to store"
    )
    p.add_argument(
        "--speaker",
        type=Path,
        help="speaker encoder to carry for linking (tools/train_speaker_encoder.py)",
    )
    args = p.parse_args()
    infer = dict(item.split("=", 1) for item in args.infer)
    mb, digest = export(args.src, args.dst, args.max_mb, infer, args.speaker)
    print(f"{args.dst}: {mb:.1f} MB, sha256 {digest}")
    return 0


if __name__ == "__main__":
    run_tool(main, Path(__file__).name)
