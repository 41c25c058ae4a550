"""How well speaker encoders tell apart the local speakers that linking clusters: the equal
error rate of same-person against other-person pairs of local speakers of one recording
(linking only compares those), over the items of tools/harvest_local_speakers.py, for all
items and for those at least 90 % pure. Each encoder is a speaker-encoder file
(tools/train_speaker_encoder.py) or a diarization checkpoint that carries one.

    OMP_NUM_THREADS=1 python bench/local_speaker_eer.py exp/local/dev_real2.npz \
        --encoders diarize/assets/default.pt exp/local/speaker_local.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from diarize.utils import DiarizeError, run_tool


def load_encoder(path: str):
    """The speaker encoder of a speaker-encoder file or of a diarization checkpoint."""
    from diarize.checkpoint import (
        SPEAKER_FORMAT,
        load_checkpoint,
        speaker_encoder_in,
        speaker_encoder_of,
    )

    try:
        return speaker_encoder_of(load_checkpoint(path, kind=SPEAKER_FORMAT), path)
    except DiarizeError:
        encoder = speaker_encoder_in(load_checkpoint(path), path)
    if encoder is None:
        raise DiarizeError(f"{path}: carries no speaker encoder")
    return encoder


def embed_items(encoder, items) -> np.ndarray:
    """(items, embedding) unit-length embeddings of the harvested items."""
    offsets, frames = items["offsets"], items["frames"]
    out = []
    with torch.inference_mode():
        for lo, hi in zip(offsets[:-1], offsets[1:], strict=True):
            x = torch.from_numpy(frames[lo:hi].astype(np.float32))
            out.append(encoder.embed(x).numpy())
    return np.stack(out)


def equal_error_rate(same: np.ndarray, other: np.ndarray) -> float:
    """The rate at which the threshold's false rejections equal its false acceptances."""
    scores = np.concatenate([same, other])
    truth = np.concatenate([np.ones(len(same)), np.zeros(len(other))])
    order = np.argsort(-scores)
    accepted_same = np.cumsum(truth[order]) / max(1, len(same))
    accepted_other = np.cumsum(1 - truth[order]) / max(1, len(other))
    i = int(np.argmin(np.abs((1 - accepted_same) - accepted_other)))
    return float(((1 - accepted_same[i]) + accepted_other[i]) / 2)


def pair_scores(emb: np.ndarray, labels: np.ndarray, recordings: np.ndarray, keep: np.ndarray):
    """Cosines of same-label and other-label pairs of kept items of one recording."""
    same, other = [], []
    for rec in np.unique(recordings):
        idx = np.flatnonzero((recordings == rec) & keep)
        cos = emb[idx] @ emb[idx].T
        upper = np.triu_indices(len(idx), 1)
        match = labels[idx][:, None] == labels[idx][None, :]
        same.append(cos[upper][match[upper]])
        other.append(cos[upper][~match[upper]])
    return np.concatenate(same), np.concatenate(other)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("items", nargs="+", help=".npz files of tools/harvest_local_speakers.py")
    p.add_argument("--encoders", nargs="+", required=True,
                   help="speaker-encoder files or checkpoints")  # fmt: skip
    args = p.parse_args()
    for path in args.items:
        items = np.load(path)
        labels, recordings = items["labels"], items["recordings"]
        pure = items["purity"] >= 0.9
        for name in args.encoders:
            emb = embed_items(load_encoder(name), items)
            eers = [equal_error_rate(*pair_scores(emb, labels, recordings, keep))
                    for keep in (np.ones(len(labels), bool), pure)]  # fmt: skip
            print(f"{path} {name}: EER {100 * eers[0]:.2f} % (all {len(labels)}), "
                  f"{100 * eers[1]:.2f} % ({int(pure.sum())} at least 90 % pure)", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    run_tool(main, Path(__file__).name)
