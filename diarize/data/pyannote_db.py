"""A pyannote.database protocol subset as a diarization set.

``AMI.SpeakerDiarization.only_words`` with ``subset="test"`` reads what the user's
``database.yml`` says: each file's ``uri``, its ``annotation`` (the reference), its
``annotated`` regions (the UEM, when the protocol has them) and its audio, found by
pyannote's ``FileFinder`` from the ``Databases:`` section. The YAML is the one given
(``database``) or those pyannote.database finds itself (``PYANNOTE_DATABASE_CONFIG``,
``~/.pyannote/database.yml``, ``./database.yml``). pyannote.database comes with
pyannote.metrics; it is imported only here.
"""

from __future__ import annotations

import os
from pathlib import Path

from diarize.audio import audio_info
from diarize.data.kaldi import DiarizationSet, Recording, build_set
from diarize.utils import DiarizeError

SUBSETS = {"train": "train", "development": "development", "dev": "development", "test": "test"}


def load_protocol_set(
    name: str, subset: str | None, database: str | os.PathLike | None = None
) -> DiarizationSet:
    """The ``subset`` (train, development or dev, test) of protocol ``name``."""
    if subset not in SUBSETS:
        raise DiarizeError(
            f"{name}: a pyannote.database protocol needs --subset train, development (dev) "
            f"or test{'' if subset is None else f', got {subset!r}'}"
        )
    protocol = _protocol(name, database)
    try:
        files = list(getattr(protocol, SUBSETS[subset])())
    except Exception as e:  # pyannote.database raises several types for a bad protocol
        raise DiarizeError(f"{name}: cannot read its {subset} subset ({_reason(e)})") from None
    if not files:
        raise DiarizeError(f"{name}: its {subset} subset has no file")
    recordings = [_recording(name, file) for file in files]
    return build_set(name, recordings, f"{name} ({subset})")


def _protocol(name: str, database: str | os.PathLike | None):
    from pyannote.database import FileFinder, registry
    from pyannote.database.registry import Registry

    if database is not None:
        if not Path(database).is_file():
            raise DiarizeError(f"{database}: no such file (the pyannote.database YAML)")
        registry = Registry()
        try:
            registry.load_database(database)
        except Exception as e:
            raise DiarizeError(f"{database}: not a readable database.yml ({_reason(e)})") from None
    try:
        return registry.get_protocol(name, preprocessors={"audio": FileFinder(registry=registry)})
    except Exception as e:
        known = ", ".join(sorted(_known(registry))) or "none"
        raise DiarizeError(
            f"{name}: not a protocol of the loaded database.yml ({_reason(e)}); known: {known}"
        ) from None


def _known(registry) -> list[str]:
    names = []
    for name in registry.databases:
        db = registry.get_database(name)
        names += [f"{name}.{task}.{p}" for task in db.get_tasks() for p in db.get_protocols(task)]
    return names


def _recording(name: str, file) -> Recording:
    uri = str(file["uri"])
    try:
        path = Path(str(file["audio"]))
    except Exception as e:  # FileFinder: no Databases entry, or no file matches
        raise DiarizeError(f"{name}: no audio for {uri!r} ({_reason(e)})") from None
    duration = audio_info(path).duration
    uem = file["annotated"] if "annotated" in file else None
    annotation = file["annotation"] if "annotation" in file else None
    if annotation is None:
        raise DiarizeError(f"{name}: file {uri!r} has no reference annotation")
    annotation = annotation.copy()
    annotation.uri = uri
    return Recording(uri, str(path), annotation, uem, duration)


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]
