"""Stage 1, windows: the frame grid of a recording, where its windows start, and the audio
streamed block by block and cut into those windows.

Frame ``i`` of a recording stands for ``[i * frame_shift, (i + 1) * frame_shift)``. Windows
have the training chunk's length by default and start every half window; the last one ends
exactly at the last frame. Audio comes from a file (read block by block, so memory does not
grow with the recording) or from a waveform in memory (any rate, any channels).
"""

from __future__ import annotations

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

    @property
    def starts(self) -> list[int]:
        """First frame of each window (none for a recording without a whole frame)."""
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


def stream_windows(source: AudioSource, grid: FrameGrid) -> Iterator[tuple[int, np.ndarray]]:
    """``(start frame, wave (samples,))`` of each window of ``grid``, in time order, read
    from ``source`` in hop-sized blocks."""
    spf, starts = grid.samples_per_frame, grid.starts
    blocks = source.blocks(grid.hop * spf / grid.sample_rate)
    waves = slide(blocks, [s * spf for s in starts], grid.window * spf)
    return zip(starts, waves, strict=True)


def slide(blocks: Iterable[np.ndarray], starts: list[int], length: int) -> Iterator[np.ndarray]:
    """Cut windows ``[start, start + length)`` (samples; the end clipped to the audio) out of
    consecutive audio blocks, holding only the samples still needed. ``starts`` increase."""
    blocks = iter(blocks)
    buffer, offset = np.zeros(0, dtype=np.float32), 0  # buffer[0] is sample `offset`
    for start in starts:
        drop = min(max(0, start - offset), len(buffer))
        buffer, offset = buffer[drop:], offset + drop
        while offset + len(buffer) < start + length:
            block = next(blocks, None)
            if block is None:
                break
            buffer = np.concatenate([buffer, block])
        skip = max(0, start - offset)  # only when starts jump past the audio
        yield buffer[skip : start + length - offset].copy()
