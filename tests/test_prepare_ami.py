"""diarize prepare ami on a fake tree in the real layouts: amicorpus/<meeting>/audio/ with
Mix-Headset and Array1-01 wavs (3 s of noise each), and an AMI-diarization-setup clone
(lists/, only_words/ and word_and_vocalsounds/ rttms, uems/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from diarize.cli import main
from diarize.data import load_diarization_set
from diarize.data.corpora.ami import partitions
from diarize.data.prepare import write_partitions
from diarize.utils import DiarizeError

SR = 16000
SPLITS = {"train": ["ES2002a", "ES2002b"], "dev": ["IS1008a"], "test": ["TS3003a", "TS3003b"]}


def wav(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(len(str(path))).standard_normal(int(seconds * SR))
    sf.write(str(path), (0.05 * noise).astype(np.float32), SR)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def ami(tmp_path: Path) -> tuple[Path, Path]:
    """(amicorpus, setup). TS3003b has no Array1-01 file; ES2002b's headset mix is 1 s long,
    shorter than its reference."""
    corpus, setup = tmp_path / "amicorpus", tmp_path / "AMI-diarization-setup"
    for split, meetings in SPLITS.items():
        write(setup / "lists" / f"{split}.meetings.txt", "".join(f"{m}\n" for m in meetings))
        write(setup / "lists" / f"{split}.speakers.txt", "FEE005\nMEE006\n")
        for m in meetings:
            words = (
                f"SPEAKER {m} 1 0.21 1.14 <NA> <NA> FEE005 <NA> <NA>\n"
                f"SPEAKER {m} 1 1.05 1.40 <NA> <NA> MEE006 <NA> <NA>\n"
            )
            sounds = words + f"SPEAKER {m} 1 2.60 0.30 <NA> <NA> MEE006 <NA> <NA>\n"
            write(setup / "only_words" / "rttms" / split / f"{m}.rttm", words)
            write(setup / "only_words" / "labs" / split / f"{m}.lab", "0.21 1.35 speech\n")
            write(setup / "word_and_vocalsounds" / "rttms" / split / f"{m}.rttm", sounds)
            write(setup / "uems" / split / f"{m}.uem", f"{m} 1 0.000 3.000000\n")
            wav(corpus / m / "audio" / f"{m}.Mix-Headset.wav", 1.0 if m == "ES2002b" else 3.0)
            if m != "TS3003b":
                wav(corpus / m / "audio" / f"{m}.Array1-01.wav", 3.0)
    return corpus, setup


def test_prepare_ami_end_to_end(ami, tmp_path: Path, capsys):
    corpus, setup = ami
    out = tmp_path / "data"
    assert main(["prepare", "ami", str(corpus), str(out), "--setup", str(setup)]) == 0
    parts = sorted(p.name for p in out.iterdir())
    assert parts == [f"{s}_{m}" for s in ("dev", "test", "train") for m in ("array1", "headset")]
    test = out / "test_headset"
    assert (test / "wav.scp").read_text() == "".join(
        f"{m} {corpus.resolve() / m / 'audio' / f'{m}.Mix-Headset.wav'}\n"
        for m in ("TS3003a", "TS3003b")
    )
    assert (test / "rttm").read_text().splitlines()[:2] == [
        "SPEAKER TS3003a 1 0.21 1.14 <NA> <NA> FEE005 <NA> <NA>",
        "SPEAKER TS3003a 1 1.05 1.4 <NA> <NA> MEE006 <NA> <NA>",
    ]
    assert (test / "uem").read_text() == "TS3003a 1 0 3\nTS3003b 1 0 3\n"
    assert (test / "reco2dur").read_text() == "TS3003a 3\nTS3003b 3\n"
    assert (test / "reco2num_spk").read_text() == "TS3003a 2\nTS3003b 2\n"
    assert (test / "skipped").read_text() == ""
    # the missing array file and the too-short headset mix are listed and skipped
    array = (out / "test_array1" / "skipped").read_text()
    assert array.startswith("TS3003b audio file missing (") and "TS3003b.Array1-01.wav" in array
    assert (out / "test_array1" / "wav.scp").read_text().split()[0] == "TS3003a"
    train = (out / "train_headset" / "skipped").read_text()
    assert train.startswith("ES2002b audio is 1.00 s, shorter than its reference")
    captured = capsys.readouterr()
    assert "test_array1: skipped TS3003b: audio file missing" in captured.err
    assert f"{test}: 2 recordings, 0.00 h, 2 speakers per recording (mean 2.0)" in captured.out
    data = load_diarization_set(test)
    assert [r.id for r in data] == ["TS3003a", "TS3003b"] and data["TS3003a"].duration == 3.0


def test_prepare_ami_is_deterministic_and_picks_the_reference(ami, tmp_path: Path):
    corpus, setup = ami
    args = ["prepare", "ami", str(corpus), "--setup", str(setup), "--mic", "headset"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*args[:3], str(one), *args[3:]]) == 0
    assert main([*args[:3], str(two), *args[3:]]) == 0
    assert main([*args[:3], str(two), *args[3:]]) == 0  # rerun over its own output
    for part in ("train_headset", "dev_headset", "test_headset"):
        for name in ("wav.scp", "rttm", "uem", "reco2dur", "reco2num_spk", "skipped"):
            assert (one / part / name).read_bytes() == (two / part / name).read_bytes()
    assert not (one / "test_array1").exists()
    sounds = tmp_path / "sounds"
    assert main([*args[:3], str(sounds), *args[3:], "--reference", "word_and_vocalsounds"]) == 0
    assert "2.6 0.3" in (sounds / "dev_headset" / "rttm").read_text()
    assert "2.6 0.3" not in (one / "dev_headset" / "rttm").read_text()


def test_prepare_ami_errors(ami, tmp_path: Path, capsys):
    corpus, setup = ami
    assert (
        main(["prepare", "ami", str(tmp_path / "nope"), str(tmp_path / "o"), "--setup", str(setup)])
        == 1
    )
    assert "no such directory (the amicorpus folder)" in capsys.readouterr().err
    assert main(["prepare", "ami", str(corpus), str(tmp_path / "o"), "--setup", str(corpus)]) == 1
    assert "not an AMI-diarization-setup clone" in capsys.readouterr().err
    for m in ("TS3003a", "TS3003b"):
        (corpus / m / "audio" / f"{m}.Mix-Headset.wav").unlink()
    parts = partitions(corpus, setup, ("headset",))
    with pytest.raises(DiarizeError, match="partition test_headset: none of its 2 recordings"):
        write_partitions(tmp_path / "o", parts)
