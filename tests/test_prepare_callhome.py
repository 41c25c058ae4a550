"""diarize prepare callhome on a fake LDC2001S97 tree: .sph files with NIST SPHERE headers
written here (16-bit PCM, which libsndfile reads, and 'shorten'-coded ones it cannot, read
through a stand-in for sph2pipe), and the Kaldi recipe's sre2000-key (fullref.rttm,
reco2num, segments)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diarize.cli import main
from diarize.data import load_diarization_set
from diarize.data.corpora.callhome import HALF, _kaldi_halves, read_sphere_header
from diarize.data.kaldi import recording_audio

SR = 8000
SHORTEN = "ulaw,embedded-shorten-v2.00"
# uri: (seconds of audio, sample coding or None when the file is absent, speakers)
RECORDINGS = {
    "iaaa": (4.0, "pcm", 2),
    "iaab": (4.0, SHORTEN, 3),
    "iaac": (3.0, "pcm", 2),
    "iaad": (4.0, SHORTEN, 2),
    "iaae": (1.0, "pcm", 2),  # shorter than its reference
    "iaaf": (4.0, None, 2),  # no .sph anywhere
}


def sphere(path: Path, samples: np.ndarray, coding: str) -> None:
    """A NIST SPHERE file: the 1024-byte ASCII header, then the samples (for the 'shorten'
    coding, raw PCM here: only the stand-in sph2pipe reads them)."""
    fields = [
        "NIST_1A",
        "   1024",
        "database_id -s7 sre2000",
        f"sample_count -i {len(samples)}",
        f"sample_rate -i {SR}",
        "channel_count -i 1",
        "sample_n_bytes -i 2",
        "sample_byte_format -s2 01",
        f"sample_coding -s{len(coding)} {coding}",
        "end_head",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ("\n".join(fields) + "\n").encode("ascii").ljust(1024, b" ")
    path.write_bytes(header + samples.astype("<i2").tobytes())


def fake_sph2pipe(path: Path) -> Path:
    """``sph2pipe -f wav -p FILE``: WAV on stdout from the samples after the header."""
    path.write_text(
        f"#!{sys.executable}\n"
        "import sys, numpy as np, soundfile as sf\n"
        "assert sys.argv[1:4] == ['-f', 'wav', '-p'], sys.argv\n"
        "raw = open(sys.argv[-1], 'rb').read()[1024:]\n"
        f"sf.write(sys.stdout.buffer, np.frombuffer(raw, '<i2'), {SR}, format='WAV')\n"
    )
    path.chmod(0o755)
    return path


@pytest.fixture
def callhome(tmp_path: Path) -> Path:
    root = tmp_path / "LDC2001S97"
    rng = np.random.default_rng(0)
    rttm, reco2num, segments = [], [], []
    for i, (uri, (seconds, coding, speakers)) in enumerate(RECORDINGS.items()):
        if coding is not None:
            samples = (2000 * rng.standard_normal(int(seconds * SR))).astype(np.int16)
            sphere(root / "sid00sg1" / f"disk{i % 2}" / f"{uri}.sph", samples, coding)
        for k in range(speakers):
            spk = "ABCDEFG"[k]
            rttm.append(f"SPEAKER {uri} 0 {0.3 + k} 1.2 <NA> <NA> {spk} <NA> <NA>")
            segments.append(f"{uri}_{k:03d} {uri} {0.3 + k:.2f} {1.5 + k:.2f}")
        reco2num.append(f"{uri} {speakers}")
    key = root / "sre2000-key"
    key.mkdir(parents=True)
    (key / "fullref.rttm").write_text("\n".join(rttm) + "\n")
    (key / "reco2num").write_text("\n".join(reco2num) + "\n")
    (key / "segments").write_text("\n".join(segments) + "\n")
    lists = tmp_path / "CALLHOME_sublists"
    for part, ids in (("part1", ["iaaa", "iaab", "iaae"]), ("part2", ["iaac", "iaad", "iaaf"])):
        (lists / part).mkdir(parents=True)
        (lists / part / f"{part}.txt").write_text("\n".join(ids) + "\n")
    fake_sph2pipe(tmp_path / "sph2pipe")
    return root


def test_prepare_callhome_pipes_halves_and_two_speaker_subsets(callhome, tmp_path, capsys):
    out, tool = tmp_path / "data", tmp_path / "sph2pipe"
    args = ["prepare", "callhome", str(callhome), str(out), "--sph2pipe", str(tool)]
    assert main([*args, "--split-lists", str(tmp_path / "CALLHOME_sublists")]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "callhome",
        "callhome1",
        "callhome1_spk2",
        "callhome2",
        "callhome2_spk2",
    ]
    scp = dict(
        line.split(" ", 1) for line in (out / "callhome" / "wav.scp").read_text().splitlines()
    )
    assert sorted(scp) == ["iaaa", "iaab", "iaac", "iaad"]  # iaae too short, iaaf missing
    sph = {p.stem: p for p in callhome.rglob("*.sph")}
    assert scp["iaaa"] == str(sph["iaaa"].resolve())  # libsndfile reads PCM SPHERE itself
    assert scp["iaab"] == f"{tool} -f wav -p {sph['iaab']} |"  # as make_callhome.sh writes it
    assert read_sphere_header(sph["iaab"])["sample_coding"] == SHORTEN
    assert (out / "callhome" / "reco2dur").read_text().splitlines()[1] == "iaab 4"
    skipped = (out / "callhome" / "skipped").read_text().splitlines()
    assert skipped[0].startswith("iaae audio is 1.00 s, shorter than its reference")
    assert skipped[1] == "iaaf audio file missing (iaaf.sph under SOURCE)"
    ids = lambda part: (out / part / "reco2dur").read_text().split()[::2]  # noqa: E731
    assert (ids("callhome1"), ids("callhome2")) == (["iaaa", "iaab"], ["iaac", "iaad"])
    assert (ids("callhome1_spk2"), ids("callhome2_spk2")) == (["iaaa"], ["iaac", "iaad"])
    # the reference is fullref.rttm's; the UEM its extent (md-eval's region without -u)
    assert (out / "callhome1" / "uem").read_text() == "iaaa 1 0.3 2.5\niaab 1 0.3 3.5\n"
    assert (
        "SPEAKER iaab 1 2.3 1.2 <NA> <NA> C <NA> <NA>" in (out / "callhome1" / "rttm").read_text()
    )
    assert "callhome: skipped iaaf: audio file missing" in capsys.readouterr().err
    # piped entries load with --allow-pipes and stream through the stand-in command
    data = load_diarization_set(out / "callhome1", allow_pipes=True)
    with recording_audio(data["iaab"]) as wav:
        import soundfile as sf

        assert sf.info(str(wav)).frames == 4 * SR


def test_decode_to_writes_wav_files_for_training(callhome, tmp_path):
    out, wavs = tmp_path / "data", tmp_path / "wav"
    args = [
        "prepare",
        "callhome",
        str(callhome),
        str(out),
        "--sph2pipe",
        str(tmp_path / "sph2pipe"),
    ]
    assert (
        main(
            [*args, "--split-lists", str(tmp_path / "CALLHOME_sublists"), "--decode-to", str(wavs)]
        )
        == 0
    )
    assert sorted(p.name for p in wavs.iterdir()) == ["iaab.wav", "iaad.wav"]
    assert "|" not in (out / "callhome" / "wav.scp").read_text()
    data = load_diarization_set(out / "callhome1")  # no pipes left: loads without the option
    assert data["iaab"].path == str((wavs / "iaab.wav").resolve()) and data["iaab"].duration == 4.0


@pytest.mark.skipif(shutil.which("perl") is None, reason="the Kaldi split runs perl")
def test_kaldi_split_is_shuffle_list_pl_head_250(tmp_path):
    # Kaldi's utils/shuffle_list.pl with its default seed, as make_callhome.sh runs it
    script = tmp_path / "shuffle_list.pl"
    script.write_text(
        "srand(0);\n@lines = <>;\n@lines = sort { rand() <=> rand() } @lines;\nprint @lines;\n"
    )
    ids = [f"i{n:03d}" for n in range(500)]
    (tmp_path / "wav.scp").write_text("".join(f"{i} sph2pipe -f wav -p {i}.sph |\n" for i in ids))
    proc = subprocess.run(
        ["perl", str(script), str(tmp_path / "wav.scp")], capture_output=True, text=True
    )
    expected = [line.split()[0] for line in proc.stdout.splitlines()]
    part1, part2 = _kaldi_halves(ids)
    assert part1 == expected[:HALF] and part2 == expected[HALF:] and len(part1) == 250
    assert sorted(part1 + part2) == ids and part1 != ids[:HALF]
    assert _kaldi_halves(ids) == (part1, part2)  # deterministic


def test_without_lists_a_tiny_corpus_is_all_callhome1(callhome, tmp_path, capsys):
    if shutil.which("perl") is None:
        pytest.skip("the Kaldi split runs perl")
    out = tmp_path / "data"
    assert (
        main(
            [
                "prepare",
                "callhome",
                str(callhome),
                str(out),
                "--sph2pipe",
                str(tmp_path / "sph2pipe"),
            ]
        )
        == 0
    )
    assert (out / "callhome1" / "reco2dur").read_text().split()[::2] == [
        "iaaa",
        "iaab",
        "iaac",
        "iaad",
    ]
    assert not (out / "callhome2").exists()
    assert "callhome2: holds no recording: not written" in capsys.readouterr().err
