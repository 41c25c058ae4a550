"""RTTM and UEM files to and from pyannote.core ``Annotation`` / ``Timeline``.

RTTM (NIST RT evaluation plan): one ``SPEAKER`` line per speaker turn::

    SPEAKER <uri> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>

UEM: one scored region per line: ``<uri> <channel> <onset> <offset>``.
Blank lines and lines starting with ``;;`` are comments. Lines of other RTTM types
(``SPKR-INFO``, ``LEXEME``...) are ignored. Any malformed line is a :class:`DiarizeError`
naming the file and the line.

Fields are separated by whitespace, so a recording id or a speaker name can never contain
any: a ``SPEAKER`` line must have exactly 9 or 10 fields (md-eval's 9, plus the optional
signal-lookahead time) and a UEM line exactly 4, else the line is an error rather than
being read with its fields shifted (``SPEAKER my meeting 1 ...`` would read as recording
``my``). Writers replace whitespace in names by ``_`` (:func:`rttm_name`). Times are
checked to be finite, >= 0 and at most :data:`MAX_SECONDS`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from pyannote.core import Annotation, Segment, Timeline

from diarize.utils import DiarizeError, atomic_write, text_lines

# Largest time (seconds, about 31 years) in an RTTM or UEM file. Far beyond any recording,
# and small enough that float64 keeps every time to 1e-6 s and sums of times stay finite
# (1e308 would score as inf/nan; 1e20 s would round a 1 s turn to nothing).
MAX_SECONDS = 1e9

_SPEAKER_FIELDS = (9, 10)  # type uri channel onset duration ortho stype speaker conf [slat]
_UEM_FIELDS = 4
_UEM_SYNTAX = "<uri> <channel> <onset> <offset>"
_SPEAKER_SYNTAX = "SPEAKER <uri> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> [<NA>]"


def _records(path: Path) -> Iterable[tuple[int, str, list[str]]]:
    """(line number, line, fields) of the lines that are not blank or ``;;`` comments."""
    for lineno, line in text_lines(path):
        fields = line.split()
        if not fields[0].startswith(";;"):
            yield lineno, line, fields


def _field_count_error(
    path: Path, lineno: int, line: str, count: str, syntax: str, got: int
) -> DiarizeError:
    return DiarizeError(
        f"{path}:{lineno}: expected {count} fields ({syntax}), got {got}; a recording id or "
        f"speaker name cannot contain spaces: {line[:200]!r}"
    )


def _times(path: Path, lineno: int, a: str, b: str, what: tuple[str, str]) -> tuple[float, float]:
    try:
        x, y = float(a), float(b)
    except ValueError:
        raise DiarizeError(
            f"{path}:{lineno}: {what[0]}/{what[1]} must be numbers, got {a!r} {b!r}"
        ) from None
    if not (math.isfinite(x) and math.isfinite(y)) or x < 0 or y < 0:
        raise DiarizeError(
            f"{path}:{lineno}: {what[0]}/{what[1]} must be finite and >= 0, got {a} {b}"
        )
    if max(x, y) > MAX_SECONDS:
        raise DiarizeError(
            f"{path}:{lineno}: {what[0]}/{what[1]} must be at most {MAX_SECONDS:g} s, got {a} {b}"
        )
    return x, y


def read_rttm(path: str | os.PathLike) -> dict[str, Annotation]:
    """``{uri: Annotation}`` of the ``SPEAKER`` lines of one RTTM file."""
    path = Path(path)
    annotations: dict[str, Annotation] = {}
    for lineno, line, f in _records(path):
        if f[0].upper() != "SPEAKER":
            continue
        if len(f) not in _SPEAKER_FIELDS:
            raise _field_count_error(path, lineno, line, "9 or 10", _SPEAKER_SYNTAX, len(f))
        onset, duration = _times(path, lineno, f[3], f[4], ("onset", "duration"))
        uri, speaker = f[1], f[7]
        if speaker.upper() == "<NA>":
            raise DiarizeError(
                f"{path}:{lineno}: field 8 (the speaker) is <NA>; expected {_SPEAKER_SYNTAX}"
            )
        ann = annotations.setdefault(uri, Annotation(uri=uri))
        if duration > 0:
            seg = Segment(onset, onset + duration)
            ann[seg, ann.new_track(seg)] = speaker
    return annotations


def read_uem(path: str | os.PathLike) -> dict[str, Timeline]:
    """``{uri: Timeline}`` of the scored regions of one UEM file."""
    path = Path(path)
    regions: dict[str, list[Segment]] = {}
    for lineno, line, f in _records(path):
        if len(f) != _UEM_FIELDS:
            raise _field_count_error(path, lineno, line, "4", _UEM_SYNTAX, len(f))
        onset, offset = _times(path, lineno, f[2], f[3], ("onset", "offset"))
        if offset < onset:
            raise DiarizeError(f"{path}:{lineno}: offset {offset} is before onset {onset}")
        regions.setdefault(f[0], []).append(Segment(onset, offset))
    return {uri: Timeline(segs, uri=uri).support() for uri, segs in regions.items()}


def rttm_files(path: str | os.PathLike) -> list[Path]:
    """An RTTM file itself, or the ``*.rttm`` files of a directory (sorted)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.rttm"))
        if not files:
            raise DiarizeError(f"{path}: directory holds no .rttm file")
        return files
    if not path.exists():
        raise DiarizeError(f"{path}: no such file or directory")
    return [path]


def load_rttms(path: str | os.PathLike) -> dict[str, Annotation]:
    """Read an RTTM file or every RTTM file of a directory into one ``{uri: Annotation}``.
    A recording that appears in several files is an error."""
    merged: dict[str, Annotation] = {}
    origin: dict[str, Path] = {}
    for file in rttm_files(path):
        for uri, ann in read_rttm(file).items():
            if uri in merged:
                raise DiarizeError(f"{file}: recording {uri!r} already appears in {origin[uri]}")
            merged[uri], origin[uri] = ann, file
    return merged


def rttm_name(name: str) -> str:
    """``name`` fit for an RTTM/UEM field: each run of whitespace becomes one ``_``
    (``"my meeting"`` -> ``"my_meeting"``); an empty name becomes ``"_"``."""
    return re.sub(r"\s+", "_", name.strip()) or "_"


def format_rttm(annotation: Annotation, uri: str | None = None) -> list[str]:
    """RTTM lines of one annotation, sorted by onset, offset and speaker, 3 decimals.
    Whitespace in the uri and the labels is replaced (:func:`rttm_name`), so every line
    reads back as written; callers that show names to users should warn (``diarize run``
    does)."""
    uri = rttm_name(uri or annotation.uri or "unknown")
    rows = sorted(
        (round(seg.start, 3), round(seg.end, 3), rttm_name(str(label)))
        for seg, _, label in annotation.itertracks(yield_label=True)
    )
    return [
        f"SPEAKER {uri} 1 {start:.3f} {end - start:.3f} <NA> <NA> {label} <NA> <NA>"
        for start, end, label in rows
        if end > start
    ]


def write_rttm(path: str | os.PathLike, annotations: Annotation | Iterable[Annotation]) -> None:
    """Write one or several annotations (sorted by uri) atomically."""
    if isinstance(annotations, Annotation):
        annotations = [annotations]
    lines: list[str] = []
    for ann in sorted(annotations, key=lambda a: a.uri or ""):
        lines.extend(format_rttm(ann))
    with atomic_write(path) as f:
        f.write("".join(line + "\n" for line in lines))


def write_uem(path: str | os.PathLike, timelines: Mapping[str, Timeline]) -> None:
    """Write ``{uri: Timeline}`` as a UEM file, atomically."""
    with atomic_write(path) as f:
        for uri in sorted(timelines):
            for seg in timelines[uri].support():
                f.write(f"{rttm_name(uri)} 1 {seg.start:.3f} {seg.end:.3f}\n")
