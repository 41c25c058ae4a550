"""``diarize train``: train or adapt an EEND-EDA model from a YAML config."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train (or adapt) an EEND-EDA model",
        description="Train an EEND-EDA model. The YAML config maps onto diarize.config's "
        "dataclasses (sections features, model, train, infer); unknown keys are errors. "
        "Every epoch writes OUT_DIR/checkpoint_epochN.pt (full config, weights, optimiser, "
        "schedule and RNG state: --resume continues exactly where a killed run stopped). "
        "Several processes: torchrun --nproc_per_node N -m diarize train ...",
    )
    p.add_argument("--config", required=True, help="YAML experiment config (configs/*.yaml)")
    p.add_argument(
        "--init",
        metavar="CKPT",
        help="start from this checkpoint's weights (adaptation / fine-tuning)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in the output directory",
    )
    p.add_argument("--out-dir", help="override train.out_dir")
    p.add_argument("--train-data", help="override train.train_data")
    p.add_argument("--dev-data", help="override train.dev_data")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--seed", type=int, help="override train.seed")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config field, e.g. --set features.wavlm.checkpoint=/path/WavLM-Base+.pt "
        "--set train.feature_cache=exp/cache (repeatable; VALUE is read as YAML)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from diarize.config import load_config, merge_overrides, parse_overrides
    from diarize.train import train

    options = {"out_dir": args.out_dir, "train_data": args.train_data, "dev_data": args.dev_data,
               "epochs": args.epochs, "seed": args.seed}  # fmt: skip
    given = {"train": {k: v for k, v in options.items() if v is not None}}
    config = load_config(args.config, merge_overrides(parse_overrides(args.set), given))
    out = train(config, init=args.init, resume=args.resume)
    print(f"checkpoints in {out}")
    return 0
