"""Diarization sets users already hold in other toolkits' formats: a pyannote.database
protocol through a database.yml written here, and lhotse manifests written with lhotse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from diarize.data import load_diarization_set
from diarize.utils import DiarizeError

SR = 16000


def _wav(path: Path, seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name))
    sf.write(str(path), (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32), SR)
    return path


# --- pyannote.database ------------------------------------------------------------------


@pytest.fixture
def ami_protocol(tmp_path: Path) -> Path:
    """The AMI-diarization-setup's pyannote/database.yml, as that repository ships it, over
    two meetings in the amicorpus layout (2 s of audio each)."""
    pytest.importorskip("pyannote.database")
    setup = tmp_path / "AMI-diarization-setup"
    for split, meeting in (("train", "ES2002a"), ("test", "TS3003a")):
        _wav(setup / "pyannote" / "amicorpus" / meeting / "audio" / f"{meeting}.Mix-Headset.wav", 2)
        (setup / "lists").mkdir(parents=True, exist_ok=True)
        (setup / "lists" / f"{split}.meetings.txt").write_text(f"{meeting}\n")
        rttm = setup / "only_words" / "rttms" / split / f"{meeting}.rttm"
        rttm.parent.mkdir(parents=True, exist_ok=True)
        rttm.write_text(
            f"SPEAKER {meeting} 1 0.20 0.90 <NA> <NA> MEE001 <NA> <NA>\n"
            f"SPEAKER {meeting} 1 0.80 1.00 <NA> <NA> FEE002 <NA> <NA>\n"
        )
        uem = setup / "uems" / split / f"{meeting}.uem"
        uem.parent.mkdir(parents=True, exist_ok=True)
        uem.write_text(f"{meeting} 1 0.000 1.900\n")
    (setup / "lists" / "dev.meetings.txt").write_text("")
    protocols = "\n".join(
        f"        {subset}:\n"
        f"            uri: ../lists/{split}.meetings.txt\n"
        f"            annotation: ../only_words/rttms/{split}/{{uri}}.rttm\n"
        f"            annotated: ../uems/{split}/{{uri}}.uem"
        for subset, split in (("train", "train"), ("development", "dev"), ("test", "test"))
    )
    yml = setup / "pyannote" / "database.yml"
    yml.write_text(
        "Databases:\n"
        "  AMI: amicorpus/{uri}/audio/{uri}.Mix-Headset.wav\n"
        "Protocols:\n"
        "  AMI:\n"
        "    SpeakerDiarization:\n"
        "      only_words:\n" + protocols + "\n"
    )
    return yml


def test_protocol_subset_as_a_set(ami_protocol: Path):
    data = load_diarization_set(
        "AMI.SpeakerDiarization.only_words", subset="test", database=ami_protocol
    )
    assert [r.id for r in data] == ["TS3003a"]
    rec = data["TS3003a"]
    assert rec.path.endswith("amicorpus/TS3003a/audio/TS3003a.Mix-Headset.wav")
    assert rec.duration == 2.0 and rec.command is None
    assert sorted(rec.annotation.labels()) == ["FEE002", "MEE001"]
    assert [(s.start, s.end) for s in rec.uem] == [(0.0, 1.9)]
    train = load_diarization_set(
        "AMI.SpeakerDiarization.only_words", subset="train", database=ami_protocol
    )
    assert [r.id for r in train] == ["ES2002a"]


def test_protocol_errors_are_one_line(ami_protocol: Path):
    name = "AMI.SpeakerDiarization.only_words"
    with pytest.raises(DiarizeError, match="needs --subset train, development"):
        load_diarization_set(name, database=ami_protocol)
    with pytest.raises(DiarizeError, match="known: AMI.SpeakerDiarization.only_words"):
        load_diarization_set(
            "AMI.SpeakerDiarization.no_words", subset="test", database=ami_protocol
        )
    with pytest.raises(DiarizeError, match="its dev subset has no file"):
        load_diarization_set(name, subset="dev", database=ami_protocol)
    wav = ami_protocol.parent / "amicorpus" / "TS3003a" / "audio" / "TS3003a.Mix-Headset.wav"
    _wav(wav, 1.0)  # now shorter than its reference (turn ends at 1.8 s)
    with pytest.raises(DiarizeError, match="'TS3003a'.* past the end of its audio"):
        load_diarization_set(name, subset="test", database=ami_protocol)
    with pytest.raises(DiarizeError, match="--subset and --database are for pyannote"):
        load_diarization_set(ami_protocol.parent, subset="test")


# --- lhotse -----------------------------------------------------------------------------


@pytest.fixture
def lhotse_dir(tmp_path: Path) -> Path:
    """voxconverse_{recordings,supervisions}_test.jsonl.gz, as lhotse's recipe names them,
    written by lhotse itself over two 3-second recordings."""
    lhotse = pytest.importorskip("lhotse")
    out = tmp_path / "manifests"
    out.mkdir()
    recordings = [
        lhotse.Recording.from_file(_wav(tmp_path / "wav" / f"{uri}.wav", 3.0)) for uri in "ab"
    ]
    turns = [("a", 0.5, 1.0, "spk00"), ("a", 1.2, 1.5, "spk01"), ("b", 0.0, 2.9, "spk00")]
    supervisions = [
        lhotse.SupervisionSegment(f"{uri}-{i}", uri, start, dur, speaker=spk)
        for i, (uri, start, dur, spk) in enumerate(turns)
    ]
    lhotse.RecordingSet.from_recordings(recordings).to_file(
        out / "voxconverse_recordings_test.jsonl.gz"
    )
    lhotse.SupervisionSet.from_segments(supervisions).to_file(
        out / "voxconverse_supervisions_test.jsonl.gz"
    )
    return out


def test_lhotse_manifests_directory_or_file(lhotse_dir: Path):
    for data_arg in (lhotse_dir, lhotse_dir / "voxconverse_recordings_test.jsonl.gz"):
        data = load_diarization_set(data_arg)
        assert [r.id for r in data] == ["a", "b"]
        a = data["a"]
        assert a.duration == 3.0 and a.path.endswith("wav/a.wav") and a.uem is None
        assert sorted((s.start, s.end, label) for s, _, label in a.annotation.itertracks(True)) == [
            (0.5, 1.5, "spk00"),
            (1.2, 2.7, "spk01"),
        ]
        assert len(data["b"].annotation) == 1


def test_lhotse_errors(lhotse_dir: Path, tmp_path: Path):
    lhotse = pytest.importorskip("lhotse")
    extra = lhotse_dir / "voxconverse_recordings_dev.jsonl.gz"
    extra.write_bytes((lhotse_dir / "voxconverse_recordings_test.jsonl.gz").read_bytes())
    with pytest.raises(DiarizeError, match="several lhotse recordings manifests"):
        load_diarization_set(lhotse_dir)
    with pytest.raises(DiarizeError, match="no supervisions manifest beside it"):
        load_diarization_set(extra)
    recs = lhotse.RecordingSet.from_file(
        lhotse_dir / "voxconverse_recordings_test.jsonl.gz"
    ).to_eager()
    piped = lhotse.Recording(
        "a",
        [lhotse.audio.AudioSource("command", [0], f"cat {tmp_path / 'wav' / 'a.wav'}")],
        SR,
        3 * SR,
        3.0,
    )
    cmd = tmp_path / "cmd"
    cmd.mkdir()
    lhotse.RecordingSet.from_recordings([piped, recs["b"]]).to_file(cmd / "x_recordings.jsonl")
    sups = lhotse.SupervisionSet.from_file(lhotse_dir / "voxconverse_supervisions_test.jsonl.gz")
    sups.to_file(cmd / "x_supervisions.jsonl")
    with pytest.raises(DiarizeError, match="'command' audio source \\(pass --allow-pipes"):
        load_diarization_set(cmd)
    data = load_diarization_set(cmd, allow_pipes=True)
    assert data["a"].command == f"cat {tmp_path / 'wav' / 'a.wav'}"
