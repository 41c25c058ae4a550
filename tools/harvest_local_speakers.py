#!/usr/bin/env python
"""Collect the local speakers a diarization model finds in a labelled set, as training items
for the speaker encoder that links them (tools/train_speaker_encoder.py --local-speakers).

Each recording is analysed as ``diarize run`` analyses it (``Diarizer.analyse``: windows,
posteriors, voice split). Every local speaker heard alone for at least
``link.min_voice_frames`` frames of its window becomes one item: the speaker encoder's input
over exactly those frames (what linking embeds it from, other persons' leftovers included)
and, as its label, the reference speaker who is active on most of them, with the fraction
of them that speaker holds (its purity). At most ``--per-recording`` items are kept per
recording, drawn with ``--seed``. Written atomically as one .npz: ``frames (10 ms frames,
SPEAKER_MELS + 2) float16``, ``offsets (items + 1,)``, ``labels``, ``purity``,
``recordings``.

    OMP_NUM_THREADS=1 python tools/harvest_local_speakers.py data/real_train_conv \
        exp/local/conv.npz [--model CKPT] [--max-recordings 900] [--per-recording 30]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from diarize.utils import DiarizeError, atomic_path, run_tool


def recording_items(analysis, annotation, min_frames: int):
    """(frame indices of the model grid alone, reference label, purity) of each local
    speaker of ``analysis`` heard alone for ``min_frames`` frames or more."""
    from diarize.data.labels import frame_labels

    grid = analysis.grid
    names = sorted(annotation.labels())
    if not names:
        return []
    reference = frame_labels(annotation, grid.num_frames, grid.frame_shift, names)
    items = []
    for win in analysis.windows:
        ref = reference[win.start : win.stop]  # (frames, reference speakers)
        for k in range(win.alone.shape[1]):
            frames = np.flatnonzero(win.alone[: len(ref), k])
            if len(frames) < min_frames:
                continue
            held = ref[frames].sum(0)  # frames of it each reference speaker is active on
            best = int(np.argmax(held))
            items.append((frames + win.start, names[best], float(held[best] / len(frames))))
    return items


def encoder_input(path: str, grid) -> np.ndarray:
    """The speaker encoder's input of the recording per model frame: (frames, 10 ms frames
    per model frame, SPEAKER_MELS + 2)."""
    from diarize.audio import load_audio
    from diarize.features.voice import speaker_frames

    wave = load_audio(path, grid.sample_rate)
    frames = len(wave) // grid.samples_per_frame
    speaker = speaker_frames(wave[: frames * grid.samples_per_frame], grid.sample_rate)
    return speaker.reshape(frames, -1, speaker.shape[1])


def harvest(diarizer, data, per_recording: int, rng) -> dict[str, np.ndarray]:
    """The items of every recording of ``data`` (a loaded diarization set), as arrays."""
    from tqdm import tqdm

    from diarize.data.kaldi import recording_audio

    chunks, offsets, labels, purity, recordings = [], [0], [], [], []
    min_frames = diarizer.config.link.min_voice_frames
    for rec in tqdm(data, desc="recordings", unit="rec"):
        with recording_audio(rec) as path:
            analysis = diarizer.analyse(path, uri=rec.id)
            features = encoder_input(path, analysis.grid)
        items = recording_items(analysis, rec.annotation, min_frames)
        for i in sorted(rng.permutation(len(items))[:per_recording]):
            frames, label, pure = items[i]
            x = features[frames[frames < len(features)]].reshape(-1, features.shape[2])
            chunks.append(x.astype(np.float16))
            offsets.append(offsets[-1] + len(x))
            labels.append(label)
            purity.append(pure)
            recordings.append(rec.id)
    if not labels:
        raise DiarizeError("no local speaker heard alone long enough in any recording")
    return {
        "frames": np.concatenate(chunks), "offsets": np.array(offsets, dtype=np.int64),
        "labels": np.array(labels), "purity": np.array(purity, dtype=np.float32),
        "recordings": np.array(recordings),
    }  # fmt: skip


def main() -> int:
    from diarize import Diarizer
    from diarize.data.kaldi import load_diarization_set

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="diarization set (wav.scp + rttm) whose speakers are labelled")
    p.add_argument("out", type=Path, help="the .npz to write")
    p.add_argument("--model", help="checkpoint (default: the bundled model)")
    p.add_argument("--max-recordings", type=int, default=0, help="first N recordings (0: all)")
    p.add_argument("--per-recording", type=int, default=30, help="items kept per recording")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.per_recording < 1 or args.max_recordings < 0:
        raise DiarizeError("--per-recording must be 1 or more and --max-recordings 0 or more")
    data = list(load_diarization_set(args.data))
    if args.max_recordings:
        data = data[: args.max_recordings]
    diarizer = Diarizer.from_pretrained(args.model, embedding="none")
    arrays = harvest(diarizer, data, args.per_recording, np.random.default_rng(args.seed))
    with atomic_path(args.out) as tmp:
        np.savez(tmp, **arrays)
    pure = float(np.mean(arrays["purity"] >= 0.9))
    print(f"{args.out}: {len(arrays['labels'])} local speakers of {len(data)} recordings, "
          f"{len(set(arrays['labels']))} speakers, {pure:.1%} at least 90 % pure")  # fmt: skip
    return 0


if __name__ == "__main__":
    run_tool(main, Path(__file__).name)
