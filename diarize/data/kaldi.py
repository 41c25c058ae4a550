"""Kaldi-style data directories and plain folders of audio + RTTM.

Two kinds of directory are read:

* a **source corpus** of single-speaker speech (the raw material of simulated mixtures)::

      wav.scp    <rec-id> <path>                  paths relative to the directory
      segments   <utt-id> <rec-id> <start> <end>  optional; without it utt-id = rec-id
      utt2spk    <utt-id> <speaker>
      spk2utt    <speaker> <utt-id>...            optional; checked against utt2spk

* a **diarization set** (training, validation, scoring), in any of four forms:

  - Kaldi-style: ``wav.scp`` + ``rttm`` [+ ``uem``] [+ ``reco2dur``];
  - a plain folder of audio files with RTTM beside them (``x.wav`` + ``x.rttm``) or one RTTM
    file for all of them [+ ``*.uem``]; the recording id is the audio file's stem;
  - a ``pyannote.database`` protocol name (``AMI.SpeakerDiarization.only_words``) and a
    subset, read through the user's ``database.yml`` (:mod:`diarize.data.pyannote_db`);
  - lhotse manifests, a ``RecordingSet`` + ``SupervisionSet`` (:mod:`diarize.data.lhotse_manifests`).

Everything is validated on load; a problem is a :class:`DiarizeError` ``file:line: message``.
Decisions: a Kaldi recording with no RTTM turn is kept as silence (``wav.scp`` is the list of
recordings), but in a plain folder an audio file with no RTTM turn and no ``<stem>.rttm`` is an
error (a forgotten label file is likelier than a silent recording). ``reco2dur`` entries
replace reading the audio header; recordings missing from it are read as usual.

**Piped** ``wav.scp`` entries (``iaaa sph2pipe -f wav -p -c 1 iaaa.sph |``, as Kaldi users hold
CALLHOME) are read only with ``allow_pipes=True`` (the CLI's ``--allow-pipes``): running shell
commands written in a data file is the user's decision. The command runs in the current
directory, as Kaldi runs it; its standard output (any format soundfile reads, WAV for
sph2pipe) is streamed into a temporary file by :func:`recording_audio`, which is then read
block by block like any other file and deleted afterwards. Without ``reco2dur`` a piped
recording's duration costs one run of its command at load time.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pyannote.core import Annotation, Timeline

from diarize.audio import audio_info, is_audio_file
from diarize.rttm import read_rttm, read_uem
from diarize.utils import DiarizeError, text_lines

DURATION_TOLERANCE = 0.01  # seconds a segment may run past the end of its audio

# (line number, fields after the id) of one row of a Kaldi table, keyed by the id
_Table = dict[str, tuple[int, list[str]]]


@dataclass(frozen=True)
class Utterance:
    id: str
    path: str  # audio file holding the utterance
    start: float  # seconds into the file
    end: float  # seconds into the file
    speaker: str

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class SourceCorpus:
    root: str
    utterances: tuple[Utterance, ...]  # sorted by id

    def speakers(self) -> dict[str, list[Utterance]]:
        """``{speaker: utterances}``, speakers sorted by name."""
        out: dict[str, list[Utterance]] = {}
        for utt in sorted(self.utterances, key=lambda u: (u.speaker, u.id)):
            out.setdefault(utt.speaker, []).append(utt)
        return out


@dataclass(frozen=True)
class Pipe:
    """A piped ``wav.scp`` entry: a shell command writing the audio to its standard output."""

    command: str  # without the trailing "|"

    def __str__(self) -> str:
        return f"{self.command} |"


@dataclass(frozen=True, eq=False)
class Recording:
    id: str
    path: str  # audio file (for a piped entry: the entry as written, "cmd ... |")
    annotation: Annotation  # reference speaker turns (empty = silence)
    uem: Timeline | None  # scored regions; None = the whole recording
    duration: float  # seconds
    command: str | None = None  # shell command of a piped entry (see recording_audio)


@dataclass(frozen=True, eq=False)
class DiarizationSet:
    root: str
    recordings: tuple[Recording, ...]  # sorted by id

    def __len__(self) -> int:
        return len(self.recordings)

    def __iter__(self) -> Iterator[Recording]:
        return iter(self.recordings)

    def __getitem__(self, uri: str) -> Recording:
        for rec in self.recordings:
            if rec.id == uri:
                return rec
        raise KeyError(uri)


# --- public loaders ----------------------------------------------------------------------


def load_source_corpus(path: str | os.PathLike) -> SourceCorpus:
    """Read a single-speaker corpus directory (``wav.scp``, [``segments``], ``utt2spk``)."""
    root = _directory(path)
    scp = root / "wav.scp"
    wavs = read_wav_scp(scp)
    durations = _durations(scp, wavs, root / "reco2dur")
    if (root / "segments").exists():
        segments = _read_segments(root / "segments", durations)
        where = root / "segments"
    else:
        segments = {rec: (lineno, rec, 0.0, durations[rec]) for rec, (lineno, _) in wavs.items()}
        where = scp
    speakers = _read_utt2spk(root / "utt2spk", segments, where)
    if (root / "spk2utt").exists():
        _check_spk2utt(root / "spk2utt", speakers)
    utts = [
        Utterance(utt, str(wavs[rec][1]), start, end, speakers[utt])
        for utt, (_, rec, start, end) in sorted(segments.items())
    ]
    return SourceCorpus(str(root), tuple(utts))


def load_diarization_set(
    path: str | os.PathLike,
    *,
    allow_pipes: bool = False,
    subset: str | None = None,
    database: str | os.PathLike | None = None,
) -> DiarizationSet:
    """Read a diarization set: a Kaldi-style directory (``wav.scp`` + ``rttm`` [+ ``uem``,
    ``reco2dur``]), a plain folder of audio files and RTTM files, lhotse manifests (a
    directory holding one ``*recordings*.jsonl[.gz]`` and its ``*supervisions*`` twin, or
    the recordings manifest itself), or a pyannote.database protocol name with ``subset``
    (``train``, ``development``/``dev``, ``test``) and optionally the ``database`` YAML.
    ``allow_pipes`` lets piped ``wav.scp`` entries (or lhotse ``command`` sources) run."""
    if is_protocol_name(path):
        from diarize.data.pyannote_db import load_protocol_set

        return load_protocol_set(str(path), subset, database)
    if subset is not None or database is not None:
        raise DiarizeError(
            f"{path}: --subset and --database are for pyannote.database protocols "
            "(names such as AMI.SpeakerDiarization.only_words), not for directories"
        )
    from diarize.data.lhotse_manifests import find_manifests, load_lhotse_set

    manifests = find_manifests(Path(path))
    if manifests is not None:
        return load_lhotse_set(*manifests, allow_pipes=allow_pipes)
    root = _directory(path)
    if (root / "wav.scp").exists():
        return _load_kaldi_set(root, allow_pipes)
    return _load_folder_set(root)


def is_protocol_name(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a pyannote.database protocol (``Database.Task.Protocol``) rather
    than a file or directory."""
    text = str(path)
    return not Path(text).exists() and re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", text) is not None


def read_wav_scp(path: Path, allow_pipes: bool = False) -> dict[str, tuple[int, Path | Pipe]]:
    """``{rec-id: (line number, audio path or Pipe)}``; relative paths are resolved against
    the directory of ``wav.scp``. Missing files are errors, and so are piped commands unless
    ``allow_pipes``."""
    return {
        rec: (lineno, _wav_scp_audio(path, lineno, rec, where, allow_pipes))
        for rec, (lineno, (where,)) in _table(path, 2, rest=True).items()
    }


def scan_wav_scp(
    path: Path, allow_pipes: bool = False
) -> tuple[dict[str, tuple[int, Path | Pipe]], list[tuple[int, str]]]:
    """:func:`read_wav_scp` that skips bad lines instead of rejecting the file:
    ``(entries, errors)``, errors as ``(line number, "file:line: why")`` for each line
    skipped (wrong field count, duplicate id, missing audio, pipe). For ``diarize run``,
    which diarizes the rest; an unreadable file is still a :class:`DiarizeError`."""
    entries: dict[str, tuple[int, Path | Pipe]] = {}
    errors = []
    for lineno, line in text_lines(path):
        fields = line.split(None, 1)
        try:
            if len(fields) != 2:
                raise DiarizeError(
                    f"{path}:{lineno}: expected 2 fields, got {len(fields)}: {line!r}"
                )
            rec, where = fields
            if rec in entries:
                raise DiarizeError(
                    f"{path}:{lineno}: duplicate id {rec!r} (first on line {entries[rec][0]})"
                )
            entries[rec] = (lineno, _wav_scp_audio(path, lineno, rec, where, allow_pipes))
        except DiarizeError as e:
            errors.append((lineno, str(e)))
    return entries, errors


def _wav_scp_audio(path: Path, lineno: int, rec: str, where: str, allow_pipes: bool) -> Path | Pipe:
    """The audio of one wav.scp entry: a file (relative to the wav.scp) that must exist, or
    a Pipe when ``allow_pipes``."""
    if where.endswith("|"):
        if not allow_pipes:
            raise DiarizeError(
                f"{path}:{lineno}: recording {rec!r} is a piped command ({where!r}); "
                "pass --allow-pipes to run the commands of this file (diarize evaluate, "
                "diarize stats), or write the audio to a file and list its path"
            )
        return Pipe(where[:-1].strip())
    audio = Path(where) if Path(where).is_absolute() else path.parent / where
    if not audio.is_file():
        raise DiarizeError(
            f"{path}:{lineno}: audio file {audio} of recording {rec!r} does not exist"
        )
    return audio


# --- diarization sets --------------------------------------------------------------------


@contextlib.contextmanager
def recording_audio(rec: Recording) -> Iterator[Path]:
    """A readable audio file for ``rec``: its own file, or for a piped entry a temporary
    file its command's output is streamed into (never held in memory), deleted on exit."""
    if rec.command is None:
        yield Path(rec.path)
        return
    with tempfile.TemporaryDirectory(prefix="diarize-pipe-") as tmp:
        out = Path(tmp) / "audio.wav"
        run_pipe(rec.command, out, f"recording {rec.id!r}")
        yield out


def run_pipe(command: str, out: Path, what: str) -> None:
    """Run ``command`` in a shell with its standard output written to ``out``; a failure
    (non-zero exit, no output) is a :class:`DiarizeError` with the command's last message."""
    with open(out, "wb") as f:
        proc = subprocess.run(command, shell=True, stdout=f, stderr=subprocess.PIPE)
    if proc.returncode != 0 or out.stat().st_size == 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        reason = f"exit status {proc.returncode}" if proc.returncode else "no output"
        raise DiarizeError(
            f"{what}: command {command!r} failed ({reason}){': ' + lines[-1] if lines else ''}"
        )


def build_set(root: str, recordings: list[Recording], where: str) -> DiarizationSet:
    """A DiarizationSet of ``recordings`` (from lhotse or pyannote.database), sorted by id,
    after checking that ids are unique and no turn or UEM region runs past the audio."""
    seen: set[str] = set()
    for rec in recordings:
        if rec.id in seen:
            raise DiarizeError(f"{where}: recording id {rec.id!r} appears twice")
        seen.add(rec.id)
        ends = [s.end for s in rec.annotation.itersegments()]
        ends += [s.end for s in rec.uem] if rec.uem is not None else []
        if ends and max(ends) > rec.duration + DURATION_TOLERANCE:
            raise DiarizeError(
                f"{where}: recording {rec.id!r}: a turn or scored region ends at "
                f"{max(ends):.3f} s, past the end of its audio ({rec.duration:.3f} s)"
            )
    return DiarizationSet(root, tuple(sorted(recordings, key=lambda r: r.id)))


def _load_kaldi_set(root: Path, allow_pipes: bool = False) -> DiarizationSet:
    scp = root / "wav.scp"
    wavs = read_wav_scp(scp, allow_pipes)
    durations = _durations(scp, wavs, root / "reco2dur")
    if not (root / "rttm").exists():
        raise DiarizeError(f"{root}: has wav.scp but no rttm file")
    annotations = read_rttm(root / "rttm")  # syntax first, then recordings and ends
    _check_spans(root / "rttm", _rttm_ends(root / "rttm"), durations)
    uems: dict[str, Timeline] = {}
    if (root / "uem").exists():
        uems = read_uem(root / "uem")
        _check_spans(root / "uem", _uem_ends(root / "uem"), durations)
    paths = {rec: audio for rec, (_, audio) in wavs.items()}
    return _make_set(root, paths, annotations, uems, durations)


def _load_folder_set(root: Path) -> DiarizationSet:
    paths = _audio_files(root)
    durations = {rec: audio_info(audio).duration for rec, audio in paths.items()}
    rttms = sorted(root.glob("*.rttm"))
    if not rttms:
        raise DiarizeError(f"{root}: holds neither wav.scp nor any .rttm file")
    annotations = _read_many(rttms, read_rttm, _rttm_ends, durations)
    labelled = set(annotations) | {p.stem for p in rttms}
    for rec, audio in paths.items():
        if rec not in labelled:
            raise DiarizeError(
                f"{audio}: no RTTM turn for recording {rec!r} and no {rec}.rttm in {root}"
            )
    uems = _read_many(sorted(root.glob("*.uem")), read_uem, _uem_ends, durations)
    return _make_set(root, paths, annotations, uems, durations)


def _audio_files(root: Path) -> dict[str, Path]:
    """``{stem: path}`` of the audio files of a folder; two files with one stem are an error."""
    paths: dict[str, Path] = {}
    for audio in sorted(p for p in root.iterdir() if p.is_file() and is_audio_file(p)):
        if audio.stem in paths:
            raise DiarizeError(
                f"{audio}: recording id {audio.stem!r} is already used by {paths[audio.stem]}"
            )
        paths[audio.stem] = audio
    if not paths:
        raise DiarizeError(f"{root}: holds neither wav.scp nor any audio file")
    return paths


def _read_many(
    files: list[Path],
    reader: Callable[[Path], dict],
    ends: Callable[[Path], Iterator[tuple[int, str, float]]],
    durations: dict[str, float],
) -> dict:
    """Merge ``reader(file)`` over ``files`` after checking every line's recording and end;
    a recording in two files is an error."""
    merged: dict = {}
    origin: dict[str, Path] = {}
    for file in files:
        values = reader(file)  # syntax first, then recordings and ends
        _check_spans(file, ends(file), durations)
        for uri, value in values.items():
            if uri in merged:
                raise DiarizeError(f"{file}: recording {uri!r} already appears in {origin[uri]}")
            merged[uri], origin[uri] = value, file
    return merged


def _make_set(
    root: Path,
    paths: dict[str, Path | Pipe],
    annotations: dict[str, Annotation],
    uems: dict[str, Timeline],
    durations: dict[str, float],
) -> DiarizationSet:
    recordings = tuple(
        Recording(
            rec,
            str(paths[rec]),
            annotations.get(rec, Annotation(uri=rec)),
            uems.get(rec),
            durations[rec],
            paths[rec].command if isinstance(paths[rec], Pipe) else None,
        )
        for rec in sorted(paths)
    )
    return DiarizationSet(str(root), recordings)


def _rttm_ends(path: Path) -> Iterator[tuple[int, str, float]]:
    """(line number, uri, end seconds) of each SPEAKER line (read_rttm checked the syntax)."""
    for lineno, line in text_lines(path):
        fields = line.split()
        if fields[0].upper() == "SPEAKER" and len(fields) >= 5:
            yield (
                lineno,
                fields[1],
                _float(path, lineno, fields[3]) + _float(path, lineno, fields[4]),
            )


def _uem_ends(path: Path) -> Iterator[tuple[int, str, float]]:
    """(line number, uri, end seconds) of each UEM line."""
    for lineno, line in text_lines(path):
        fields = line.split()
        if not fields[0].startswith(";;") and len(fields) >= 4:
            yield lineno, fields[0], _float(path, lineno, fields[3])


def _check_spans(
    path: Path, ends: Iterator[tuple[int, str, float]], durations: dict[str, float]
) -> None:
    for lineno, uri, end in ends:
        if uri not in durations:
            raise DiarizeError(
                f"{path}:{lineno}: unknown recording {uri!r} (not in the audio list)"
            )
        _check_end(path, lineno, uri, end, durations[uri])


# --- source corpora ----------------------------------------------------------------------


def _read_segments(
    path: Path, durations: dict[str, float]
) -> dict[str, tuple[int, str, float, float]]:
    """``{utt-id: (line number, rec-id, start, end)}``, checked against the recordings."""
    out = {}
    for utt, (lineno, (rec, a, b)) in _table(path, 4).items():
        if rec not in durations:
            raise DiarizeError(f"{path}:{lineno}: unknown recording {rec!r} (not in wav.scp)")
        start, end = _float(path, lineno, a), _float(path, lineno, b)
        if start < 0 or end <= start:
            raise DiarizeError(
                f"{path}:{lineno}: segment {utt!r} needs 0 <= start < end, got {a} {b}"
            )
        _check_end(path, lineno, rec, end, durations[rec])
        out[utt] = (lineno, rec, start, end)
    return out


def _read_utt2spk(path: Path, segments: dict[str, tuple], where: Path) -> dict[str, str]:
    """``{utt-id: speaker}``; every utterance of ``segments`` (defined in ``where``) needs
    exactly one speaker and utt2spk may name no other utterance."""
    if not path.exists():
        raise DiarizeError(f"{path}: no such file (a source corpus needs utt2spk)")
    table = _table(path, 2)
    for utt, (lineno, _) in table.items():
        if utt not in segments:
            raise DiarizeError(f"{path}:{lineno}: unknown utterance {utt!r} (not in {where.name})")
    for utt, (lineno, *_) in segments.items():
        if utt not in table:
            raise DiarizeError(f"{where}:{lineno}: utterance {utt!r} has no speaker in {path}")
    return {utt: spk for utt, (_, (spk,)) in table.items()}


def _check_spk2utt(path: Path, speakers: dict[str, str]) -> None:
    """spk2utt must not list an empty speaker, nor disagree with utt2spk."""
    for lineno, line in text_lines(path):
        spk, *utts = line.split()
        if not utts:
            raise DiarizeError(f"{path}:{lineno}: speaker {spk!r} has no utterance")
        for utt in utts:
            if speakers.get(utt) != spk:
                raise DiarizeError(
                    f"{path}:{lineno}: utterance {utt!r} of speaker {spk!r} is "
                    f"{speakers.get(utt, 'missing')!r} in utt2spk"
                )


# --- shared helpers ----------------------------------------------------------------------


def _directory(path: str | os.PathLike) -> Path:
    root = Path(path)
    if not root.is_dir():
        raise DiarizeError(f"{root}: no such directory")
    return root


def _durations(
    scp: Path, wavs: dict[str, tuple[int, Path | Pipe]], reco2dur: Path
) -> dict[str, float]:
    """Seconds per recording: from ``reco2dur`` where it has the recording, else the header
    (of a piped entry's output: its command is run once)."""
    given = _read_reco2dur(reco2dur, wavs) if reco2dur.exists() else {}
    out = {}
    for rec, (lineno, audio) in wavs.items():
        if rec in given:
            out[rec] = given[rec]
            continue
        try:
            out[rec] = _audio_duration(audio)
        except DiarizeError as e:
            raise DiarizeError(f"{scp}:{lineno}: recording {rec!r}: {e}") from None
    return out


def _audio_duration(audio: Path | Pipe) -> float:
    if isinstance(audio, Path):
        return audio_info(audio).duration
    with tempfile.TemporaryDirectory(prefix="diarize-pipe-") as tmp:
        run_pipe(audio.command, Path(tmp) / "audio.wav", "piped entry")
        return audio_info(Path(tmp) / "audio.wav").duration


def _read_reco2dur(path: Path, wavs: dict) -> dict[str, float]:
    out = {}
    for rec, (lineno, (value,)) in _table(path, 2).items():
        if rec not in wavs:
            raise DiarizeError(f"{path}:{lineno}: unknown recording {rec!r} (not in wav.scp)")
        out[rec] = _float(path, lineno, value)
        if out[rec] <= 0:
            raise DiarizeError(
                f"{path}:{lineno}: duration of {rec!r} must be positive, got {value}"
            )
    return out


def _check_end(path: Path, lineno: int, rec: str, end: float, duration: float) -> None:
    if end > duration + DURATION_TOLERANCE:
        raise DiarizeError(
            f"{path}:{lineno}: ends at {end:.3f} s, past the end of recording {rec!r} ({duration:.3f} s)"
        )


def _float(path: Path, lineno: int, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DiarizeError(f"{path}:{lineno}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise DiarizeError(f"{path}:{lineno}: expected a finite number, got {text!r}")
    return value


def _table(path: Path, num_fields: int, rest: bool = False) -> _Table:
    """Rows keyed by their first field, exactly ``num_fields`` fields per line (with
    ``rest``, the last field is the rest of the line, spaces included). Duplicates raise."""
    rows: _Table = {}
    for lineno, line in text_lines(path):
        fields = line.split(None, num_fields - 1) if rest else line.split()
        if len(fields) != num_fields:
            raise DiarizeError(
                f"{path}:{lineno}: expected {num_fields} fields, got {len(fields)}: {line!r}"
            )
        if fields[0] in rows:
            raise DiarizeError(
                f"{path}:{lineno}: duplicate id {fields[0]!r} (first on line {rows[fields[0]][0]})"
            )
        rows[fields[0]] = (lineno, fields[1:])
    return rows
