"""Training examples for EEND: fixed-length chunks of the recordings of a diarization set.

Every recording is cut into chunks of ``chunk_frames`` frontend frames, one every ``shift``
frames (default: ``chunk_frames``, no overlap). The tail of a recording becomes a last, shorter
chunk when it holds at least half a chunk, and is dropped otherwise (a recording shorter than
half a chunk gives no chunk). A chunk's labels have one column per speaker active in it, in
order of first activity, so that the attractor order the EDA learns is well defined. Chunks
with more than ``max_speakers`` speakers are dropped (``num_dropped`` counts them).

Audio is read per item with :func:`~diarize.audio.load_audio`, so memory stays at the chunk
index. UEM regions are ignored: training uses whole recordings. Nothing here is random:
shuffling is the DataLoader's, with a seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from pyannote.core import Segment
from torch.utils.data import Dataset

from diarize.audio import SAMPLE_RATE, load_audio
from diarize.data.kaldi import DiarizationSet, Recording
from diarize.data.labels import frame_labels


class FrameGeometry(Protocol):
    """What the dataset needs of a frontend (a :class:`~diarize.features.Frontend` fits)."""

    frame_shift: float  # seconds per output frame

    def num_frames(self, num_samples: int) -> int: ...


@dataclass(frozen=True)
class Chunk:
    recording: int  # index into the set's recordings
    start_frame: int  # first frame, counted from the start of the recording
    num_frames: int  # chunk_frames, or fewer for a recording's tail
    num_speakers: int  # speakers active in the chunk


def samples_per_frame(frame_shift: float, sample_rate: int) -> int:
    """Samples per frontend frame; ``frame_shift * sample_rate`` must be an integer."""
    exact = frame_shift * sample_rate
    if exact < 1 or abs(exact - round(exact)) > 1e-6:
        raise ValueError(
            f"frame_shift {frame_shift} s x sample_rate {sample_rate} Hz = {exact:.6g} samples per "
            "frame; it must be a positive integer"
        )
    return int(round(exact))


def chunk_spans(total_frames: int, chunk_frames: int, shift: int) -> list[tuple[int, int]]:
    """``[(start_frame, num_frames), ...]`` of the chunks of a ``total_frames`` recording:
    full chunks every ``shift`` frames, then the tail if it holds at least half a chunk."""
    spans = []
    for start in range(0, total_frames, shift):
        length = min(chunk_frames, total_frames - start)
        if 2 * length >= chunk_frames:
            spans.append((start, length))
        if start + chunk_frames >= total_frames:
            break
    return spans


class ChunkDataset(Dataset):
    """Items are dicts: ``wave`` (samples,) float32, ``labels`` (frames, speakers_in_chunk)
    float32, ``num_speakers`` int, ``uri`` str, ``start`` seconds. A full chunk has
    ``chunk_frames * samples_per_frame`` samples and ``chunk_frames`` frames."""

    def __init__(
        self,
        data: DiarizationSet,
        frontend: FrameGeometry,
        chunk_frames: int,
        sample_rate: int = SAMPLE_RATE,
        max_speakers: int = 4,
        shift: int | None = None,
        drop_more_speakers: bool = True,
    ) -> None:
        shift = chunk_frames if shift is None else shift
        if chunk_frames <= 0 or shift <= 0:
            raise ValueError(
                f"chunk_frames and shift must be positive, got {chunk_frames}, {shift}"
            )
        self.recordings: tuple[Recording, ...] = tuple(data)
        self.frame_shift = float(frontend.frame_shift)
        self.sample_rate = sample_rate
        self.samples_per_frame = samples_per_frame(self.frame_shift, sample_rate)
        _check_geometry(frontend, chunk_frames, self.samples_per_frame)
        self.chunk_frames, self.shift, self.max_speakers = chunk_frames, shift, max_speakers
        chunks = [c for k in range(len(self.recordings)) for c in self._chunks_of(k)]
        keep = [c for c in chunks if c.num_speakers <= max_speakers or not drop_more_speakers]
        self.chunks: list[Chunk] = keep
        self.num_dropped = len(chunks) - len(keep)  # chunks with more than max_speakers

    def _chunks_of(self, index: int) -> list[Chunk]:
        rec = self.recordings[index]
        total = int(round(rec.duration * self.sample_rate)) // self.samples_per_frame
        active = frame_labels(rec.annotation, total, self.frame_shift) > 0  # (frames, speakers)
        return [
            Chunk(index, start, length, int(active[start : start + length].any(axis=0).sum()))
            for start, length in chunk_spans(total, self.chunk_frames, self.shift)
        ]

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> dict[str, Any]:
        chunk = self.chunks[i]
        rec = self.recordings[chunk.recording]
        start = chunk.start_frame * self.samples_per_frame / self.sample_rate  # seconds
        num_samples = chunk.num_frames * self.samples_per_frame
        wave = load_audio(rec.path, self.sample_rate, start, num_samples / self.sample_rate)
        wave = np.pad(wave[:num_samples], (0, num_samples - min(len(wave), num_samples)))
        labels = self.chunk_labels(rec, start, chunk.num_frames)
        return {
            "wave": torch.from_numpy(wave),
            "labels": torch.from_numpy(labels),
            "num_speakers": labels.shape[1],
            "uri": rec.id,
            "start": start,
        }

    def chunk_labels(self, rec: Recording, start: float, num_frames: int) -> np.ndarray:
        """``(frames, speakers_in_chunk)`` float32: the speakers active in the chunk, in
        order of first activity (ties by name)."""
        window = Segment(start, start + num_frames * self.frame_shift)
        excerpt = rec.annotation.crop(window, mode="intersection")
        labels = frame_labels(excerpt, num_frames, self.frame_shift, offset=start)
        labels = labels[:, labels.any(axis=0)]  # only speakers active in the chunk
        first = labels.argmax(axis=0)  # first active frame of each column
        return np.ascontiguousarray(labels[:, np.argsort(first, kind="stable")])


def _check_geometry(frontend: FrameGeometry, chunk_frames: int, per_frame: int) -> None:
    got = frontend.num_frames(chunk_frames * per_frame)
    if got != chunk_frames:
        raise ValueError(
            f"the frontend makes {got} frames of {chunk_frames * per_frame} samples, expected "
            f"{chunk_frames} ({per_frame} samples per frame)"
        )


def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Zero-pad a list of items into a batch: ``wave`` (batch, samples), ``lengths`` (batch,)
    in samples, ``labels`` (batch, frames, max_speakers_in_batch), ``frame_lengths``
    (batch,), ``num_speakers`` (batch,); and ``wavlm_states`` (batch, layers + 1, frames,
    dim) when the items carry cached WavLM states."""
    if not items:
        raise ValueError("cannot collate an empty list of items")
    lengths = torch.tensor([len(it["wave"]) for it in items], dtype=torch.long)
    frame_lengths = torch.tensor([it["labels"].shape[0] for it in items], dtype=torch.long)
    num_speakers = torch.tensor([it["labels"].shape[1] for it in items], dtype=torch.long)
    wave = torch.zeros(len(items), int(lengths.max()))  # (batch, samples)
    labels = torch.zeros(len(items), int(frame_lengths.max()), int(num_speakers.max()))
    for b, it in enumerate(items):
        wave[b, : lengths[b]] = it["wave"]
        labels[b, : frame_lengths[b], : num_speakers[b]] = it["labels"]
    batch = {
        "wave": wave,
        "lengths": lengths,
        "labels": labels,  # (batch, frames, speakers)
        "frame_lengths": frame_lengths,
        "num_speakers": num_speakers,
    }
    if "wavlm_states" in items[0]:  # cached WavLM layer states (diarize.features.cache)
        states = [it["wavlm_states"] for it in items]  # each (layers + 1, frames, dim)
        layers, _, dim = states[0].shape
        padded = states[0].new_zeros(len(items), layers, int(frame_lengths.max()), dim)
        for b, s in enumerate(states):
            padded[b, :, : s.shape[1]] = s
        batch["wavlm_states"] = padded  # (batch, layers + 1, frames, dim)
    return batch
