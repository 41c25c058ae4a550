#!/usr/bin/env python
"""Set up the adaptation of a trained model (``diarize train --init CKPT``) to a benchmark:
write a config whose ``features``, ``model`` and ``infer`` sections are CKPT's own (adaptation
needs the same architecture, and keeps the tuned inference settings) and whose ``train``
section is BASE's (learning rate, epochs, chunks...), with ``--set`` overrides on top; and,
when CKPT carries a speaker encoder for linking, write it on its own so that
``tools/export_model.py ADAPTED OUT --speaker SPEAKER`` can put it into the adapted model
(training keeps only the diarization weights).

    python tools/adapt_from.py diarize/assets/default.pt --base configs/eend_eda_adapt.yaml \
        --config-out exp/callhome/adapt.yaml --speaker-out exp/callhome/speaker.pt \
        --set train.epochs=20
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from diarize.checkpoint import (
    config_of,
    load_checkpoint,
    save_speaker_encoder,
    speaker_encoder_in,
)
from diarize.config import load_config, merge_overrides, parse_overrides, to_dict, to_yaml
from diarize.utils import atomic_write, run_tool


def adaptation_config(ckpt_path: Path, base: Path, overrides: dict):
    """BASE's train section over CKPT's features, model and infer sections."""
    trained = config_of(load_checkpoint(ckpt_path))
    base_config = load_config(base)
    config = replace(trained, train=base_config.train)
    return load_config(None, merge_overrides(to_dict(config), overrides))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ckpt", type=Path, help="the model to adapt (diarize/assets/default.pt...)")
    p.add_argument("--base", type=Path, required=True, help="config whose train section to use")
    p.add_argument("--config-out", type=Path, required=True, help="adaptation config to write")
    p.add_argument("--speaker-out", type=Path, help="where CKPT's speaker encoder goes")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = p.parse_args()
    config = adaptation_config(args.ckpt, args.base, parse_overrides(args.set))
    with atomic_write(args.config_out) as f:
        f.write(f"# adaptation of {args.ckpt}: its features/model/infer, train from {args.base}\n")
        f.write(to_yaml(config))
    print(f"{args.config_out}: features/model/infer of {args.ckpt}, train of {args.base}")
    if args.speaker_out is not None:
        encoder = speaker_encoder_in(load_checkpoint(args.ckpt), str(args.ckpt))
        if encoder is None:
            print(f"{args.ckpt} carries no speaker encoder: linking will use voice profiles")
        else:
            save_speaker_encoder(args.speaker_out, encoder)
            print(f"{args.speaker_out}: the speaker encoder of {args.ckpt}")
    return 0


if __name__ == "__main__":
    run_tool(main, Path(__file__).name)
