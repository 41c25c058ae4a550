"""CALLHOME: the telephone part of NIST SRE 2000 (LDC2001S97, "disk 8"), 500 conversations,
as the Kaldi ``callhome_diarization`` recipe and the EEND recipes prepare it.

SOURCE is the LDC release, searched for ``<recording>.sph`` as Kaldi's
``local/make_callhome.sh`` does (``find $src -name $reco.sph``). ``key`` is the
``sre2000-key`` folder that recipe downloads (openslr.org/10: ``fullref.rttm``, the
reference both recipes score against; ``reco2num``, the speakers per recording); by default
``SOURCE/sre2000-key``.

Audio: a ``.sph`` file libsndfile reads (PCM, mu-law) is listed as is; one it cannot
(shorten-compressed SPHERE) becomes a Kaldi piped entry ``sph2pipe -f wav -p <sph> |``,
exactly as make_callhome.sh writes it, its duration taken from the SPHERE header. With
``decode_to`` such files are decoded once into WAV files there instead (for training:
pipes cannot feed the training data loader, and EEND's recipe warns they make training
very slow).

Partitions: ``callhome`` (all), ``callhome1`` / ``callhome2`` (the two halves: the first
for adaptation, the second for test, as EEND uses them) and ``callhome1_spk2`` /
``callhome2_spk2`` (their 2-speaker recordings by ``reco2num``, EEND's 2-speaker sets). The
halves are those of ``split_lists`` when given, either the BUTSpeechFIT/CALLHOME_sublists
layout (``part1/part1.txt``, ``part2/part2.txt``; the lists published EEND and DiaPer
numbers use) or a Kaldi data folder (``callhome1/wav.scp``, ``callhome2/wav.scp``). Without
it the split is made as make_callhome.sh makes it: the sorted recording list shuffled by
Kaldi's ``utils/shuffle_list.pl`` (``srand(0)``; ``sort { rand() <=> rand() }``), run by this
machine's Perl, the first 250 to ``callhome1``. That procedure depends on Perl's sort and
random generator, so on another Perl it may not reproduce anybody's published halves: pass
``split_lists`` to compare with published numbers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pyannote.core import Annotation

from diarize.data.kaldi import Pipe, run_pipe
from diarize.data.prepare import Candidate, Partition, read_list
from diarize.rttm import read_rttm
from diarize.utils import DiarizeError

HALF = 250  # make_callhome.sh: head -n 250 of the shuffled list -> callhome1
SHUFFLE_PL = "srand(0); @lines = <STDIN>; @lines = sort { rand() <=> rand() } @lines; print @lines;"


def partitions(
    source: Path,
    key: Path | None = None,
    split_lists: Path | None = None,
    sph2pipe: str = "sph2pipe",
    decode_to: Path | None = None,
) -> list[Partition]:
    """The five CALLHOME partitions (see the module docstring)."""
    key = key or source / "sre2000-key"
    for name in ("fullref.rttm", "reco2num"):
        if not (key / name).is_file():
            raise DiarizeError(f"{key}: no {name} (give the sre2000-key folder with --key)")
    recordings = read_list(key / "reco2num")
    num_speakers = _reco2num(key / "reco2num")
    references = read_rttm(key / "fullref.rttm")
    sph = _find_sph(source)
    cands = {r: _candidate(r, sph.get(r), references, sph2pipe, decode_to) for r in recordings}
    present = sorted(r for r, c in cands.items() if c.audio is not None)
    part1, part2 = _listed_halves(split_lists) if split_lists else _kaldi_halves(present)
    halves = {
        "callhome1": sorted(set(part1) & set(recordings)),
        "callhome2": sorted(set(part2) & set(recordings)),
    }
    out = [Partition("callhome", tuple(cands[r] for r in recordings))]
    for name, ids in halves.items():
        out.append(Partition(name, tuple(cands[r] for r in ids)))
        two = [r for r in ids if num_speakers.get(r) == 2]
        out.append(Partition(f"{name}_spk2", tuple(cands[r] for r in two)))
    return out


def _reco2num(path: Path) -> dict[str, int]:
    out = {}
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdigit():
            raise DiarizeError(f"{path}:{lineno}: expected '<recording> <speakers>', got {line!r}")
        out[fields[0]] = int(fields[1])
    return out


def _find_sph(source: Path) -> dict[str, Path]:
    """``{stem: path}`` of every .sph file under ``source`` (make_callhome.sh's ``find``)."""
    if not source.is_dir():
        raise DiarizeError(f"{source}: no such directory (the LDC2001S97 release)")
    out: dict[str, Path] = {}
    for path in sorted(source.rglob("*.sph")):
        if path.stem in out:
            raise DiarizeError(f"{path}: recording {path.stem!r} is also {out[path.stem]}")
        out[path.stem] = path
    return out


def _candidate(
    uri: str, sph: Path | None, references: dict, sph2pipe: str, decode_to: Path | None
) -> Candidate:
    reference = references.get(uri, Annotation(uri=uri))
    if sph is None:
        return Candidate(uri, None, reference, missing=f"{uri}.sph under SOURCE")
    if _libsndfile_reads(sph):
        return Candidate(uri, sph, reference)
    header = read_sphere_header(sph)
    duration = int(header["sample_count"]) / int(header["sample_rate"])
    pipe = Pipe(f"{sph2pipe} -f wav -p {sph}")
    if decode_to is None:
        return Candidate(uri, pipe, reference, duration=duration)
    return Candidate(uri, _decode(pipe, decode_to / f"{uri}.wav"), reference)


def _libsndfile_reads(path: Path) -> bool:
    import soundfile as sf

    try:
        sf.info(str(path))
    except Exception:  # soundfile raises several types for formats it cannot decode
        return False
    return True


def _decode(pipe: Pipe, wav: Path) -> Path:
    """``pipe``'s output as the file ``wav`` (kept if already there from an earlier run)."""
    if wav.is_file() and wav.stat().st_size > 0:
        return wav
    wav.parent.mkdir(parents=True, exist_ok=True)
    tmp = wav.with_name(f".{wav.name}.{os.getpid()}.tmp")
    try:
        run_pipe(pipe.command, tmp, f"decoding {wav.stem}")
        os.replace(tmp, wav)
    finally:
        tmp.unlink(missing_ok=True)
    return wav


def read_sphere_header(path: Path) -> dict[str, str]:
    """The fields of a NIST SPHERE header (``NIST_1A``, its size, ``name -type value`` lines
    up to ``end_head``), values as text."""
    with open(path, "rb") as f:
        head = f.read(16)
        if not head.startswith(b"NIST_1A"):
            raise DiarizeError(f"{path}: not a NIST SPHERE file")
        try:
            size = int(head[8:16])
            text = (head + f.read(size - 16)).decode("ascii")
        except (ValueError, UnicodeDecodeError):
            raise DiarizeError(f"{path}: unreadable SPHERE header") from None
    fields = {}
    for line in text.splitlines()[2:]:
        if line.strip() == "end_head":
            return fields
        parts = line.split(None, 2)
        if len(parts) == 3:
            fields[parts[0]] = parts[2]
    raise DiarizeError(f"{path}: SPHERE header without end_head")


def _listed_halves(lists: Path) -> tuple[list[str], list[str]]:
    """The two halves as CALLHOME_sublists (part1/part1.txt, part2/part2.txt) or a Kaldi
    data folder (callhome1/wav.scp, callhome2/wav.scp) lists them."""
    for one, two in (
        ("part1/part1.txt", "part2/part2.txt"),
        ("callhome1/wav.scp", "callhome2/wav.scp"),
    ):
        if (lists / one).is_file():
            return read_list(lists / one), read_list(lists / two)
    raise DiarizeError(
        f"{lists}: holds neither part1/part1.txt (CALLHOME_sublists) nor callhome1/wav.scp"
    )


def _kaldi_halves(present: list[str]) -> tuple[list[str], list[str]]:
    """make_callhome.sh's split of the recordings found: the first HALF of the sorted list
    shuffled by Perl with shuffle_list.pl's own statements, and the rest."""
    perl = shutil.which("perl")
    if perl is None:
        raise DiarizeError(
            "splitting CALLHOME as Kaldi does runs Perl (utils/shuffle_list.pl), and there is "
            "no perl here: install it, or pass --split-lists (CALLHOME_sublists)"
        )
    text = "".join(f"{r}\n" for r in present)
    proc = subprocess.run([perl, "-e", SHUFFLE_PL], input=text, capture_output=True, text=True)
    if proc.returncode != 0:
        raise DiarizeError(f"perl shuffle failed: {proc.stderr.strip()[:200]}")
    shuffled = proc.stdout.split()
    return shuffled[:HALF], shuffled[HALF:]
