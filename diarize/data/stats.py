"""What a diarization set holds: the numbers a user checks first, and the ones simulated
conversations (:mod:`diarize.data.simulate`) can be drawn from.

Every figure is measured inside each recording's scored region (its UEM, else the whole
recording), with the turns of one speaker merged where they touch or overlap:

* **speech**: time where at least one speaker talks, as a share of the scored duration;
* **overlap**: time where two or more talk, as a share of speech (what ``diarize simulate``
  prints as its overlap ratio);
* **turns**: the merged turns of each speaker;
* **pauses**: the gaps between consecutive turns of one speaker (the intervals Fujita et
  al.'s simulation draws with mean beta);
* **silences**: the gaps between consecutive stretches of speech of anyone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from itertools import pairwise

import numpy as np
from pyannote.core import Annotation, Segment, Timeline

from diarize.data.kaldi import DiarizationSet, Recording

Interval = tuple[float, float]


@dataclass(frozen=True)
class Distribution:
    """Summary of a list of durations, in seconds."""

    count: int
    total: float
    mean: float
    p10: float  # 10th percentile
    median: float
    p90: float  # 90th percentile
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Distribution:
        if not values:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        x = np.asarray(values, dtype=np.float64)
        figures = (x.sum(), x.mean(), *np.percentile(x, [10, 50, 90]), x.max())
        return cls(len(x), *(float(v) for v in figures))

    def format(self) -> str:
        return (
            f"n {self.count:6d}   mean {self.mean:6.2f} s   p10 {self.p10:6.2f}   "
            f"median {self.median:6.2f}   p90 {self.p90:6.2f}   max {self.max:7.2f}"
        )


@dataclass(frozen=True)
class SetStats:
    recordings: int
    duration: float  # seconds scored (UEM, else whole recordings), summed
    speakers: dict[int, int]  # speakers in a recording -> number of such recordings
    speech: float  # seconds with at least one speaker
    overlap: float  # seconds with two or more speakers
    turns: Distribution
    pauses: Distribution
    silences: Distribution

    @property
    def speech_fraction(self) -> float:
        return self.speech / self.duration if self.duration > 0 else 0.0

    @property
    def overlap_fraction(self) -> float:
        """Overlapped speech / speech."""
        return self.overlap / self.speech if self.speech > 0 else 0.0

    @property
    def speaker_total(self) -> int:
        return sum(n * count for n, count in self.speakers.items())

    def summary_line(self) -> str:
        """One line: recordings, hours, speakers, speech and overlap."""
        return (
            f"{self.recordings} recordings, {self.duration / 3600:.2f} h, "
            f"{_speaker_range(self.speakers)} speakers per recording (mean "
            f"{self.speaker_total / max(1, self.recordings):.1f}), "
            f"speech {100 * self.speech_fraction:.1f} %, overlap {100 * self.overlap_fraction:.1f} % of speech"
        )

    def format(self) -> str:
        counts = ", ".join(f"{n}: {c}" for n, c in sorted(self.speakers.items()))
        return "\n".join(
            [
                f"recordings        {self.recordings}",
                f"duration          {self.duration / 3600:.2f} h ({self.duration:.1f} s scored)",
                f"speakers/rec      {counts or '-'}   (recordings per speaker count)",
                f"speech            {100 * self.speech_fraction:.1f} % of the duration",
                f"overlap           {100 * self.overlap_fraction:.1f} % of speech",
                f"turns             {self.turns.format()}",
                f"pauses (speaker)  {self.pauses.format()}",
                f"silences (all)    {self.silences.format()}",
            ]
        )

    def to_json(self) -> dict:
        out = asdict(self)
        out["speakers"] = {str(n): c for n, c in sorted(self.speakers.items())}
        out["speech_fraction"] = self.speech_fraction
        out["overlap_fraction"] = self.overlap_fraction
        return out


def set_stats(data: DiarizationSet) -> SetStats:
    """The figures of the module docstring over every recording of ``data``."""
    speakers: Counter[int] = Counter()
    duration = speech = overlap = 0.0
    turns: list[float] = []
    pauses: list[float] = []
    silences: list[float] = []
    for rec in data:
        region = scored_region(rec)
        tracks = speaker_turns(rec.annotation, region)
        speakers[len(tracks)] += 1
        duration += region.duration()
        for intervals in tracks.values():
            turns += [b - a for a, b in intervals]
            pauses += gaps(intervals)
        union, overlapped = coverage(list(tracks.values()))
        speech += sum(b - a for a, b in union)
        overlap += sum(b - a for a, b in overlapped)
        silences += gaps(union)
    return SetStats(
        len(data),
        duration,
        dict(speakers),
        speech,
        overlap,
        Distribution.of(turns),
        Distribution.of(pauses),
        Distribution.of(silences),
    )


def scored_region(rec: Recording) -> Timeline:
    """The recording's UEM, else ``[0, duration]``."""
    if rec.uem is not None:
        return rec.uem.support()
    return Timeline([Segment(0, rec.duration)], uri=rec.id)


def speaker_turns(annotation: Annotation, region: Timeline) -> dict[str, list[Interval]]:
    """``{speaker: merged turns inside region}``, sorted; speakers without speech there are
    left out."""
    out = {}
    for label in annotation.labels():
        kept = annotation.label_timeline(label).support().crop(region, mode="intersection")
        intervals = [(s.start, s.end) for s in kept.support() if s.end > s.start]
        if intervals:
            out[str(label)] = intervals
    return out


def coverage(tracks: list[list[Interval]]) -> tuple[list[Interval], list[Interval]]:
    """(where at least one track is active, where two or more are), as sorted intervals."""
    events = sorted(
        (t, step) for track in tracks for a, b in track for t, step in ((a, 1), (b, -1))
    )
    union: list[Interval] = []
    overlapped: list[Interval] = []
    active, last = 0, 0.0
    for time, step in events:  # ends sort before starts at one instant (-1 < 1)
        if active >= 1 and time > last:
            _extend(union, last, time)
        if active >= 2 and time > last:
            _extend(overlapped, last, time)
        active, last = active + step, time
    return union, overlapped


def gaps(intervals: list[Interval]) -> list[float]:
    """Lengths of the gaps between consecutive sorted, disjoint intervals."""
    return [b[0] - a[1] for a, b in pairwise(intervals) if b[0] > a[1]]


def _extend(intervals: list[Interval], start: float, end: float) -> None:
    if intervals and intervals[-1][1] >= start:
        intervals[-1] = (intervals[-1][0], end)
    else:
        intervals.append((start, end))


def _speaker_range(speakers: dict[int, int]) -> str:
    if not speakers:
        return "0"
    lo, hi = min(speakers), max(speakers)
    return f"{lo}" if lo == hi else f"{lo}-{hi}"
