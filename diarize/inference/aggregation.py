"""Stage 4, aggregation: the linked windows become one recording's diarization.

Posteriors are averaged over the windows covering each frame, weighted towards the window
whose centre is nearest (:func:`stitch`), thresholded, median-filtered and cleaned of short
turns and pauses (:func:`postprocess`), and turned into an overlap-aware ``Annotation``; an
exclusive version (one speaker at a time, :func:`exclusive`) serves ASR alignment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyannote.core import Annotation
from scipy.ndimage import median_filter

from diarize.config import InferConfig
from diarize.data.labels import labels_to_annotation
from diarize.inference.local import WindowOutput


@dataclass(frozen=True)
class Result:
    """Diarization of one recording."""

    uri: str
    annotation: Annotation  # overlap-aware turns
    exclusive: Annotation  # one speaker at a time (the most probable active one)
    probs: np.ndarray  # (frames, speakers) stitched posteriors, columns in ``labels`` order
    labels: list[str]  # global speaker names
    frame_shift: float  # seconds per frame
    duration: float  # seconds of audio
    audio: str | None = None  # the audio file, None for a waveform

    def talk_time(self) -> dict[str, float]:
        """Seconds of speech per speaker (overlapping speech counts for each speaker)."""
        return talk_time(self.annotation)


def aggregate(
    windows: list[WindowOutput],
    assignment: list[np.ndarray],
    num_frames: int,
    frame_shift: float,
    config: InferConfig,
    uri: str,
    duration: float = 0.0,
    audio: str | None = None,
) -> Result:
    """Stitch the linked ``windows`` of one recording and post-process them. A global
    speaker left without a turn is dropped, so the labels run SPEAKER_00, 01... unbroken."""
    probs = stitch(windows, assignment, num_frames)  # (frames, speakers)
    active = postprocess(probs, config, frame_shift)
    heard = active.any(axis=0)
    probs, active = probs[:, heard], active[:, heard]  # (frames, speakers with a turn)
    labels = [f"SPEAKER_{g:02d}" for g in range(probs.shape[1])]
    return Result(
        uri=uri,
        annotation=labels_to_annotation(active, frame_shift, uri, labels),
        exclusive=labels_to_annotation(exclusive(probs, active), frame_shift, uri, labels),
        probs=probs,
        labels=labels,
        frame_shift=frame_shift,
        duration=duration,
        audio=audio,
    )


def stitch(
    windows: list[WindowOutput], assignment: list[np.ndarray], num_frames: int
) -> np.ndarray:
    """Posteriors of the global speakers ``(num_frames, speakers)``: each window's local
    columns moved to their global speaker (max when several land on one), then averaged over
    the windows covering each frame, weighted by how central the frame is in each window
    (weight 1 at the centre falling linearly towards the edges, where the network saw the
    least context). Where two windows disagree on who speaks, the one that saw the frame in
    its middle prevails instead of both being halved below the threshold."""
    speakers = max((int(a.max()) + 1 for a in assignment if len(a)), default=0)
    total = np.zeros((num_frames, speakers), dtype=np.float64)
    weight = np.zeros(num_frames, dtype=np.float64)
    for win, glob in zip(windows, assignment, strict=True):
        frames = max(0, min(len(win.probs), num_frames - win.start))
        local = np.zeros((frames, speakers))  # (frames, speakers)
        for k, g in enumerate(glob):
            if g >= 0:
                local[:, g] = np.maximum(local[:, g], win.probs[:frames, k])
        centre = (len(win.probs) - 1) / 2
        w = 1 - np.abs(np.arange(frames) - centre) / (centre + 1)  # (frames,) in (0, 1]
        total[win.start : win.start + frames] += w[:, None] * local
        weight[win.start : win.start + frames] += w
    return (total / np.maximum(weight, 1e-12)[:, None]).astype(np.float32)


def postprocess(probs: np.ndarray, config: InferConfig, frame_shift: float) -> np.ndarray:
    """probs (frames, speakers) -> activity (frames, speakers) bool: threshold, median filter
    over ``config.median`` frames, pauses shorter than ``min_duration_off`` filled, then turns
    shorter than ``min_duration_on`` removed (both rounded to frames)."""
    active = probs > config.threshold
    if config.median > 1 and len(active):
        active = median_filter(active, size=(config.median, 1), mode="nearest")
    min_off = round(config.min_duration_off / frame_shift)
    min_on = round(config.min_duration_on / frame_shift)
    for s in range(active.shape[1]):
        active[:, s] = _clean(active[:, s], min_on, min_off)
    return active


def _clean(x: np.ndarray, min_on: int, min_off: int) -> np.ndarray:
    """Fill interior pauses shorter than ``min_off`` frames, then drop turns shorter than ``min_on``."""
    x = x.copy()
    runs = _runs(x)
    for (_, end), (start, _) in zip(runs, runs[1:], strict=False):
        if start - end < min_off:
            x[end:start] = True
    for start, end in _runs(x):
        if end - start < min_on:
            x[start:end] = False
    return x


def _runs(x: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], x.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()
    return list(zip(starts, ends, strict=True))


def exclusive(probs: np.ndarray, active: np.ndarray) -> np.ndarray:
    """One speaker at a time: in each frame with any active speaker, only the active
    speaker of highest posterior stays. probs, active (frames, speakers) -> (frames, speakers)."""
    out = np.zeros_like(active)
    if active.size:
        best = np.where(active, probs, -np.inf).argmax(axis=1)  # (frames,)
        frames = np.flatnonzero(active.any(axis=1))
        out[frames, best[frames]] = True
    return out


def talk_time(annotation: Annotation) -> dict[str, float]:
    """Seconds of speech per speaker (overlapping speech counts for each speaker)."""
    return {
        str(label): float(annotation.label_duration(label)) for label in sorted(annotation.labels())
    }
