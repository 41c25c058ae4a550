#!/usr/bin/env python
"""Check that each "person" of a source corpus is one voice, with a pretrained speaker
embedding (default: the CAM++ zh-en checkpoint in data/pretrained/).

For every person (``spk2person``; speakers without an entry are their own person), the
person's clips are joined in id order (0.1 s pauses) and cut into segments of ``--seconds``;
each segment is embedded. Per person it prints the mean pairwise cosine of its segments
(``within``), their cosine to the person's centroid (``self``: mean, minimum), the lowest
cosine to that centroid of ``--clips`` of its clips embedded alone (spread over the person;
``clip``), and the nearest other person's centroid. Flags: ``LOW`` (within below ``--low``: mixed voices, or
clips that are not speech), ``LIKE <other>`` (centroids closer than ``--like``: two persons
who may be one voice), ``ODD <clip>`` (a clip below ``--odd``: someone else, or no speech).
Speed-perturbed copies (speakers ending ``_sp0.9``...) are left out unless
``--with-perturbed``.

    python tools/check_persons.py data/corpus --json exp/check_persons.json
    python tools/check_persons.py --files a.wav b.flac c.wav     # pairwise cosines of files
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from diarize.audio import load_audio
from diarize.data.kaldi import Utterance, load_source_corpus
from diarize.data.simulate import read_spk2person
from diarize.embeddings import SAMPLE_RATE, SpeakerEmbedding, load_embedding
from diarize.utils import DiarizeError, atomic_write, run_tool

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "data/pretrained/campplus_cn_en_common.pt"
PERTURBED = re.compile(r"_sp\d+(\.\d+)?$")
PAUSE = 0.1  # seconds of silence between joined clips


@dataclass(frozen=True)
class PersonReport:
    person: str
    segments: int
    self_mean: float  # mean cosine of the person's segments to their centroid
    self_min: float  # the worst segment's
    within: float  # mean pairwise cosine between the person's segments
    nearest: str  # the other person whose centroid is closest
    nearest_cos: float
    flags: tuple[str, ...]
    odd_clip: str = ""  # the person's clip least like its centroid (with --clips)
    odd_cos: float = float("nan")  # that clip's cosine to the centroid


def persons_of(corpus_dir: Path, with_perturbed: bool) -> dict[str, list[Utterance]]:
    """``{person: utterances}``, in id order."""
    corpus = load_source_corpus(corpus_dir)
    person_of = read_spk2person(corpus_dir)
    out: dict[str, list[Utterance]] = {}
    for utt in corpus.utterances:
        if with_perturbed or not PERTURBED.search(utt.speaker):
            out.setdefault(person_of.get(utt.speaker, utt.speaker), []).append(utt)
    return out


def segments_of(utts: list[Utterance], seconds: float, max_segments: int) -> list[torch.Tensor]:
    """The person's clips joined (0.1 s pauses between them) and cut into at most
    ``max_segments`` consecutive waves of ``seconds``; a shorter remainder is kept only when
    it is all there is."""
    size, pause = int(seconds * SAMPLE_RATE), np.zeros(int(PAUSE * SAMPLE_RATE), np.float32)
    stream, length = [], 0
    for utt in utts:
        if length >= size * max_segments:
            break
        wave = load_audio(utt.path, SAMPLE_RATE, offset=utt.start, duration=utt.duration)
        stream += [wave, pause]
        length += len(wave) + len(pause)
    joined = torch.from_numpy(np.concatenate(stream)) if stream else torch.zeros(0)
    pieces = [joined[i : i + size] for i in range(0, len(joined) - size + 1, size)]
    return pieces[:max_segments] or ([joined] if len(joined) else [])


def odd_clip(
    model: SpeakerEmbedding, utts: list[Utterance], centroid: torch.Tensor, max_clips: int
) -> tuple[str, float]:
    """(id, cosine to the person's centroid) of the least typical of ``max_clips`` of the
    person's clips (evenly spread over those long enough to embed alone); ("", nan) when
    there is none."""
    long = [u for u in utts if u.duration * SAMPLE_RATE >= 2 * model.min_samples]
    if not long:
        return "", float("nan")
    picked = [
        long[i] for i in np.unique(np.linspace(0, len(long) - 1, max_clips).round().astype(int))
    ]
    clips = [torch.from_numpy(load_audio(u.path, SAMPLE_RATE, u.start, u.duration)) for u in picked]
    cos = model.embed(clips) @ centroid
    return picked[int(cos.argmin())].id, float(cos.min())


def embed_persons(
    model: SpeakerEmbedding, persons: dict[str, list[Utterance]], seconds: float, max_segments: int
) -> dict[str, torch.Tensor]:
    """``{person: unit embeddings (segments, dim)}``; persons too short to embed are left out."""
    out = {}
    for person, utts in persons.items():
        waves = [w for w in segments_of(utts, seconds, max_segments) if len(w) >= model.min_samples]
        if waves:
            out[person] = model.embed(waves)
    return out


def report(embeddings: dict[str, torch.Tensor], low: float, like: float) -> list[PersonReport]:
    """One :class:`PersonReport` per person (in the order given)."""
    names = list(embeddings)
    centroids = torch.stack([centroid(e) for e in embeddings.values()])  # (persons, dim)
    between = centroids @ centroids.T
    between.fill_diagonal_(-2.0)
    rows = []
    for i, (person, e) in enumerate(embeddings.items()):
        n, to_centroid = len(e), e @ centroids[i]  # (segments,)
        within = float(((e @ e.T).sum() - n) / (n * (n - 1))) if n > 1 else float("nan")
        j = int(between[i].argmax()) if len(names) > 1 else i
        flags = ["LOW"] if n > 1 and within < low else []
        if len(names) > 1 and between[i, j] > like:
            flags.append(f"LIKE {names[j]}")
        rows.append(
            PersonReport(
                person=person,
                segments=n,
                self_mean=float(to_centroid.mean()),
                self_min=float(to_centroid.min()),
                within=within,
                nearest=names[j],
                nearest_cos=float(between[i, j]),
                flags=tuple(flags),
            )
        )
    return rows


def centroid(e: torch.Tensor) -> torch.Tensor:
    """Unit embeddings (n, dim) -> their unit-length mean (dim,)."""
    return torch.nn.functional.normalize(e.mean(0), dim=0)


def check(model: SpeakerEmbedding, persons: dict, args: argparse.Namespace) -> list[PersonReport]:
    """Report every person; flagged ones first, then by within-person cosine."""
    embeddings = embed_persons(model, persons, args.seconds, args.segments)
    rows = report(embeddings, args.low, args.like)
    if args.clips:
        for k, row in enumerate(rows):
            clip, cos = odd_clip(
                model, persons[row.person], centroid(embeddings[row.person]), args.clips
            )
            flags = row.flags + ((f"ODD {clip}",) if cos < args.odd else ())
            rows[k] = replace(row, odd_clip=clip, odd_cos=cos, flags=flags)
    return sorted(rows, key=lambda r: (not r.flags, r.within))


def print_report(rows: list[PersonReport]) -> None:
    print(
        f"{'person':32s} {'segs':>4s} {'within':>6s} {'self':>5s} {'min':>5s} {'clip':>5s}  nearest"
    )
    for r in rows:
        print(
            f"{r.person:32s} {r.segments:4d} {r.within:6.3f} {r.self_mean:5.3f} {r.self_min:5.3f}"
            f" {r.odd_cos:5.2f}  {r.nearest} {r.nearest_cos:.3f}  {' '.join(r.flags)}"
        )
    flagged = sum(bool(r.flags) for r in rows)
    print(f"{len(rows)} persons, {flagged} flagged")


def check_files(model: SpeakerEmbedding, files: list[Path]) -> None:
    """Print the pairwise cosine matrix of whole files' embeddings."""
    waves = [torch.from_numpy(load_audio(f, SAMPLE_RATE)) for f in files]
    short = [str(f) for f, w in zip(files, waves, strict=True) if len(w) < model.min_samples]
    if short:
        raise DiarizeError(f"too short to embed: {', '.join(short)}")
    e = model.embed(waves)
    for f, row in zip(files, e @ e.T, strict=True):
        print(" ".join(f"{v:6.3f}" for v in row.tolist()), f)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("corpus", nargs="?", type=Path, help="source corpus directory")
    p.add_argument("--files", nargs="+", type=Path, help="embed these files instead")
    p.add_argument("--embedding", default=str(DEFAULT_MODEL), help="path or hub name")
    p.add_argument("--seconds", type=float, default=3.0, help="minimum segment length")
    p.add_argument("--segments", type=int, default=8, help="segments per person at most")
    p.add_argument("--low", type=float, default=0.5, help="flag within-person cosine below")
    p.add_argument("--like", type=float, default=0.7, help="flag centroid cosine above")
    p.add_argument("--clips", type=int, default=10, help="clips per person embedded alone")
    p.add_argument("--odd", type=float, default=0.4, help="flag a clip whose cosine is below")
    p.add_argument("--with-perturbed", action="store_true", help="keep _spX.Y speakers")
    p.add_argument("--json", type=Path, help="write the per-person figures here")
    args = p.parse_args()
    if (args.corpus is None) == (args.files is None):
        p.error("give a corpus directory or --files, not both")
    model = load_embedding(args.embedding)
    if args.files:
        check_files(model, args.files)
        return 0
    rows = check(model, persons_of(args.corpus, args.with_perturbed), args)
    print_report(rows)
    if args.json:
        with atomic_write(args.json) as f:
            json.dump([r.__dict__ for r in rows], f, indent=1)
    return 0


if __name__ == "__main__":
    run_tool(main, "check_persons")
