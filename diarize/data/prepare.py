"""Benchmark corpora as Kaldi-style diarization directories: what every corpus shares.

A corpus module (:mod:`diarize.data.corpora`) turns the corpus as it is distributed into
:class:`Partition` s of :class:`Candidate` recordings (audio found or not, the reference,
the scored regions); :func:`write_partitions` checks each candidate and writes one
directory per partition::

    wav.scp        <uri> <absolute audio path>   or   <uri> <command> |   (piped, Kaldi style)
    rttm           the reference, times as the corpus gives them (up to 6 decimals)
    uem            scored regions: the corpus's own, else the reference extent (md-eval's
                   default region without -u), clipped to the audio
    reco2dur       seconds of audio
    reco2num_spk   reference speakers
    skipped        recordings left out and why (empty when none)

plus any extra tables a corpus adds (per-domain lists...). Everything is sorted and
formatted the same way on every run, so a rerun writes identical files. A recording whose
audio is missing, unreadable or shorter than its reference is **listed and skipped**,
never dropped silently; a partition whose recordings are all skipped is an error (a wrong
SOURCE path, most likely), one that lists none is left out with a warning. Each written directory is read back with
:func:`~diarize.data.kaldi.load_diarization_set` (every check the loader makes) and summed
up by :func:`~diarize.data.stats.set_stats`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pyannote.core import Annotation, Segment, Timeline

from diarize.audio import audio_info
from diarize.data.kaldi import DURATION_TOLERANCE, Pipe, load_diarization_set
from diarize.data.stats import SetStats, set_stats
from diarize.scoring import reference_extent
from diarize.utils import DiarizeError, atomic_write


@dataclass(frozen=True, eq=False)
class Candidate:
    """One recording of a partition, as found in the corpus."""

    uri: str
    audio: Path | Pipe | None  # None: not found (``missing`` says what was looked for)
    annotation: Annotation  # the reference
    uem: Timeline | None = None  # scored regions; None: the reference extent
    duration: float | None = None  # seconds; None: read from the audio header
    missing: str = ""  # the audio file looked for, when ``audio`` is None


@dataclass(frozen=True)
class Partition:
    name: str  # directory name under OUT (train_headset, callhome1, dev_core...)
    candidates: tuple[Candidate, ...]
    # extra tables, relative path -> text, one row per recording (its id first)
    tables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    partition: str
    uri: str
    reason: str


@dataclass(frozen=True)
class Written:
    partition: str
    path: Path
    stats: SetStats
    clipped_uems: int  # recordings whose UEM ran past the audio and was cut at its end


@dataclass(frozen=True)
class _Checked:
    uri: str
    entry: str  # the wav.scp field: an absolute path or "cmd |"
    annotation: Annotation
    uem: Timeline
    duration: float
    clipped: bool


def write_partitions(out: Path, partitions: list[Partition]) -> tuple[list[Written], list[Skipped]]:
    """Check every candidate, write one directory per partition under ``out``, read it back.
    Returns what was written (with its statistics) and what was skipped."""
    written, skipped = [], []
    for part in partitions:
        if not part.candidates:  # e.g. no 2-speaker recording in a tiny corpus
            skipped.append(Skipped(part.name, "", "holds no recording: not written"))
            continue
        kept = []
        for cand in sorted(part.candidates, key=lambda c: c.uri):
            checked = check_candidate(cand)
            if isinstance(checked, str):
                skipped.append(Skipped(part.name, cand.uri, checked))
            else:
                kept.append(checked)
        if not kept:
            raise DiarizeError(
                f"partition {part.name}: none of its {len(part.candidates)} recordings could be "
                f"prepared ({_first_reason(skipped, part.name)}); check SOURCE"
            )
        path = out / part.name
        _write_directory(path, kept, [s for s in skipped if s.partition == part.name], part)
        stats = set_stats(load_diarization_set(path, allow_pipes=True))
        written.append(Written(part.name, path, stats, sum(c.clipped for c in kept)))
    return written, skipped


def _first_reason(skipped: list[Skipped], partition: str) -> str:
    reasons = [f"first: {s.uri}: {s.reason}" for s in skipped if s.partition == partition]
    return reasons[0] if reasons else "none is listed"


def check_candidate(cand: Candidate) -> _Checked | str:
    """The recording ready to write, or the reason to skip it."""
    if cand.audio is None:
        return f"audio file missing ({cand.missing})"
    duration = cand.duration
    if duration is None:
        if isinstance(cand.audio, Pipe):
            return "piped audio without a known duration"
        try:
            duration = audio_info(cand.audio).duration
        except DiarizeError as e:
            return f"unreadable audio ({e})"
    ends = [s.end for s in cand.annotation.itersegments()]
    if ends and max(ends) > duration + DURATION_TOLERANCE:
        return (
            f"audio is {duration:.2f} s, shorter than its reference (a turn ends at "
            f"{max(ends):.2f} s)"
        )
    uem, clipped = _clipped_uem(cand, duration)
    entry = str(cand.audio) if isinstance(cand.audio, Pipe) else str(Path(cand.audio).resolve())
    return _Checked(cand.uri, entry, cand.annotation, uem, duration, clipped)


def _clipped_uem(cand: Candidate, duration: float) -> tuple[Timeline, bool]:
    """The candidate's UEM (else its reference extent, else the whole audio) cut at the end of
    the audio, and whether anything was cut."""
    uem = cand.uem if cand.uem is not None else reference_extent(cand.annotation)
    if not uem:
        uem = Timeline([Segment(0, duration)], uri=cand.uri)
    cut = uem.crop(Segment(0, duration), mode="intersection").support()
    return cut, abs(cut.duration() - uem.support().duration()) > 1e-9


def _write_directory(
    path: Path, recs: list[_Checked], skipped: list[Skipped], part: Partition
) -> None:
    tables = {
        "wav.scp": [f"{r.uri} {r.entry}" for r in recs],
        "rttm": [line for r in recs for line in rttm_lines(r.uri, r.annotation)],
        "uem": [f"{r.uri} 1 {num(s.start)} {num(s.end)}" for r in recs for s in r.uem],
        "reco2dur": [f"{r.uri} {num(r.duration)}" for r in recs],
        "reco2num_spk": [f"{r.uri} {len(r.annotation.labels())}" for r in recs],
        "skipped": [f"{s.uri} {s.reason}" for s in skipped],
    }
    for name, lines in tables.items():
        with atomic_write(path / name) as f:
            f.write("".join(line + "\n" for line in lines))
    left_out = {s.uri for s in skipped}
    for name, text in sorted(part.tables.items()):  # rows of skipped recordings dropped
        rows = [row for row in text.splitlines() if row.split() and row.split()[0] not in left_out]
        with atomic_write(path / name) as f:
            f.write("".join(row + "\n" for row in rows))


def rttm_lines(uri: str, annotation: Annotation) -> list[str]:
    """SPEAKER lines of ``annotation`` sorted by onset, offset, speaker; times keep up to 6
    decimals (the corpora's own precision: AMI 2, VoxConverse 6), so no turn moves."""
    rows = sorted(
        (s.start, s.end, str(label)) for s, _, label in annotation.itertracks(yield_label=True)
    )
    return [
        f"SPEAKER {uri} 1 {num(a)} {num(b - a)} <NA> <NA> {label} <NA> <NA>"
        for a, b, label in rows
        if b > a
    ]


def num(x: float) -> str:
    """``x`` rounded to 6 decimals, trailing zeros dropped (``1.5``, ``0.4``, ``12``)."""
    text = f"{round(x, 6):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def report_lines(written: list[Written], skipped: list[Skipped]) -> tuple[list[str], list[str]]:
    """(what was written, one line per partition; warnings, one line per skipped recording)."""
    lines = [f"{w.path}: {w.stats.summary_line()}" for w in written]
    lines += [
        f"{w.path}: {w.clipped_uems} UEM(s) cut at the end of their audio"
        for w in written
        if w.clipped_uems
    ]
    warnings = [
        f"{s.partition}: skipped {s.uri}: {s.reason}" if s.uri else f"{s.partition}: {s.reason}"
        for s in skipped
    ]
    return lines, warnings


def read_reference(rttm: Path, uri: str) -> Annotation:
    """The reference of recording ``uri`` in its own RTTM file (empty if the file has no
    turn); a turn of another recording there is an error."""
    from diarize.rttm import read_rttm

    annotations = read_rttm(rttm)
    others = sorted(set(annotations) - {uri})
    if others:
        raise DiarizeError(f"{rttm}: turns of recording {others[0]!r}, expected only {uri!r}")
    return annotations.get(uri, Annotation(uri=uri))


def read_list(path: Path) -> list[str]:
    """The ids of a one-id-per-line list (blank lines ignored); a missing file is an error."""
    if not path.is_file():
        raise DiarizeError(f"{path}: no such file")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
