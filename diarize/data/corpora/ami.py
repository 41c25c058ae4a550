"""AMI meeting corpus, with the widely used AMI-diarization-setup (BUT, Landini et al. 2022;
pyannote's fork adds a database.yml).

SOURCE is the ``amicorpus/`` folder as the AMI download scripts write it::

    amicorpus/<meeting>/audio/<meeting>.Mix-Headset.wav     headset mix ("headset")
    amicorpus/<meeting>/audio/<meeting>.Array1-01.wav       first array, first mic ("array1", SDM)

and ``setup`` a clone of github.com/BUTSpeechFIT/AMI-diarization-setup (or pyannote's)::

    lists/{train,dev,test}.meetings.txt                     the Full-corpus-ASR partition
    only_words/rttms/{train,dev,test}/<meeting>.rttm        references (words only; the default)
    word_and_vocalsounds/rttms/{train,dev,test}/<meeting>.rttm   (words and vocal sounds)
    uems/{train,dev,test}/<meeting>.uem                     whole recordings

One partition per split and microphone: ``train_headset``, ``dev_headset``, ``test_headset``,
``train_array1``... A meeting whose audio for a microphone is missing is skipped there.
"""

from __future__ import annotations

from pathlib import Path

from pyannote.core import Annotation

from diarize.data.prepare import Candidate, Partition, read_list, read_reference
from diarize.rttm import read_uem
from diarize.utils import DiarizeError

MICROPHONES = {"headset": "Mix-Headset", "array1": "Array1-01"}
REFERENCES = ("only_words", "word_and_vocalsounds")
SPLITS = ("train", "dev", "test")


def partitions(
    source: Path,
    setup: Path,
    microphones: tuple[str, ...] = ("headset", "array1"),
    reference: str = "only_words",
) -> list[Partition]:
    """The partitions of AMI (see the module docstring) for the ``microphones`` given."""
    corpus = source / "amicorpus" if (source / "amicorpus").is_dir() else source
    if not corpus.is_dir():
        raise DiarizeError(f"{source}: no such directory (the amicorpus folder)")
    if not (setup / "lists" / "train.meetings.txt").is_file():
        raise DiarizeError(
            f"{setup}: not an AMI-diarization-setup clone (no lists/train.meetings.txt)"
        )
    out = []
    for split in SPLITS:
        meetings = read_list(setup / "lists" / f"{split}.meetings.txt")
        references = {m: _reference(setup, reference, split, m) for m in meetings}
        uems = {m: read_uem(setup / "uems" / split / f"{m}.uem").get(m) for m in meetings}
        for mic in microphones:
            cands = [
                _candidate(corpus, m, MICROPHONES[mic], references[m], uems[m]) for m in meetings
            ]
            out.append(Partition(f"{split}_{mic}", tuple(cands)))
    return out


def _reference(setup: Path, reference: str, split: str, meeting: str) -> Annotation:
    return read_reference(setup / reference / "rttms" / split / f"{meeting}.rttm", meeting)


def _candidate(corpus: Path, meeting: str, stream: str, reference, uem) -> Candidate:
    wav = corpus / meeting / "audio" / f"{meeting}.{stream}.wav"
    audio = wav if wav.is_file() else None
    return Candidate(meeting, audio, reference, uem, missing=str(wav))
