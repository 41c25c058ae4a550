"""VoxConverse (Chung et al. 2020), dev and test, as distributed: the annotations repository
(github.com/joonson/voxconverse: ``dev/<uri>.rttm``, ``test/<uri>.rttm``) and the two audio
archives, ``voxconverse_dev_wav.zip`` (unpacks to ``audio/<uri>.wav``) and
``voxconverse_test_wav.zip`` (unpacks to ``voxconverse_test_wav/<uri>.wav``).

SOURCE is the folder holding the annotations (``dev/``, ``test/``, or a
``voxconverse-master/`` with them); each split's audio is looked for in the folder given
(``audio_dirs``), else in SOURCE's ``audio/`` (dev) or ``voxconverse_test_wav/`` (test),
``wav/<split>/``, or beside the RTTMs (lhotse's layout). Partitions ``dev`` and ``test``,
scored over each recording's reference extent (no UEM ships with VoxConverse).
"""

from __future__ import annotations

from pathlib import Path

from diarize.data.prepare import Candidate, Partition, read_reference
from diarize.utils import DiarizeError

SPLITS = ("dev", "test")
ARCHIVE_DIRS = {"dev": "audio", "test": "voxconverse_test_wav"}  # what the zips unpack to


def partitions(source: Path, audio_dirs: dict[str, Path] | None = None) -> list[Partition]:
    """``dev`` and ``test`` (a split without its RTTM folder is left out)."""
    root = source / "voxconverse-master" if (source / "voxconverse-master").is_dir() else source
    splits = [s for s in SPLITS if (root / s).is_dir()]
    if not splits:
        raise DiarizeError(f"{source}: holds neither dev/ nor test/ (the VoxConverse RTTMs)")
    out = []
    for split in splits:
        audio = _audio_dir(source, root, split, (audio_dirs or {}).get(split))
        rttms = sorted((root / split).glob("*.rttm"))
        cands = tuple(_candidate(audio, p) for p in rttms)
        out.append(Partition(split, cands))
    return out


def _audio_dir(source: Path, root: Path, split: str, given: Path | None) -> Path:
    if given is not None:
        if not given.is_dir():
            raise DiarizeError(f"{given}: no such directory (the {split} audio)")
        return given
    for folder in (ARCHIVE_DIRS[split], f"wav/{split}"):
        for base in (source, root):
            if (base / folder).is_dir():
                return base / folder
    return root / split  # lhotse's layout: the wav files beside the RTTMs


def _candidate(audio: Path, rttm: Path) -> Candidate:
    uri = rttm.stem
    reference = read_reference(rttm, uri)
    wav = audio / f"{uri}.wav"
    return Candidate(uri, wav if wav.is_file() else None, reference, missing=str(wav))
