#!/usr/bin/env python
"""Train the speaker encoder (diarize/models/speaker.py) on a single-speaker corpus.

Each speaker id of the corpus (of the persons in ``--persons``, if given) is a class; every
utterance gets coloured noise at 10-30 dB SNR, is turned into speaker_frames once, and
training draws random 1-3 s crops (batch 64) for an additive angular margin softmax.
Deterministic with ``--seed``. The result (config, weights, class names) is written
atomically; ``tools/export_model.py --speaker`` puts it into a diarization checkpoint.

    python tools/train_speaker_encoder.py data/corpus exp/speaker/encoder.pt \
        --persons data/corpus/persons_train --steps 1500
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from diarize.audio import SAMPLE_RATE, load_audio
from diarize.checkpoint import save_speaker_encoder
from diarize.data.kaldi import load_source_corpus
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


def corpus_frames(
    source: str, persons: list[str] | None, rng: np.random.Generator
) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """speaker_frames of every (noisy) utterance, its class, and the class names."""
    by_speaker = load_source_corpus(source).speakers()
    person_of = read_spk2person(source)
    names = sorted(s for s in by_speaker if persons is None or person_of.get(s, s) in persons)
    if len(names) < 2:
        raise DiarizeError(f"{source}: {len(names)} speakers to train on, at least 2 needed")
    frames, labels = [], []
    for c, name in enumerate(names):
        for utt in by_speaker[name]:
            wave = load_audio(utt.path, SAMPLE_RATE, offset=utt.start, duration=utt.duration)
            noise = coloured_noise(len(wave), float(rng.uniform(0, 2)), rng)
            wave = add_noise(wave.astype(np.float64), noise, float(rng.uniform(10, 30)))
            frames.append(speaker_frames(wave.astype(np.float32), SAMPLE_RATE))
            labels.append(c)
        print(f"{name}: {len(by_speaker[name])} utterances", flush=True)
    return frames, np.array(labels), names


def crops(frames, labels, rng, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of random crops of one random length (utterances shorter than it are tiled)."""
    length = int(rng.integers(MIN_FRAMES, MAX_FRAMES + 1))
    pick = rng.integers(len(frames), size=batch)
    x = np.zeros((batch, length, frames[0].shape[1]), dtype=np.float32)
    for b, i in enumerate(pick):
        f = frames[i]
        if len(f) >= length:
            start = int(rng.integers(0, len(f) - length + 1))
            x[b] = f[start : start + length]
        else:
            x[b] = np.resize(f, (length, f.shape[1]))
    return torch.from_numpy(x), torch.from_numpy(labels[pick])


def train(
    frames, labels, classes: int, steps: int, seed: int, channels: int = SpeakerConfig.channels,
    lr: float = 2e-3, batch: int = 64,
) -> SpeakerEncoder:  # fmt: skip
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    config = SpeakerConfig(inputs=frames[0].shape[1], channels=channels)
    encoder = SpeakerEncoder(config)
    encoder.fit_normalisation(torch.from_numpy(np.concatenate([f[::10] for f in frames])))
    head = AngularMarginHead(config.embedding, classes)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    usable = [i for i, f in enumerate(frames) if len(f) >= MIN_FRAMES // 4]
    frames, labels = [frames[i] for i in usable], labels[usable]
    start = time.time()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * cosine_schedule(step, steps)
        x, y = crops(frames, labels, rng, batch)
        loss, accuracy = head(encoder(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(
                f"step {step + 1}/{steps} loss {loss.item():.3f} accuracy {accuracy.item():.3f} "
                f"({time.time() - start:.0f} s)",
                flush=True,
            )
    return encoder.eval()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", help="single-speaker corpus directory (wav.scp, utt2spk, ...)")
    p.add_argument("out", type=Path, help="where to write the encoder")
    p.add_argument("--persons", help="file listing the persons to train on (default: all)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--channels", type=int, default=SpeakerConfig.channels, help="network width")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    persons = read_list(args.persons) if args.persons else None
    frames, labels, names = corpus_frames(args.source, persons, rng)
    encoder = train(frames, labels, len(names), args.steps, args.seed, args.channels)
    save_speaker_encoder(args.out, encoder, classes=names, steps=args.steps)
    print(f"{args.out}: {len(names)} classes, {len(frames)} utterances, {args.steps} steps")
    return 0


if __name__ == "__main__":
    run_tool(main, Path(__file__).name)
