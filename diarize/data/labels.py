"""Speaker turns to frame labels and back.

Frame ``i`` stands for ``[offset + i * frame_shift, offset + (i + 1) * frame_shift)`` (the
frontends' convention) and is labelled by the speakers active at its centre,
``offset + (i + 0.5) * frame_shift``. A turn ``[start, end)`` therefore covers the frames
whose centre lies in it; the inverse turns a run of active frames ``[a, b)`` into the turn
``[offset + a * frame_shift, offset + b * frame_shift)``, so labels -> turns -> labels is exact.
"""

from __future__ import annotations

import math

import numpy as np
from pyannote.core import Annotation, Segment

_DECIMALS = 9  # rounding of frame positions, so that 0.3 / 0.1 lands on 3, not 2.9999


def frame_labels(
    annotation: Annotation,
    num_frames: int,
    frame_shift: float,
    speakers: list[str] | None = None,
    offset: float = 0.0,
) -> np.ndarray:
    """Activity of each speaker at each frame centre, shape ``(frames, speakers)`` float32.

    Columns follow ``speakers`` (default: the annotation's labels, sorted); a label of the
    annotation missing from a given ``speakers`` list is a ValueError.
    """
    if frame_shift <= 0 or num_frames < 0:
        raise ValueError(
            f"need frame_shift > 0 and num_frames >= 0, got {frame_shift}, {num_frames}"
        )
    names = sorted(map(str, annotation.labels())) if speakers is None else list(speakers)
    column = {name: k for k, name in enumerate(names)}
    unknown = sorted(set(map(str, annotation.labels())) - set(column))
    if unknown:
        raise ValueError(f"speakers {unknown} of {annotation.uri!r} are not in {names}")
    labels = np.zeros((num_frames, len(names)), dtype=np.float32)  # (frames, speakers)
    for segment, _, label in annotation.itertracks(yield_label=True):
        first, stop = _frame_span(segment, frame_shift, offset, num_frames)
        labels[first:stop, column[str(label)]] = 1.0
    return labels


def _frame_span(
    segment: Segment, frame_shift: float, offset: float, num_frames: int
) -> tuple[int, int]:
    """Frames ``[first, stop)`` whose centre lies in ``segment``, clipped to the signal."""
    first = math.ceil(round((segment.start - offset) / frame_shift - 0.5, _DECIMALS))
    stop = math.ceil(round((segment.end - offset) / frame_shift - 0.5, _DECIMALS))
    return min(max(first, 0), num_frames), min(max(stop, 0), num_frames)


def labels_to_annotation(
    activity: np.ndarray,
    frame_shift: float,
    uri: str,
    speaker_names: list[str],
    offset: float = 0.0,
) -> Annotation:
    """Turns of a ``(frames, speakers)`` boolean activity matrix: each run of active frames
    ``[a, b)`` of column ``k`` becomes the turn ``[offset + a * frame_shift,
    offset + b * frame_shift)`` of ``speaker_names[k]``."""
    activity = np.asarray(activity, dtype=bool)
    if activity.ndim != 2 or activity.shape[1] != len(speaker_names):
        raise ValueError(
            f"activity must be (frames, {len(speaker_names)} speakers), got shape {activity.shape}"
        )
    annotation = Annotation(uri=uri)
    for k, name in enumerate(speaker_names):
        for a, b in _runs(activity[:, k]):
            segment = Segment(offset + a * frame_shift, offset + b * frame_shift)
            annotation[segment, annotation.new_track(segment)] = name
    return annotation


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """``[(a, b), ...]`` of the runs of True in a ``(frames,)`` boolean vector."""
    edges = np.diff(np.concatenate([[False], active, [False]]).astype(np.int8))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), stops.tolist(), strict=True))
