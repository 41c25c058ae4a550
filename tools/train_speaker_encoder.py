#!/usr/bin/env python
"""Train the speaker encoder (diarize/models/speaker.py) on a single-speaker corpus.

Each speaker id of the corpus (of the persons in ``--persons``, if given) is a class; every
utterance gets coloured noise at 10-30 dB SNR, is turned into speaker_frames once, and
training draws random 1-3 s crops (batch 64) for an additive angular margin softmax.
Deterministic with ``--seed``. The result (config, weights, class names) is written
atomically; ``tools/export_model.py --speaker`` puts it into a diarization checkpoint.

Distillation (``--teacher FILE --distill-weight W``): a pretrained speaker-embedding model
(CAM++, ...; :func:`diarize.embeddings.load_embedding`) embeds 2 s segments (every 1 s, at
most ``--teacher-segments`` per utterance, spread over it) of the clean audio once, before
training; a linear projection of the student's embedding is pulled towards the teacher
embedding of the segment nearest each crop: loss = AAM + W x (1 - cosine). ``--unlabelled
DIR[,DIR]``: diarization sets (wav.scp + rttm) whose stretches of one speaker alone (who it
is is not used) add ``batch / 4`` crops a step under the distillation loss only.

Local speakers (``--local-speakers FILE[,FILE]``, from tools/harvest_local_speakers.py): what
a diarization model's windows hold of each person, labelled by the reference speaker most
active on it; ``batch x --local-fraction`` crops of them a step join the angular-margin loss
under their label's class (items labelled with a speaker who is not a class, or less pure
than ``--min-purity``, are left out). Linking embeds exactly such stretches: short, noisy,
with other persons' leftovers.

    python tools/train_speaker_encoder.py data/corpus exp/speaker/encoder.pt \
        --persons data/corpus/persons_train --steps 1500
    python tools/train_speaker_encoder.py data/corpus exp/speaker/distilled.pt \
        --persons data/corpus/persons_train --steps 1500 \
        --teacher data/pretrained/campplus_cn_en_common.pt --distill-weight 1.0 \
        --unlabelled data/real_train_conv --unlabelled-max 3000
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from diarize.audio import SAMPLE_RATE, load_audio
from diarize.checkpoint import save_speaker_encoder
from diarize.data.kaldi import load_diarization_set, load_source_corpus
from diarize.data.simulate import add_noise, coloured_noise, read_list, read_spk2person
from diarize.features.voice import speaker_frames
from diarize.models.speaker import (
    AngularMarginHead,
    SpeakerConfig,
    SpeakerEncoder,
    cosine_schedule,
)
from diarize.utils import DiarizeError, run_tool

MIN_FRAMES, MAX_FRAMES = 100, 300  # crop lengths in 10 ms frames
SEGMENT, HOP = 200, 100  # teacher segments: 2 s every 1 s, in 10 ms frames
FRAME = SAMPLE_RATE // 100  # samples per 10 ms frame
MIN_STRETCH = 1.0  # seconds: shorter stretches of one speaker alone are not used


@dataclass(frozen=True)
class Targets:
    """Teacher embeddings of one item (utterance or stretch): segment starts (frames) and
    unit-length embeddings (segments, teacher dim)."""

    starts: np.ndarray
    embeddings: np.ndarray


@dataclass(frozen=True)
class Distill:
    """What the distillation loss needs: its weight, the teacher targets of the labelled
    items, and the frames and targets of the unlabelled ones."""

    weight: float
    labelled: list[Targets]
    frames: list[np.ndarray]
    unlabelled: list[Targets]


@dataclass(frozen=True)
class Local:
    """Labelled local speakers: their encoder input (10 ms frames, inputs) and class, and
    how many local crops a batch takes per corpus crop."""

    frames: list[np.ndarray]
    labels: np.ndarray
    fraction: float


def augment(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """wave (samples,) plus coloured noise at 10-30 dB SNR, as float32."""
    noise = coloured_noise(len(wave), float(rng.uniform(0, 2)), rng)
    return add_noise(wave.astype(np.float64), noise, float(rng.uniform(10, 30))).astype(np.float32)


def segment_starts(frames: int, limit: int) -> np.ndarray:
    """Start frames of the teacher segments of an item of ``frames`` frames: every HOP and
    one ending at its end, at most ``limit`` of them spread evenly over it (one at 0 if the
    item is shorter than a segment)."""
    starts = np.arange(0, max(frames - SEGMENT, 0) + 1, HOP)
    if starts[-1] + SEGMENT < frames:
        starts = np.append(starts, frames - SEGMENT)
    if len(starts) > limit:
        starts = starts[np.round(np.linspace(0, len(starts) - 1, limit)).astype(int)]
    return starts


def embed_items(teacher, waves: list[np.ndarray], limit: int) -> list[Targets]:
    """The teacher's embeddings of the segments of each wave (samples,), in one pass."""
    pieces, owners, starts = [], [], []
    for i, wave in enumerate(waves):
        s = segment_starts(len(wave) // FRAME, limit)
        starts.append(s)
        for start in s:
            pieces.append(torch.from_numpy(wave[start * FRAME : (start + SEGMENT) * FRAME]))
            owners.append(i)
    shortest = teacher.min_samples  # shorter pieces are padded with silence
    pieces = [nn.functional.pad(p, (0, max(0, shortest - len(p)))) for p in pieces]
    emb = teacher.embed(pieces, batch_size=32).numpy() if pieces else np.zeros((0, teacher.dim))
    owners = np.array(owners, dtype=int)
    return [Targets(s, emb[owners == i]) for i, s in enumerate(starts)]


def corpus_frames(
    source: str, persons: list[str] | None, rng: np.random.Generator, teacher=None,
    limit: int = 1,
) -> tuple[list[np.ndarray], np.ndarray, list[str], list[Targets]]:  # fmt: skip
    """speaker_frames of every (noisy) utterance, its class, the class names, and the
    teacher's embeddings of its clean audio (none without a teacher)."""
    by_speaker = load_source_corpus(source).speakers()
    person_of = read_spk2person(source)
    names = sorted(s for s in by_speaker if persons is None or person_of.get(s, s) in persons)
    if len(names) < 2:
        raise DiarizeError(f"{source}: {len(names)} speakers to train on, at least 2 needed")
    frames, labels, targets = [], [], []
    for c, name in enumerate(names):
        waves = [
            load_audio(u.path, SAMPLE_RATE, offset=u.start, duration=u.duration)
            for u in by_speaker[name]
        ]
        frames += [speaker_frames(augment(w, rng), SAMPLE_RATE) for w in waves]
        labels += [c] * len(waves)
        if teacher is not None:
            targets += embed_items(teacher, waves, limit)
        print(f"{name}: {len(waves)} utterances", flush=True)
    return frames, np.array(labels), names, targets


def alone_stretches(sources: list[str], most: int, rng) -> list[tuple[str, float, float]]:
    """Up to ``most`` (audio path, start, duration) stretches of at least MIN_STRETCH
    seconds where one speaker of an RTTM talks alone, drawn at random from ``sources``."""
    found = []
    for source in sources:
        for rec in load_diarization_set(source):
            alone = rec.annotation.extrude(rec.annotation.get_overlap())
            found += [
                (rec.path, seg.start, seg.duration)
                for seg, _ in alone.itertracks()
                if seg.duration >= MIN_STRETCH
            ]
    if not found:
        raise DiarizeError(
            f"{','.join(sources)}: no stretch of one speaker alone of {MIN_STRETCH} s or more"
        )
    pick = rng.permutation(len(found))[:most]
    return [found[i] for i in sorted(pick)]


def unlabelled_frames(stretches, rng, teacher, limit: int) -> tuple[list, list[Targets]]:
    """speaker_frames of each (noisy) stretch and the teacher's embeddings of its audio."""
    waves = [load_audio(path, SAMPLE_RATE, offset=s, duration=d) for path, s, d in stretches]
    frames = [speaker_frames(augment(w, rng), SAMPLE_RATE) for w in waves]
    targets = []
    for i in range(0, len(waves), 256):  # in chunks: the segments of all would be large
        targets += embed_items(teacher, waves[i : i + 256], limit)
    return frames, targets


def crops(frames, rng, batch: int, length: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """``batch`` random crops of ``length`` frames (items shorter than it are tiled) ->
    crops (batch, length, inputs), the items picked, the crops' centre frames."""
    pick = rng.integers(len(frames), size=batch)
    x = np.zeros((batch, length, frames[0].shape[1]), dtype=np.float32)
    centres = np.zeros(batch)
    for b, i in enumerate(pick):
        f = frames[i]
        if len(f) >= length:
            start = int(rng.integers(0, len(f) - length + 1))
            x[b] = f[start : start + length]
            centres[b] = start + length / 2
        else:
            x[b] = np.resize(f, (length, f.shape[1]))
            centres[b] = len(f) / 2
    return torch.from_numpy(x), pick, centres


def nearest_targets(targets: list[Targets], pick, centres, lengths) -> torch.Tensor:
    """The teacher embedding of the segment whose centre is nearest each crop's centre
    (items ``pick`` of ``lengths`` frames) -> (batch, teacher dim)."""
    out = []
    for i, centre in zip(pick, centres, strict=True):
        t = targets[i]
        segment_centres = t.starts + min(SEGMENT, lengths[i]) / 2
        out.append(t.embeddings[np.argmin(np.abs(segment_centres - centre))])
    return torch.from_numpy(np.stack(out)).float()


def distill_batch(distill: Distill, frames, pick, centres, rng, batch, length):
    """Unlabelled crops (batch // 4, length, inputs) and the teacher targets of the
    labelled crops then the unlabelled ones (batch + batch // 4, teacher dim)."""
    target = nearest_targets(distill.labelled, pick, centres, [len(f) for f in frames])
    if not distill.frames:
        return torch.zeros((0, length, frames[0].shape[1])), target
    xu, pick_u, centres_u = crops(distill.frames, rng, max(1, batch // 4), length)
    lengths = [len(f) for f in distill.frames]
    return xu, torch.cat([target, nearest_targets(distill.unlabelled, pick_u, centres_u, lengths)])


def local_batch(local: Local | None, rng, batch: int, length: int):
    """Crops (n, length, inputs) of ``batch x local.fraction`` local speakers and their
    classes (n,); none without local speakers."""
    n = 0 if local is None else max(1, round(batch * local.fraction))
    if n == 0:
        return None, torch.zeros(0, dtype=torch.long)
    x, pick, _ = crops(local.frames, rng, n, length)
    return x, torch.from_numpy(local.labels[pick])


def step_loss(encoder, head, projection, distill, frames, labels, rng, batch, local=None) -> dict:
    """One batch's losses: {"loss", "aam", "accuracy", "cosine" (to the teacher, if any)}."""
    length = int(rng.integers(MIN_FRAMES, MAX_FRAMES + 1))
    x, pick, centres = crops(frames, rng, batch, length)
    xl, yl = local_batch(local, rng, batch, length)
    y = torch.cat([torch.from_numpy(labels[pick]), yl])
    x = x if xl is None else torch.cat([x, xl])
    classed = len(y)  # corpus crops, then local speakers
    if distill is None:
        aam, accuracy = head(encoder(x), y)
        return {"loss": aam, "aam": aam, "accuracy": accuracy}
    xu, target = distill_batch(distill, frames, pick, centres, rng, batch, length)
    emb = encoder(torch.cat([x, xu]))  # (classed + unlabelled, embedding)
    aam, accuracy = head(emb[:classed], y)
    taught = torch.cat([emb[:batch], emb[classed:]])  # the crops with teacher targets
    cosine = nn.functional.cosine_similarity(projection(taught), target, dim=1).mean()
    loss = aam + distill.weight * (1 - cosine)
    return {"loss": loss, "aam": aam, "accuracy": accuracy, "cosine": cosine}


def train(
    frames, labels, classes: int, steps: int, seed: int, channels: int = SpeakerConfig.channels,
    lr: float = 2e-3, batch: int = 64, distill: Distill | None = None,
    history: list[dict] | None = None, local: Local | None = None,
) -> SpeakerEncoder:  # fmt: skip
    """AAM-softmax training (plus distillation with ``distill``, plus labelled ``local``
    speakers); ``history``, if given, gets each step's losses as floats."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    config = SpeakerConfig(inputs=frames[0].shape[1], channels=channels)
    encoder = SpeakerEncoder(config)
    encoder.fit_normalisation(torch.from_numpy(np.concatenate([f[::10] for f in frames])))
    head = AngularMarginHead(config.embedding, classes)
    projection = None  # student embedding -> teacher's space, for the distillation loss
    if distill is not None:
        projection = nn.Linear(config.embedding, distill.labelled[0].embeddings.shape[1])
    params = [*encoder.parameters(), *head.parameters()]
    params += [*projection.parameters()] if projection is not None else []
    opt = torch.optim.Adam(params, lr=lr)
    usable = [i for i, f in enumerate(frames) if len(f) >= MIN_FRAMES // 4]
    frames, labels = [frames[i] for i in usable], labels[usable]
    if distill is not None:
        distill = Distill(distill.weight, [distill.labelled[i] for i in usable], distill.frames, distill.unlabelled)  # fmt: skip
    start = time.time()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * cosine_schedule(step, steps)
        losses = step_loss(encoder, head, projection, distill, frames, labels, rng, batch, local)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        values = {k: float(v.detach()) for k, v in losses.items()}
        if history is not None:
            history.append(values)
        if step % 100 == 0 or step == steps - 1:
            shown = " ".join(f"{k} {v:.3f}" for k, v in values.items())
            print(f"step {step + 1}/{steps} {shown} ({time.time() - start:.0f} s)", flush=True)
    return encoder.eval()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", help="single-speaker corpus directory (wav.scp, utt2spk, ...)")
    p.add_argument("out", type=Path, help="where to write the encoder")
    p.add_argument("--persons", help="file listing the persons to train on (default: all)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--channels", type=int, default=SpeakerConfig.channels, help="network width")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--teacher", help="speaker-embedding model to distil (a file or a hub name)")
    p.add_argument("--distill-weight", type=float, default=0.0, help="W (0: no distillation)")
    p.add_argument("--unlabelled", metavar="DIR[,DIR]",
                   help="diarization sets whose speech is used by the distillation loss only")  # fmt: skip
    p.add_argument("--unlabelled-max", type=int, default=3000,
                   help="stretches of one speaker alone taken from them, at most")  # fmt: skip
    p.add_argument("--teacher-segments", type=int, default=2,
                   help="teacher segments (2 s) per utterance or stretch, at most")  # fmt: skip
    p.add_argument("--local-speakers", metavar="FILE[,FILE]",
                   help="labelled local speakers (tools/harvest_local_speakers.py)")  # fmt: skip
    p.add_argument("--local-fraction", type=float, default=0.5,
                   help="local-speaker crops per corpus crop in a batch")  # fmt: skip
    p.add_argument("--min-purity", type=float, default=0.0,
                   help="local speakers less pure than this are left out")  # fmt: skip
    return p


def check_options(args: argparse.Namespace) -> None:
    """One error line for distillation options that do not go together."""
    if args.distill_weight < 0:
        raise DiarizeError(f"--distill-weight must be 0 or more, got {args.distill_weight}")
    if (args.teacher is None) != (args.distill_weight == 0):
        raise DiarizeError("--teacher and --distill-weight above 0 go together")
    if args.unlabelled and args.teacher is None:
        raise DiarizeError("--unlabelled needs --teacher (its speech has no classes)")
    if args.local_fraction <= 0 or not 0 <= args.min_purity <= 1:
        raise DiarizeError(
            f"--local-fraction must be above 0 and --min-purity within [0, 1], got "
            f"{args.local_fraction} and {args.min_purity}"
        )
    if args.teacher_segments < 1 or args.unlabelled_max < 1:
        raise DiarizeError(
            f"--teacher-segments and --unlabelled-max must be 1 or more, got "
            f"{args.teacher_segments} and {args.unlabelled_max}"
        )


def unlabelled_data(args, rng, teacher) -> tuple[list[np.ndarray], list[Targets]]:
    """Frames and teacher targets of the --unlabelled stretches (none without it)."""
    if not args.unlabelled:
        return [], []
    stretches = alone_stretches(args.unlabelled.split(","), args.unlabelled_max, rng)
    frames, targets = unlabelled_frames(stretches, rng, teacher, args.teacher_segments)
    seconds = sum(d for _, _, d in stretches)
    print(f"{args.unlabelled}: {len(stretches)} stretches, {seconds / 3600:.2f} h", flush=True)
    return frames, targets


def local_speakers(args, names: list[str]) -> Local | None:
    """The --local-speakers items whose label is a class of ``names`` and pure enough."""
    if not args.local_speakers:
        return None
    index = {name: c for c, name in enumerate(names)}
    frames, labels = [], []
    for path in args.local_speakers.split(","):
        try:
            items = np.load(path)
        except (OSError, ValueError) as e:
            raise DiarizeError(f"{path}: not a local-speaker file ({e})") from None
        offsets, all_frames = items["offsets"], items["frames"]
        for i, (label, purity) in enumerate(zip(items["labels"], items["purity"], strict=True)):
            if str(label) in index and purity >= args.min_purity:
                frames.append(all_frames[offsets[i] : offsets[i + 1]])
                labels.append(index[str(label)])
    if not frames:
        raise DiarizeError(f"{args.local_speakers}: no local speaker of a training class")
    print(f"{args.local_speakers}: {len(frames)} local speakers", flush=True)
    return Local(frames, np.array(labels), args.local_fraction)


def main() -> int:
    args = parser().parse_args()
    check_options(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    persons = read_list(args.persons) if args.persons else None
    teacher = None
    if args.teacher is not None:
        from diarize.embeddings import load_embedding

        teacher = load_embedding(args.teacher)
    start = time.time()
    frames, labels, names, targets = corpus_frames(
        args.source, persons, rng, teacher, args.teacher_segments
    )
    distill = None
    if teacher is not None:
        distill = Distill(args.distill_weight, targets, *unlabelled_data(args, rng, teacher))
        segments = sum(len(t.starts) for t in targets + distill.unlabelled)
        print(f"{segments} teacher segments; data ready in {time.time() - start:.0f} s")
    local = local_speakers(args, names)
    encoder = train(frames, labels, len(names), args.steps, args.seed, args.channels,
                    distill=distill, local=local)  # fmt: skip
    extra = {"teacher": str(args.teacher), "distill_weight": args.distill_weight} if teacher else {}  # fmt: skip
    if local is not None:
        extra |= {"local_speakers": args.local_speakers, "local_fraction": args.local_fraction}
    save_speaker_encoder(args.out, encoder, classes=names, steps=args.steps, **extra)
    print(f"{args.out}: {len(names)} classes, {len(frames)} utterances, {args.steps} steps")
    return 0


if __name__ == "__main__":
    run_tool(main, Path(__file__).name)
