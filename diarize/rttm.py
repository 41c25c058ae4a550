"""RTTM and UEM files to and from pyannote.core ``Annotation`` / ``Timeline``.

RTTM (NIST RT evaluation plan): one ``SPEAKER`` line per speaker turn::

    SPEAKER <uri> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>

UEM: one scored region per line: ``<uri> <channel> <onset> <offset>``.
Blank lines and lines starting with ``;;`` are comments. Lines of other RTTM types
(``SPKR-INFO``, ``LEXEME``...) are ignored. Any malformed line is a :class:`DiarizeError`
naming the file and the line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from pyannote.core import Annotation, Segment, Timeline

from diarize.utils import DiarizeError, atomic_write, text_lines


def _records(path: Path, min_fields: int) -> Iterable[tuple[int, list[str]]]:
    for lineno, line in text_lines(path):
        fields = line.split()
        if fields[0].startswith(";;"):
            continue
        if len(fields) < min_fields:
            raise DiarizeError(
                f"{path}:{lineno}: expected at least {min_fields} fields, got {len(fields)}: {line.strip()!r}"
            )
        yield lineno, fields


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
    return x, y


def read_rttm(path: str | os.PathLike) -> dict[str, Annotation]:
    """``{uri: Annotation}`` of the ``SPEAKER`` lines of one RTTM file."""
    path = Path(path)
    annotations: dict[str, Annotation] = {}
    for lineno, f in _records(path, 8):
        if f[0].upper() != "SPEAKER":
            continue
        onset, duration = _times(path, lineno, f[3], f[4], ("onset", "duration"))
        uri, speaker = f[1], f[7]
        ann = annotations.setdefault(uri, Annotation(uri=uri))
        if duration > 0:
            seg = Segment(onset, onset + duration)
            ann[seg, ann.new_track(seg)] = speaker
    return annotations


def read_uem(path: str | os.PathLike) -> dict[str, Timeline]:
    """``{uri: Timeline}`` of the scored regions of one UEM file."""
    path = Path(path)
    regions: dict[str, list[Segment]] = {}
    for lineno, f in _records(path, 4):
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


def format_rttm(annotation: Annotation, uri: str | None = None) -> list[str]:
    """RTTM lines of one annotation, sorted by onset, offset and speaker, 3 decimals."""
    uri = uri or annotation.uri or "unknown"
    rows = sorted(
        (round(seg.start, 3), round(seg.end, 3), str(label))
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
                f.write(f"{uri} 1 {seg.start:.3f} {seg.end:.3f}\n")
