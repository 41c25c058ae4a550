"""lhotse manifests as a diarization set: a ``RecordingSet`` + a ``SupervisionSet``.

lhotse's recipes (``lhotse prepare ami``, ``voxconverse``, ``dihard3``...) write one pair per
partition, e.g. ``voxconverse_recordings_test.jsonl.gz`` and
``voxconverse_supervisions_test.jsonl.gz``. DATA is the recordings manifest itself (its twin
is the same name with ``supervisions`` for ``recordings``) or a directory holding exactly one
such pair. Each supervision with a speaker is one reference turn; a recording needs exactly
one audio source, a file (paths as lhotse resolves them, relative to the current
directory) or, with ``allow_pipes``, a ``command``. Recordings with transforms (speed
perturbation...) or other source types (URLs, in-memory audio, shar) are errors. lhotse is
optional: it is imported only here, and its absence is a one-line error.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from pyannote.core import Annotation, Segment

from diarize.data.kaldi import DiarizationSet, Pipe, Recording, build_set
from diarize.utils import DiarizeError

_SUFFIXES = (".jsonl.gz", ".jsonl", ".json")


def find_manifests(path: Path) -> tuple[Path, Path] | None:
    """(recordings, supervisions) manifests named by ``path``, or None if it names none."""
    if path.is_file() and path.name.endswith(_SUFFIXES) and "recordings" in path.name:
        return path, _twin(path)
    if not path.is_dir() or (path / "wav.scp").exists():
        return None
    found = sorted(
        p for p in path.iterdir() if p.name.endswith(_SUFFIXES) and "recordings" in p.name
    )
    if len(found) > 1:
        raise DiarizeError(
            f"{path}: holds several lhotse recordings manifests "
            f"({', '.join(p.name for p in found)}); give the one to use"
        )
    return (found[0], _twin(found[0])) if found else None


def _twin(recordings: Path) -> Path:
    supervisions = recordings.with_name(recordings.name.replace("recordings", "supervisions"))
    if not supervisions.is_file():
        raise DiarizeError(f"{recordings}: no supervisions manifest beside it ({supervisions})")
    return supervisions


def load_lhotse_set(
    recordings: Path, supervisions: Path, allow_pipes: bool = False
) -> DiarizationSet:
    """The diarization set of a lhotse ``RecordingSet`` and ``SupervisionSet``."""
    recording_set = _load(recordings, "RecordingSet")
    turns = _turns(_load(supervisions, "SupervisionSet"), supervisions)
    unknown = sorted(set(turns) - {rec.id for rec in recording_set})
    if unknown:
        raise DiarizeError(
            f"{supervisions}: supervisions of recording(s) not in {recordings.name}: "
            f"{', '.join(unknown[:5])}"
        )
    out = []
    for rec in recording_set:
        audio = _audio(rec, recordings, allow_pipes)
        annotation = turns.get(rec.id, Annotation(uri=rec.id))
        command = audio.command if isinstance(audio, Pipe) else None
        out.append(Recording(rec.id, str(audio), annotation, None, rec.duration, command))
    return build_set(str(recordings.parent), out, str(recordings))


def _load(path: Path, kind: str):
    try:
        import lhotse
    except ImportError:
        raise DiarizeError(
            f"{path}: reading lhotse manifests needs lhotse (pip install lhotse)"
        ) from None
    try:
        manifest = lhotse.load_manifest(path)
    except Exception as e:  # lhotse raises several types for a bad manifest
        raise DiarizeError(f"{path}: not a readable lhotse manifest ({e})") from None
    if type(manifest).__name__ != kind:
        raise DiarizeError(f"{path}: expected a lhotse {kind}, got a {type(manifest).__name__}")
    return manifest


def _turns(supervision_set, where: Path) -> dict[str, Annotation]:
    """``{recording id: Annotation}`` of the supervisions (one turn each)."""
    out: dict[str, Annotation] = defaultdict(Annotation)
    for sup in supervision_set:
        if not sup.speaker:
            raise DiarizeError(f"{where}: supervision {sup.id!r} has no speaker")
        if sup.start < 0 or sup.duration < 0:
            raise DiarizeError(
                f"{where}: supervision {sup.id!r} has start {sup.start}, duration {sup.duration}"
            )
        ann = out.setdefault(sup.recording_id, Annotation(uri=sup.recording_id))
        if sup.duration > 0:
            seg = Segment(sup.start, sup.start + sup.duration)
            ann[seg, ann.new_track(seg)] = sup.speaker
    return dict(out)


def _audio(rec, where: Path, allow_pipes: bool) -> Path | Pipe:
    """The one audio file (or command) of a lhotse Recording."""
    if len(rec.sources) != 1 or rec.transforms:
        what = f"{len(rec.sources)} audio sources" if len(rec.sources) != 1 else "transforms"
        raise DiarizeError(
            f"{where}: recording {rec.id!r} has {what}; diarize reads one untransformed file "
            "per recording"
        )
    source = rec.sources[0]
    if source.type == "file":
        if not Path(source.source).is_file():
            raise DiarizeError(
                f"{where}: audio file {source.source} of recording {rec.id!r} does not exist"
            )
        return Path(source.source)
    if source.type == "command" and allow_pipes:
        return Pipe(source.source)
    hint = " (pass --allow-pipes to run it)" if source.type == "command" else ""
    raise DiarizeError(
        f"{where}: recording {rec.id!r} has a {source.type!r} audio source{hint}; diarize "
        "reads files"
    )
