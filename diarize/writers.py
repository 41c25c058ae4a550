"""Output files of a diarization, chosen by name from one table (as whisper's ``get_writer``).

``WRITERS[name].write(results, path)`` writes one :class:`~diarize.inference.Result` as a
document of its own, or a list of them as one document for all (an RTTM of every
recording, JSON ``{"recordings": [...]}``); ``.suffix`` is the file name's ending. Every
file is written atomically.

| name | suffix | what |
|---|---|---|
| ``rttm`` | ``.rttm`` | overlap-aware turns (:func:`diarize.rttm.write_rttm`) |
| ``exclusive`` | ``.exclusive.rttm`` | one speaker at a time |
| ``json`` | ``.json`` | turns, talk time per speaker, duration, speaker count |
| ``png`` | ``.png`` | timeline plot, one row per speaker (one recording per file) |
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from diarize.inference import Result
from diarize.rttm import write_rttm
from diarize.utils import atomic_path, atomic_write

Results = Result | list[Result]


@dataclass(frozen=True)
class Writer:
    suffix: str  # file name ending
    write: Callable[[Results, Path], None]  # (one result or a list, path)


def write_turns(results: Results, path: Path) -> None:
    """Overlap-aware RTTM."""
    one = isinstance(results, Result)
    write_rttm(path, results.annotation if one else [r.annotation for r in results])


def write_exclusive(results: Results, path: Path) -> None:
    """One-speaker-at-a-time RTTM (for ASR alignment)."""
    one = isinstance(results, Result)
    write_rttm(path, results.exclusive if one else [r.exclusive for r in results])


def write_json(results: Results, path: Path) -> None:
    """Turns and talk time: :func:`summary`, or ``{"recordings": [summary, ...]}``."""
    doc = summary(results) if isinstance(results, Result) else {"recordings": [summary(r) for r in results]}  # fmt: skip
    with atomic_write(path) as f:
        json.dump(doc, f, indent=2)


def summary(result: Result) -> dict:
    """JSON-ready turns and talk time of one recording."""
    turns = [
        {"start": round(seg.start, 3), "end": round(seg.end, 3), "speaker": str(label)}
        for seg, _, label in result.annotation.itertracks(yield_label=True)
    ]
    return {
        "uri": result.uri,
        "audio": result.audio,
        "duration": round(result.duration, 3),
        "num_speakers": len(result.annotation.labels()),
        "talk_time": {k: round(v, 3) for k, v in result.talk_time().items()},
        "turns": sorted(turns, key=lambda t: (t["start"], t["end"], t["speaker"])),
    }


def write_plot(result: Results, path: Path) -> None:
    """One row per speaker, turns as bars, time axis in m:ss (h:mm:ss past an hour)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    if not isinstance(result, Result):
        raise ValueError("a timeline plot shows one recording; write one file per result")
    labels = sorted(result.annotation.labels())
    fig = Figure(figsize=(12, 1.2 + 0.45 * max(len(labels), 1)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for row, label in enumerate(labels):
        spans = [(s.start, s.duration) for s in result.annotation.label_timeline(label)]
        ax.broken_barh(spans, (row - 0.35, 0.7), color=f"C{row % 10}")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(-0.6, max(len(labels), 1) - 0.4)
    ax.invert_yaxis()
    ax.set_xlim(0, max(result.duration, 1e-3))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: clock(t)))
    ax.set_xlabel("time (m:ss)" if result.duration < 3600 else "time (h:mm:ss)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{result.uri}: {len(labels)} speaker(s), {clock(result.duration)}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    s = int(round(max(seconds, 0)))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


WRITERS: dict[str, Writer] = {
    "rttm": Writer(".rttm", write_turns),
    "exclusive": Writer(".exclusive.rttm", write_exclusive),
    "json": Writer(".json", write_json),
    "png": Writer(".png", write_plot),
}


def get_writer(name: str) -> Writer:
    """The writer called ``name`` (a key of :data:`WRITERS`)."""
    if name not in WRITERS:
        raise ValueError(f"no writer {name!r}; known: {', '.join(WRITERS)}")
    return WRITERS[name]
