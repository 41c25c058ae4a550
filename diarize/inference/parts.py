"""Stage 3, before linking: a local speaker whose parts sound like two persons is cut in two.

Within one window the network sometimes gives one local speaker the turns of two persons
(measured with ``bench/oracle_linking.py``: linked by an oracle, the windows' own confusion
is 2-3 points of DER, against 9-18 for the stored linking, and a fifth of the local
speakers of 2-speaker conversations have more than 20 % of their frames alone spoken by
another person). The embedding of such a local speaker is a blend of two voices, and pulls
two clusters together. Windows overlap, so each window is cut into *parts* at the frames
where other windows start or stop (halves, with windows every half window), and a local
speaker's embedding is the sum of its parts' (:mod:`diarize.inference.embed`). Where two
consecutive parts heard alone for at least ``LinkConfig.part_min_seconds`` each have
embeddings with a cosine below ``LinkConfig.part_split_below``, the local speaker is cut
there into two columns (its posteriors before and after the cut), each with the embedding of
its own parts. The two may still link to one global speaker: they are never active together.
A pretrained embedding model's parts come free (its pieces are cut at the same frames); the
checkpoint's speaker encoder embeds them only when the analysis is run with the setting on
(a second pass over the frames alone: 9 % more time for a 21-minute meeting).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from diarize.config import LinkConfig
from diarize.inference.local import WindowOutput


def split_parts(windows: list[WindowOutput], link: LinkConfig) -> list[WindowOutput]:
    """``windows`` with the local speakers whose parts disagree cut in two (or more); the
    same list when ``link.part_split_below`` is 0 or the windows have no parts."""
    if link.part_split_below <= 0:
        return windows
    return [split_window(out, link.part_split_below, link.part_min_seconds) for out in windows]


def split_window(out: WindowOutput, below: float, min_seconds: float) -> WindowOutput:
    """One window's output with each local speaker cut at the part boundaries where
    consecutive parts of at least ``min_seconds`` have embeddings of cosine below ``below``.
    In a window where any local speaker is cut, every column's embedding is the sum of its
    parts' (as measured for the README; with the speaker encoder this differs a little from
    one embedding over all its frames, and keeping that one for the uncut columns is a
    change still to measure)."""
    if out.part_sums is None or out.embeddings is None or out.probs.shape[1] == 0:
        return out
    frames = len(out.probs)
    columns, source, embeddings = [], [], []
    for k in range(out.probs.shape[1]):
        edges = [0, *cuts(out.part_sums[k], out.part_seconds[k], out.part_starts, below, min_seconds), frames]  # fmt: skip
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            column = np.zeros(frames, dtype=out.probs.dtype)
            column[lo:hi] = out.probs[lo:hi, k]
            parts = (out.part_starts >= lo) & (out.part_starts < hi)  # (parts,)
            total = out.part_sums[k, parts].sum(0)  # (embedding,)
            columns.append(column)
            source.append(k)
            embeddings.append(total / max(float(np.linalg.norm(total)), 1e-12))
    if len(columns) == out.probs.shape[1]:
        return out
    return cut_output(out, np.stack(columns, axis=1), np.array(source), np.stack(embeddings))


def cuts(
    sums: np.ndarray, seconds: np.ndarray, starts: np.ndarray, below: float, min_seconds: float
) -> list[int]:
    """Window-relative frames where one local speaker is cut: sums (parts, embedding) and
    seconds (parts,) of its parts starting at ``starts (parts,)``; it is cut at the start of
    a part heard long enough whose embedding has a cosine below ``below`` with the previous
    part heard long enough."""
    heard = np.flatnonzero(seconds >= min_seconds)
    unit = sums[heard] / np.maximum(np.linalg.norm(sums[heard], axis=1, keepdims=True), 1e-12)
    return [
        int(starts[heard[i + 1]])
        for i in range(len(heard) - 1)
        if float(unit[i] @ unit[i + 1]) < below
    ]


def cut_output(
    out: WindowOutput, probs: np.ndarray, source: np.ndarray, embeddings: np.ndarray
) -> WindowOutput:
    """``out`` with columns ``probs (frames, columns)`` cut from its local speakers
    ``source (columns,)``, each with its own ``embeddings (columns, embedding)``;
    attractors, voices and whether it is embedded follow its source (each cut-off column
    holds a part heard for ``part_min_seconds`` at least)."""
    return dataclasses.replace(
        out,
        probs=probs,
        attractors=out.attractors[source],
        voice=None if out.voice is None else out.voice[source],
        voice_frames=None if out.voice_frames is None else out.voice_frames[source],
        embeddings=embeddings.astype(np.float32),
        embedded=None if out.embedded is None else out.embedded[source],
        active=None,
        alone=None,
        part_starts=None,
        part_sums=None,
        part_seconds=None,
    )
