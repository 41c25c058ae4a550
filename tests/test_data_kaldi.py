"""Kaldi-style directories and plain audio + RTTM folders: loading and validation."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from diarize.data import load_diarization_set, load_source_corpus
from diarize.utils import DiarizeError

SR = 8000


def _wav(path: Path, seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(seconds * SR), dtype=np.float32), SR)
    return path


def _write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _raises(path: Path, lineno: int | None, text: str):
    where = f"{path}:{lineno}: " if lineno else f"{path}: "
    return pytest.raises(DiarizeError, match=re.escape(where) + ".*" + re.escape(text))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """r1 (2 s, relative path) and r2 (1 s, absolute path); three utterances, two speakers."""
    root = tmp_path / "src"
    _wav(root / "audio" / "r1.wav", 2.0)
    r2 = _wav(tmp_path / "elsewhere" / "r2.wav", 1.0)
    _write(root / "wav.scp", "r1 audio/r1.wav", f"r2 {r2}")
    _write(root / "segments", "u1 r1 0.0 0.8", "u2 r1 1.0 2.005", "u3 r2 0.1 0.9")
    _write(root / "utt2spk", "u1 alice", "u2 bob", "u3 alice")
    return root


def test_source_corpus(corpus: Path):
    src = load_source_corpus(corpus)
    assert [u.id for u in src.utterances] == ["u1", "u2", "u3"]
    u2 = src.utterances[1]
    assert (u2.speaker, u2.start, u2.end) == ("bob", 1.0, 2.005)  # within the 0.01 s tolerance
    assert u2.path == str(corpus / "audio" / "r1.wav")
    assert {k: [u.id for u in v] for k, v in src.speakers().items()} == {
        "alice": ["u1", "u3"],
        "bob": ["u2"],
    }


def test_source_corpus_without_segments(corpus: Path):
    (corpus / "segments").unlink()
    _write(corpus / "utt2spk", "r1 alice", "r2 bob")
    src = load_source_corpus(corpus)
    assert [(u.id, u.start, u.end, u.speaker) for u in src.utterances] == [
        ("r1", 0.0, 2.0, "alice"),
        ("r2", 0.0, 1.0, "bob"),
    ]


def test_spk2utt_consistent_is_accepted(corpus: Path):
    _write(corpus / "spk2utt", "alice u1 u3", "bob u2")
    assert len(load_source_corpus(corpus).utterances) == 3


@pytest.mark.parametrize(
    "file, lines, where, lineno, text",
    [
        ("wav.scp", ["r1 audio/r1.wav", "r2 sox x.wav -t wav - |"], "wav.scp", 2, "piped command"),
        ("wav.scp", ["r1 audio/missing.wav"], "wav.scp", 1, "does not exist"),
        ("wav.scp", ["r1 audio/r1.wav", "r1 audio/r1.wav"], "wav.scp", 2, "duplicate id 'r1'"),
        ("wav.scp", ["r1"], "wav.scp", 1, "expected 2 fields"),
        ("segments", ["u1 r1 0.0 0.8", "u2 r9 0.0 0.5"], "segments", 2, "unknown recording 'r9'"),
        ("segments", ["u1 r1 0.5 2.02"], "segments", 1, "past the end of recording 'r1'"),
        ("segments", ["u1 r1 0.5 0.5"], "segments", 1, "start < end"),
        ("segments", ["u1 r1 0.0 abc"], "segments", 1, "expected a number"),
        ("segments", ["u1 r1 0.0 0.5", "u1 r1 0.6 0.9"], "segments", 2, "duplicate id 'u1'"),
        # a missing speaker is reported at the segments line defining the utterance
        ("utt2spk", ["u1 alice", "u3 alice"], "segments", 2, "utterance 'u2' has no speaker"),
        ("utt2spk", ["u1 a", "u2 b", "u3 c", "u4 d"], "utt2spk", 4, "unknown utterance 'u4'"),
        ("utt2spk", ["u1 alice", "u2", "u3 alice"], "utt2spk", 2, "expected 2 fields"),
        ("spk2utt", ["alice u1 u3", "bob"], "spk2utt", 2, "speaker 'bob' has no utterance"),
        ("spk2utt", ["alice u1 u2 u3"], "spk2utt", 1, "'u2' of speaker 'alice' is 'bob'"),
        ("reco2dur", ["r9 3.0"], "reco2dur", 1, "unknown recording 'r9'"),
        # segments are checked against the reco2dur duration, not the header's
        ("reco2dur", ["r1 1.5"], "segments", 2, "past the end of recording 'r1' (1.500 s)"),
    ],
)
def test_source_corpus_errors(corpus: Path, file, lines, where, lineno, text):
    _write(corpus / file, *lines)
    with _raises(corpus / where, lineno, text):
        load_source_corpus(corpus)


def test_wav_scp_path_with_spaces(corpus: Path):
    _wav(corpus / "my audio" / "r 1.wav", 2.0)
    _write(corpus / "wav.scp", "r1 my audio/r 1.wav", "r2 audio/r1.wav")
    assert load_source_corpus(corpus).utterances[0].path == str(corpus / "my audio" / "r 1.wav")


def test_unreadable_audio_names_wav_scp_line(corpus: Path):
    (corpus / "audio" / "r1.wav").write_bytes(b"not audio at all")
    with _raises(corpus / "wav.scp", 1, "recording 'r1'"):
        load_source_corpus(corpus)


@pytest.fixture
def kaldi_set(tmp_path: Path) -> Path:
    root = tmp_path / "dev"
    _wav(root / "wav" / "a.wav", 3.0)
    _wav(root / "wav" / "b.wav", 2.0)
    _wav(root / "wav" / "c.wav", 1.0)
    _write(root / "wav.scp", "a wav/a.wav", "b wav/b.wav", "c wav/c.wav")
    _write(
        root / "rttm",
        "SPEAKER a 1 0.00 1.50 <NA> <NA> s1 <NA> <NA>",
        "SPEAKER a 1 1.00 2.00 <NA> <NA> s2 <NA> <NA>",
        "SPEAKER b 1 0.50 1.00 <NA> <NA> s1 <NA> <NA>",
    )
    return root


def test_kaldi_diarization_set(kaldi_set: Path):
    _write(kaldi_set / "uem", "a 1 0.5 2.5")
    data = load_diarization_set(kaldi_set)
    assert [r.id for r in data] == ["a", "b", "c"]
    a = data["a"]
    assert a.duration == 3.0 and a.path == str(kaldi_set / "wav" / "a.wav")
    assert sorted(a.annotation.labels()) == ["s1", "s2"]
    assert [(s.start, s.end) for s in a.uem] == [(0.5, 2.5)]
    assert data["b"].uem is None
    assert len(data["c"].annotation) == 0  # in wav.scp, not in rttm: silence


def test_kaldi_set_reco2dur_replaces_header(kaldi_set: Path):
    _write(kaldi_set / "reco2dur", "a 3.5")
    data = load_diarization_set(kaldi_set)
    assert (data["a"].duration, data["b"].duration) == (3.5, 2.0)


@pytest.mark.parametrize(
    "file, lines, lineno, text",
    [
        (
            "rttm",
            ["SPEAKER a 1 0 1 <NA> <NA> s1 <NA> <NA>", "SPEAKER z 1 0 1 <NA> <NA> s1 <NA> <NA>"],
            2,
            "unknown recording 'z'",
        ),
        (
            "rttm",
            ["SPEAKER b 1 1.5 0.6 <NA> <NA> s1 <NA> <NA>"],
            1,
            "past the end of recording 'b'",
        ),
        ("uem", ["a 1 0 3", "q 1 0 1"], 2, "unknown recording 'q'"),
        ("uem", ["c 1 0 1.2"], 1, "past the end of recording 'c'"),
        ("reco2dur", ["a 3.0", "a 3.0"], 2, "duplicate id 'a'"),
        ("reco2dur", ["a 0"], 1, "must be positive"),
    ],
)
def test_kaldi_set_errors(kaldi_set: Path, file, lines, lineno, text):
    _write(kaldi_set / file, *lines)
    with _raises(kaldi_set / file, lineno, text):
        load_diarization_set(kaldi_set)


def test_kaldi_set_without_rttm(kaldi_set: Path):
    (kaldi_set / "rttm").unlink()
    with _raises(kaldi_set, None, "no rttm file"):
        load_diarization_set(kaldi_set)


def test_folder_with_rttm_beside_audio(tmp_path: Path):
    _wav(tmp_path / "x.wav", 2.0)
    _wav(tmp_path / "y.flac", 1.0)
    _write(tmp_path / "x.rttm", "SPEAKER x 1 0.0 1.0 <NA> <NA> A <NA> <NA>")
    _write(tmp_path / "y.rttm")  # labelled, silent
    data = load_diarization_set(tmp_path)
    assert [(r.id, r.duration, len(r.annotation)) for r in data] == [("x", 2.0, 1), ("y", 1.0, 0)]
    assert data["y"].path == str(tmp_path / "y.flac")


def test_folder_with_one_rttm_and_uem(tmp_path: Path):
    _wav(tmp_path / "x.wav", 2.0)
    _wav(tmp_path / "y.wav", 1.0)
    _write(
        tmp_path / "all.rttm",
        "SPEAKER x 1 0.0 1.0 <NA> <NA> A <NA> <NA>",
        "SPEAKER y 1 0.2 0.5 <NA> <NA> B <NA> <NA>",
    )
    _write(tmp_path / "all.uem", "x 1 0.0 2.0")
    data = load_diarization_set(tmp_path)
    assert [r.id for r in data] == ["x", "y"]
    assert data["y"].annotation.labels() == ["B"]
    assert data["x"].uem is not None and data["y"].uem is None


def test_folder_errors(tmp_path: Path):
    _wav(tmp_path / "x.wav", 2.0)
    _wav(tmp_path / "y.wav", 1.0)
    rttm = _write(tmp_path / "all.rttm", "SPEAKER x 1 0.0 1.0 <NA> <NA> A <NA> <NA>")
    with _raises(tmp_path / "y.wav", None, "no RTTM turn for recording 'y'"):
        load_diarization_set(tmp_path)
    _write(rttm, "SPEAKER y 1 0 1 <NA> <NA> A <NA> <NA>", "SPEAKER w 1 0 1 <NA> <NA> A <NA> <NA>")
    with _raises(rttm, 2, "unknown recording 'w'"):
        load_diarization_set(tmp_path)
    _write(rttm, "SPEAKER y 1 0 1 <NA> <NA> A <NA> <NA>")
    _write(tmp_path / "x.rttm", "SPEAKER y 1 0 1 <NA> <NA> A <NA> <NA>")
    with _raises(tmp_path / "x.rttm", None, "'y' already appears in"):
        load_diarization_set(tmp_path)


def test_folder_duplicate_stem_and_empty(tmp_path: Path):
    with _raises(tmp_path, None, "neither wav.scp nor any audio file"):
        load_diarization_set(tmp_path)
    _wav(tmp_path / "x.wav", 1.0)
    _wav(tmp_path / "x.flac", 1.0)
    with _raises(tmp_path / "x.wav", None, "already used by"):
        load_diarization_set(tmp_path)


def test_not_a_directory(tmp_path: Path):
    with _raises(tmp_path / "nope", None, "no such directory"):
        load_diarization_set(tmp_path / "nope")


# --- piped wav.scp entries (Kaldi users' CALLHOME: "uri sph2pipe -f wav -p -c 1 x.sph |") ---


@pytest.fixture
def piped_set(tmp_path: Path) -> Path:
    """Recording p is produced by a stand-in for sph2pipe (a script that writes WAV to its
    stdout from a raw-PCM file); q is a plain file."""
    root = tmp_path / "piped"
    pcm = (np.sin(np.arange(int(1.5 * SR)) * 0.05) * 8000).astype("<i2")
    (tmp_path / "p.raw").parent.mkdir(parents=True, exist_ok=True)
    pcm.tofile(tmp_path / "p.raw")
    tool = tmp_path / "fake_sph2pipe"
    tool.write_text(
        f"#!{sys.executable}\n"
        "import sys, numpy as np, soundfile as sf\n"
        "args = sys.argv[1:]\n"
        "assert args[:3] == ['-f', 'wav', '-p'], args\n"
        "data = np.fromfile(args[-1], dtype='<i2')\n"
        f"sf.write(sys.stdout.buffer, data, {SR}, format='WAV', subtype='PCM_16')\n"
    )
    tool.chmod(0o755)
    _wav(root / "q.wav", 1.0)
    _write(root / "wav.scp", f"p {tool} -f wav -p -c 1 {tmp_path / 'p.raw'} |", "q q.wav")
    _write(
        root / "rttm",
        "SPEAKER p 1 0.10 1.30 <NA> <NA> A <NA> <NA>",
        "SPEAKER q 1 0.00 0.50 <NA> <NA> B <NA> <NA>",
    )
    return root


def test_piped_entries_need_allow_pipes(piped_set: Path):
    with _raises(piped_set / "wav.scp", 1, "pass --allow-pipes"):
        load_diarization_set(piped_set)


def test_piped_entry_runs_and_streams_like_a_file(piped_set: Path):
    from diarize.audio import load_audio
    from diarize.data.kaldi import recording_audio

    data = load_diarization_set(piped_set, allow_pipes=True)
    p, q = data["p"], data["q"]
    assert p.command is not None and p.command.endswith("p.raw") and p.path.endswith("|")
    assert p.duration == 1.5  # no reco2dur: the command ran once for the header
    assert q.command is None and q.duration == 1.0
    with recording_audio(p) as path:
        wave = load_audio(path, SR)
        assert path.is_file() and len(wave) == int(1.5 * SR)
    assert not path.exists()  # the temporary file is gone
    expected = np.fromfile(piped_set.parent / "p.raw", dtype="<i2") / 32768.0
    np.testing.assert_allclose(wave, expected, atol=1e-6)
    with recording_audio(q) as path:
        assert path == Path(q.path)


def test_piped_entry_with_reco2dur_does_not_run_and_failures_are_one_line(piped_set: Path):
    from diarize.data.kaldi import recording_audio

    (piped_set.parent / "p.raw").unlink()  # the command now fails
    _write(piped_set / "reco2dur", "p 1.5")
    data = load_diarization_set(piped_set, allow_pipes=True)  # reco2dur: nothing run
    with pytest.raises(DiarizeError, match=r"recording 'p': command .* failed \(exit status"):
        with recording_audio(data["p"]):
            pass
    (piped_set / "reco2dur").unlink()
    with _raises(piped_set / "wav.scp", 1, "recording 'p': piped entry: command"):
        load_diarization_set(piped_set, allow_pipes=True)
