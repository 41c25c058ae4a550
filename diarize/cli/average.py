"""``diarize average``: average the weights of the last N epoch checkpoints."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "average",
        help="average model weights of several checkpoints",
        description="Average the weights of checkpoints (same model config) into one "
        "model-only checkpoint. Either list CKPT files, or give --exp-dir and --last N to "
        "take the newest N epoch checkpoints of a training directory.",
    )
    p.add_argument("checkpoints", nargs="*", metavar="CKPT", help="checkpoint files to average")
    p.add_argument("--exp-dir", help="training output directory (with checkpoint_epochN.pt files)")
    p.add_argument(
        "--last", type=int, default=5, help="with --exp-dir: how many newest epochs (default 5)"
    )
    p.add_argument("-o", "--output", required=True, help="averaged checkpoint to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from diarize.checkpoint import average_checkpoints
    from diarize.utils import DiarizeError

    paths = [Path(p) for p in args.checkpoints]
    if args.exp_dir:
        from diarize.train import epoch_checkpoints

        found = epoch_checkpoints(Path(args.exp_dir))
        if not found:
            raise DiarizeError(f"{args.exp_dir}: no checkpoint_epochN.pt file")
        paths += [p for _, p in found[-args.last :]]
    if not paths:
        raise DiarizeError("give checkpoint files or --exp-dir")
    average_checkpoints(paths, args.output)
    print(
        f"averaged {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) -> {args.output}"
    )
    return 0
