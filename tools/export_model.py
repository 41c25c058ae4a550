#!/usr/bin/env python
"""Export a trained checkpoint as a model to ship: weights + config only (no optimiser or
RNG state), float16 storage when float32 would exceed --max-mb (weights are cast back to
float32 on load), and inference settings tuned on a dev set (``--infer KEY=VALUE``, nested
linking constants as ``link.KEY=VALUE``: they live apart from the weights, so they change
without retraining) and optionally a speaker encoder for linking (``--speaker``) or a
pretrained speaker-embedding model to link with by default (``--embedding``, stored with
the linking settings tuned for it; ``--embedding-infer`` changes them). Prints size and
checksum. The work is :func:`diarize.checkpoint.export_model`.

    python tools/export_model.py exp/offline_sim/avg.pt diarize/assets/default.pt \
        --infer median=11 threshold=0.5
    python tools/export_model.py diarize/assets/default.pt exp/with_campplus.pt \
        --embedding data/pretrained/campplus_cn_en_common.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from diarize.checkpoint import export_model
from diarize.config import parse_overrides
from diarize.utils import DiarizeError, run_tool


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
    p.add_argument(
        "--embedding",
        metavar="NAME|PATH",
        help="pretrained speaker-embedding model to carry and link with by default "
        "(CAM++, WeSpeaker ResNet, ECAPA: a file or a name of diarize.embeddings.HUB)",
    )
    p.add_argument(
        "--embedding-infer",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="linking settings stored with --embedding, over those tuned for its kind "
        "(link_threshold=0.5 link.method=centroid)",
    )
    args = p.parse_args()
    infer = parse_overrides(args.infer, "--infer")
    embedding_infer = parse_overrides(args.embedding_infer, "--embedding-infer")
    if embedding_infer and args.embedding is None:
        raise DiarizeError("--embedding-infer needs --embedding")
    mb, digest = export_model(
        args.src, args.dst, args.max_mb, infer, args.speaker, args.embedding, embedding_infer
    )
    print(f"{args.dst}: {mb:.1f} MB, sha256 {digest}")
    return 0


if __name__ == "__main__":
    run_tool(main, Path(__file__).name)
