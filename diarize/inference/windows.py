"""Stage 1, windows: the frame grid of a recording, where its windows start, and the audio
streamed block by block and cut into those windows.

Frame ``i`` of a recording stands for ``[i * frame_shift, (i + 1) * frame_shift)``. Windows
have the training chunk's length by default and start every half window; the last one ends
exactly at the last frame. Audio comes from a file (read block by block, so memory does not
grow with the recording) or from a waveform in memory (any rate, any channels).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diarize.audio import audio_info, iter_blocks, resample
from diarize.config import InferConfig
from diarize.utils import DiarizeError


@dataclass(frozen=True)
class AudioSource:
    """Mono audio at the model's sample rate, as consecutive blocks."""

    uri: str  # recording id
    path: str | None  # the audio file, None for a waveform in memory
    num_samples: int  # at the model's rate
    duration: float  # seconds
    blocks: Callable[[float], Iterator[np.ndarray]]  # block seconds -> (samples,) blocks


@dataclass(frozen=True)
class FrameGrid:
    """Frames and windows of one recording."""

    frame_shift: float  # seconds per frame
    sample_rate: int  # Hz of the audio the model takes
    samples_per_frame: int
    num_frames: int
    window: int  # frames per window
    hop: int  # frames between window starts

    @functools.cached_property
    def starts(self) -> list[int]:
        """First frame of each window (none for a recording without a whole frame); made
        once per grid (every window's parts look their neighbours up in it)."""
        return window_starts(self.num_frames, self.window, self.hop) if self.num_frames else []


def open_audio(audio, sample_rate: int, uri: str | None = None) -> AudioSource:
    """``audio``: a path, or ``(waveform, sample_rate)``, or pyannote's ``{"waveform": ...,
    "sample_rate": ...}``; a waveform is numpy or torch, ``(samples,)`` or ``(channels,
    samples)`` / ``(samples, channels)`` (the shorter axis is taken for the channels)."""
    if isinstance(audio, dict):
        audio = (audio.get("waveform"), audio.get("sample_rate"))
    if isinstance(audio, tuple):
        return _waveform_source(*audio, sample_rate, uri or "waveform")
    if not isinstance(audio, str | Path):
        raise DiarizeError(
            f"audio must be a path or (waveform, sample_rate), got {type(audio).__name__}"
        )
    info = audio_info(audio)
    return AudioSource(
        uri=uri or Path(audio).stem,
        path=str(audio),
        num_samples=-(-info.num_samples * sample_rate // info.sample_rate),
        duration=info.duration,
        blocks=lambda seconds: iter_blocks(audio, seconds, sample_rate),
    )


def _waveform_source(wave, rate, sample_rate: int, uri: str) -> AudioSource:
    """A waveform in memory mixed to mono and resampled once, then served in blocks."""
    if not isinstance(rate, int | np.integer) or rate < 1:
        raise DiarizeError(f"sample rate must be a positive integer, got {rate!r}")
    wave = np.asarray(wave.detach().cpu() if hasattr(wave, "detach") else wave, np.float32)
    if wave.ndim == 2:
        wave = wave.mean(axis=int(np.argmin(wave.shape)))  # channels: the shorter axis
    if wave.ndim != 1 or wave.size == 0:
        raise DiarizeError(f"waveform must be (samples,) or 2-D with channels, got {wave.shape}")
    duration = len(wave) / rate
    mono = resample(wave, int(rate), sample_rate)

    def blocks(seconds: float) -> Iterator[np.ndarray]:
        step = max(1, round(seconds * sample_rate))
        return (mono[i : i + step] for i in range(0, len(mono), step))

    return AudioSource(uri, None, len(mono), duration, blocks)


def frame_grid(
    model, config: InferConfig, num_samples: int, sample_rate: int, chunk_frames: int
) -> FrameGrid:
    """The frames of ``num_samples`` samples for ``model`` (``frame_shift``, ``num_frames``)
    and the windows ``config`` asks for (:func:`window_frames`)."""
    frame_shift = float(model.frame_shift)
    window, hop = window_frames(config, frame_shift, chunk_frames)
    spf = round(frame_shift * sample_rate)
    return FrameGrid(frame_shift, sample_rate, spf, model.num_frames(num_samples), window, hop)


def window_frames(config: InferConfig, frame_shift: float, chunk_frames: int) -> tuple[int, int]:
    """(window, hop) in frames: ``config.window``/``hop`` seconds, 0 meaning the training
    chunk and half of it."""
    window = round(config.window / frame_shift) if config.window else chunk_frames
    if window < 1:
        raise DiarizeError(f"window {config.window} s is shorter than one frame ({frame_shift} s)")
    hop = round(config.hop / frame_shift) if config.hop else max(1, window // 2)
    if not 1 <= hop <= window:
        raise DiarizeError(
            f"hop ({config.hop} s = {hop} frames) must be between one frame and the window ({window} frames)"
        )
    return window, hop


def window_starts(num_frames: int, window: int, hop: int) -> list[int]:
    """First frame of each window: every ``hop`` frames, the last one ending exactly at
    ``num_frames``; a recording shorter than a window is one (shorter) window."""
    if window < 1 or not 1 <= hop <= window:
        raise ValueError(f"need 1 <= hop <= window, got window={window}, hop={hop}")
    if num_frames <= window:
        return [0]
    last = num_frames - window
    starts = list(range(0, last, hop))
    return starts + [last]


@dataclass(frozen=True)
class Window:
    """One window's audio and the per-frame features of its frames."""

    start: int  # first frame of the window in the recording
    wave: np.ndarray  # (samples,)
    # per-frame arrays (frames, ...) from stream_windows' frame_features, or None
    features: tuple | None = None
    # a frozen frontend's states (layers, frames, dim) from stream_windows' block_states
    states: np.ndarray | None = None


def stream_windows(
    source: AudioSource,
    grid: FrameGrid,
    frame_features: Callable[[np.ndarray], tuple] | None = None,
    lookahead: int = 0,
    block_states: Callable[[np.ndarray], np.ndarray] | None = None,
    block: int = 0,
    context: int = 0,
) -> Iterator[Window]:
    """The windows of ``grid`` in time order, read from ``source`` in hop-sized blocks.
    ``frame_features(wave)``: per-frame arrays ``(len(wave) // samples_per_frame, ...)``;
    each frame's are computed once, on the recording's audio with ``lookahead`` samples (a
    whole number of frames) after it, as if on the whole recording cut at its last frame,
    and sliced for every window that holds the frame. ``block_states(wave)``: a frozen
    frontend's states ``(layers, len(wave) // samples_per_frame, dim)``, computed on blocks of
    ``block`` frames cut at multiples of it (the last one shorter), each run with ``context``
    frames of audio on either side that are then dropped, and sliced the same way."""
    spf = grid.samples_per_frame
    audio = _Samples(source.blocks(grid.hop * spf / grid.sample_rate))
    store = _FrameStore(frame_features, spf, grid.num_frames * spf, lookahead)
    blocks = _BlockStore(block_states, block, grid.num_frames, context) if block_states else None
    for start in grid.starts:
        keep = min(start, store.stop) if frame_features else start
        if blocks:
            keep = min(keep, blocks.next_read)
        audio.drop(keep * spf)
        wave = audio.read(start * spf, (start + grid.window) * spf).copy()
        stop = start + len(wave) // spf
        features = store.frames(audio, start, stop) if frame_features else None
        states = blocks.frames(audio, spf, start, stop) if blocks else None
        yield Window(start, wave, features, states)


class _BlockStore:
    """A frozen frontend's states of the blocks that hold frames ``[offset, stop)``."""

    def __init__(self, compute, block: int, num_frames: int, context: int = 0):
        if block < 1 or context < 0:
            raise ValueError(f"need block >= 1 and context >= 0 frames, got {block}, {context}")
        self.compute, self.block, self.num_frames = compute, block, num_frames
        self.context = context
        self.states: np.ndarray | None = None  # (layers, stop - offset, dim)
        self.offset = self.stop = 0

    @property
    def next_read(self) -> int:
        """The first frame whose audio the next block is run on (the block and its context)."""
        return max(0, self.stop - self.context)

    def frames(self, audio: _Samples, spf: int, start: int, stop: int) -> np.ndarray:
        """The states of frames ``[start, stop)`` (``start`` never decreasing), computing the
        blocks not computed yet; those before ``start`` are forgotten."""
        if self.states is not None and start > self.offset:
            self.states, self.offset = self.states[:, start - self.offset :], start
        while self.stop < min(stop, self.num_frames):
            last = min(self.stop + self.block, self.num_frames)
            first = self.next_read
            seen = audio.read(first * spf, min(last + self.context, self.num_frames) * spf)
            new = self.compute(seen)[:, self.stop - first : last - first]
            self.states = new if self.states is None else np.concatenate([self.states, new], 1)
            self.stop = last
        return self.states[:, start - self.offset : stop - self.offset]


class _Samples:
    """The samples ``[offset, offset + len(data))`` of a stream of blocks, read on demand."""

    def __init__(self, blocks: Iterable[np.ndarray]):
        self.blocks, self.data, self.offset = iter(blocks), np.zeros(0, dtype=np.float32), 0

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` (fewer at the end of the audio); ``start >= offset``."""
        while self.offset + len(self.data) < stop:
            block = next(self.blocks, None)
            if block is None:
                break
            self.data = np.concatenate([self.data, block])
        return self.data[max(0, start - self.offset) : max(0, stop - self.offset)]

    def drop(self, before: int) -> None:
        """Forget the samples before ``before``."""
        n = min(max(0, before - self.offset), len(self.data))
        self.data, self.offset = self.data[n:], self.offset + n


class _FrameStore:
    """Per-frame feature arrays of frames ``[offset, stop)``, extended window by window."""

    def __init__(self, compute, spf: int, end: int, lookahead: int):
        self.compute, self.spf, self.end, self.lookahead = compute, spf, end, lookahead
        self.arrays: tuple | None = None
        self.offset = self.stop = 0

    def frames(self, audio: _Samples, start: int, stop: int) -> tuple:
        """The arrays of frames ``[start, stop)``, computing those not computed yet."""
        if start > self.stop:  # a gap (never between overlapping windows): start afresh
            self.arrays, self.offset, self.stop = None, start, start
        if stop > self.stop:
            last = min(stop * self.spf + self.lookahead, self.end)
            new = [
                a[: stop - self.stop] for a in self.compute(audio.read(self.stop * self.spf, last))
            ]
            old = self.arrays or [a[:0] for a in new]
            self.arrays = tuple(
                np.concatenate([o[start - self.offset :], n]) for o, n in zip(old, new, strict=True)
            )
            self.offset, self.stop = start, stop
        return tuple(a[start - self.offset : stop - self.offset] for a in self.arrays)
