#!/usr/bin/env python
"""Turn LibriSpeech subsets into the single-speaker source corpus ``diarize simulate`` reads.

LibriSpeech layout: ``ROOT/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac``.
Output (Kaldi style)::

    wav.scp      <utt> <absolute path of the flac>
    utt2spk      <utt> <speaker>
    spk2utt
    spk2person   <speaker> <speaker>   (a LibriSpeech speaker is one person)
    persons_train / persons_dev        speakers of the --train subsets / of the --dev subsets

Train and dev subsets of LibriSpeech have disjoint speakers; that is checked.

    python tools/prepare_librispeech.py /data/LibriSpeech data/librispeech \\
        --train train-clean-100 --dev dev-clean
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def scan(root: Path, subset: str) -> dict[str, tuple[str, Path]]:
    """``{utt: (speaker, path)}`` of one subset."""
    base = root / subset
    if not base.is_dir():
        raise SystemExit(f"prepare_librispeech: error: {base}: no such subset directory")
    utts = {}
    for path in sorted(base.glob("*/*/*.flac")):
        speaker = path.parent.parent.name
        if not path.stem.startswith(f"{speaker}-"):
            raise SystemExit(
                f"prepare_librispeech: error: {path}: file name does not start with its speaker id {speaker}"
            )
        utts[path.stem] = (speaker, path.resolve())
    if not utts:
        raise SystemExit(
            f"prepare_librispeech: error: {base}: no .flac file under <speaker>/<chapter>/"
        )
    return utts


def write_lines(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines))
    tmp.replace(path)


def prepare(root: Path, out: Path, train: list[str], dev: list[str]) -> tuple[int, int, int]:
    """Write the corpus; returns (utterances, train speakers, dev speakers)."""
    train_utts = {u: v for s in train for u, v in scan(root, s).items()}
    dev_utts = {u: v for s in dev for u, v in scan(root, s).items()}
    train_spk = sorted({s for s, _ in train_utts.values()})
    dev_spk = sorted({s for s, _ in dev_utts.values()})
    shared = set(train_spk) & set(dev_spk)
    if shared:
        raise SystemExit(
            f"prepare_librispeech: error: speakers in both train and dev subsets: {sorted(shared)[:10]}"
        )
    utts = dict(sorted({**train_utts, **dev_utts}.items()))
    out.mkdir(parents=True, exist_ok=True)
    write_lines(out / "wav.scp", [f"{u} {p}" for u, (_, p) in utts.items()])
    write_lines(out / "utt2spk", [f"{u} {s}" for u, (s, _) in utts.items()])
    spk2utt: dict[str, list[str]] = {}
    for u, (s, _) in utts.items():
        spk2utt.setdefault(s, []).append(u)
    write_lines(out / "spk2utt", [f"{s} {' '.join(us)}" for s, us in sorted(spk2utt.items())])
    write_lines(out / "spk2person", [f"{s} {s}" for s in sorted(spk2utt)])
    write_lines(out / "persons_train", train_spk)
    write_lines(out / "persons_dev", dev_spk)
    return len(utts), len(train_spk), len(dev_spk)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "root", type=Path, help="LibriSpeech directory (holding train-clean-100/, dev-clean/...)"
    )
    p.add_argument("out", type=Path, help="output corpus directory")
    p.add_argument("--train", nargs="+", default=["train-clean-100"], help="training subsets")
    p.add_argument("--dev", nargs="+", default=["dev-clean"], help="held-out subsets")
    args = p.parse_args(argv)
    n, ntr, ndev = prepare(args.root, args.out, args.train, args.dev)
    print(f"{args.out}: {n} utterances, {ntr} train speakers, {ndev} dev speakers", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
