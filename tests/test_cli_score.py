"""``diarize score`` through a subprocess: table, JSON schema, directories, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "score"


def diarize_score(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "diarize", "score", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)


def rttm_line(uri: str, onset: float, duration: float, speaker: str) -> str:
    return f"SPEAKER {uri} 1 {onset} {duration} <NA> <NA> {speaker} <NA> <NA>\n"


def test_example_table_and_json_schema(tmp_path):
    out = tmp_path / "scores.json"
    proc = diarize_score(
        "--ref", EXAMPLES / "ref.rttm", "--hyp", EXAMPLES / "hyp.rttm", "--json", out
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:2] == ["recording", "DER%"]
    assert [line.split()[0] for line in lines[1:3]] == ["meeting1", "meeting2"]
    assert lines[-2].startswith("TOTAL") and "speaker count exact" in lines[-1]
    report = json.loads(out.read_text())
    keys = {"der", "jer", "missed", "false_alarm", "confusion", "scored"}
    keys |= {"ref_speakers", "hyp_speakers"}
    assert set(report) == {"condition", "collar", "skip_overlap", "files", "total"}
    assert report["collar"] == 0.25 and report["skip_overlap"] is False
    assert report["condition"] is None
    assert lines[0].split()[:3] == ["recording", "DER%", "JER%"]
    assert 0 <= report["total"]["jer"] <= 100
    assert set(report["files"]) == {"meeting1", "meeting2"}
    assert all(set(row) == keys for row in report["files"].values())
    assert set(report["total"]) == keys | {"speaker_count_accuracy"}
    assert isinstance(report["total"]["ref_speakers"], int)
    total = report["total"]
    errors = total["missed"] + total["false_alarm"] + total["confusion"]
    assert abs(total["der"] - 100 * errors / total["scored"]) < 1e-4
    assert f"{total['der']:.2f}" in lines[-2]


def test_directories_uem_and_unscored_hypothesis(tmp_path):
    ref, hyp = tmp_path / "ref", tmp_path / "hyp"
    ref.mkdir(), hyp.mkdir()
    (ref / "a.rttm").write_text(rttm_line("a", 0, 10, "A"))
    (ref / "b.rttm").write_text(rttm_line("b", 0, 4, "B") + rttm_line("b", 2, 4, "C"))
    (hyp / "a.rttm").write_text(rttm_line("a", 0, 6, "x") + rttm_line("a", 6, 6, "y"))
    (hyp / "c.rttm").write_text(rttm_line("c", 0, 1, "x"))  # no reference: warned
    (tmp_path / "all.uem").write_text("a 1 0 10\nb 1 0 6\n")
    out = tmp_path / "out" / "scores.json"
    proc = diarize_score(
        "--ref",
        ref,
        "--hyp",
        hyp,
        "--uem",
        tmp_path / "all.uem",
        "--collar",
        "0",
        "--skip-overlap",
        "--json",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    assert "'c' has no reference" in proc.stderr and "'b' has no hypothesis" in proc.stderr
    report = json.loads(out.read_text())
    assert report["skip_overlap"] is True and report["collar"] == 0
    # a: x -> A for 6 s, y confused 4 s (the UEM stops at 10 s, so no false alarm)
    assert report["files"]["a"] == {
        "der": 40.0,
        "jer": 40.0,  # A~x: union 10 s, 4 s missed (JER ignores --skip-overlap and collars)
        "missed": 0.0,
        "false_alarm": 0.0,
        "confusion": 4.0,
        "scored": 10.0,
        "ref_speakers": 1,
        "hyp_speakers": 2,
    }
    # b: no hypothesis, [2, 4] overlaps and is skipped -> 4 s scored, all missed
    assert report["files"]["b"]["missed"] == 4.0 and report["files"]["b"]["der"] == 100.0
    assert report["files"]["b"]["jer"] == 100.0
    assert report["total"]["speaker_count_accuracy"] == 0.0


def test_malformed_line_names_file_and_line_and_leaves_no_json(tmp_path):
    bad = tmp_path / "hyp.rttm"
    bad.write_text(rttm_line("a", 0, 1, "x") + "SPEAKER a 1 zero 1 <NA> <NA> x <NA> <NA>\n")
    out = tmp_path / "scores.json"
    proc = diarize_score("--ref", EXAMPLES / "ref.rttm", "--hyp", bad, "--json", out)
    assert proc.returncode != 0
    assert proc.stderr.startswith("diarize score: error: ") and f"{bad}:2:" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_missing_file_and_uem_without_a_reference_recording(tmp_path):
    proc = diarize_score("--ref", tmp_path / "nope.rttm", "--hyp", EXAMPLES / "hyp.rttm")
    assert proc.returncode == 1 and "nope.rttm" in proc.stderr
    uem = tmp_path / "part.uem"
    uem.write_text("meeting1 1 0 20\n")
    proc = diarize_score(
        "--ref", EXAMPLES / "ref.rttm", "--hyp", EXAMPLES / "hyp.rttm", "--uem", uem
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"diarize score: error: {uem}: no region for reference recording(s) meeting2"
    ]


def test_condition_sets_collar_overlap_and_reference_extent(tmp_path):
    ref, hyp = tmp_path / "ref.rttm", tmp_path / "hyp.rttm"
    # reference 10-20 s and 15-25 s (overlap 15-20); hypothesis one speaker from 0 s
    ref.write_text(rttm_line("r", 10, 10, "A") + rttm_line("r", 15, 10, "B"))
    hyp.write_text(rttm_line("r", 0, 25, "x"))
    scores = {}
    for name in ("callhome", "callhome-kaldi", "dihard3"):
        out = tmp_path / f"{name}.json"
        proc = diarize_score("--ref", ref, "--hyp", hyp, "--condition", name, "--json", out)
        assert proc.returncode == 0, proc.stderr
        scores[name] = json.loads(out.read_text())
        assert f"condition {name}" in proc.stdout.splitlines()[-1]
    callhome = scores["callhome"]
    assert (callhome["condition"], callhome["collar"], callhome["skip_overlap"]) == (
        "callhome",
        0.25,
        False,
    )
    # the reference extent (10-25 s) is scored, so 0-10 s of hypothesis is no false alarm;
    # collars remove 0.5 s around 10, 15, 20 and 25 s, leaving 3 x 4.5 s; x maps to A, so B
    # is missed where A speaks too and confused after 20 s
    total = callhome["total"]
    assert (total["false_alarm"], total["missed"], total["confusion"]) == (0.0, 4.5, 4.5)
    assert total["scored"] == 18.0
    # without a condition the union extent (0-25 s) counts the 10 s before as false alarm
    proc = diarize_score("--ref", ref, "--hyp", hyp, "--json", tmp_path / "plain.json")
    assert json.loads((tmp_path / "plain.json").read_text())["total"]["false_alarm"] == 9.75
    assert scores["callhome-kaldi"]["skip_overlap"] is True
    assert scores["callhome-kaldi"]["total"]["scored"] == 9.0  # 10.25-14.75, 20.25-24.75
    assert scores["dihard3"]["collar"] == 0.0 and scores["dihard3"]["total"]["scored"] == 20.0


def test_condition_excludes_collar_and_must_be_known(tmp_path):
    args = ("--ref", EXAMPLES / "ref.rttm", "--hyp", EXAMPLES / "hyp.rttm")
    proc = diarize_score(*args, "--condition", "dihard3", "--collar", "0.25")
    assert proc.returncode == 1 and "leave out --collar and --skip-overlap" in proc.stderr
    proc = diarize_score(*args, "--condition", "dihard4")
    assert proc.returncode == 1 and "unknown scoring condition 'dihard4'" in proc.stderr
    assert "dihard3" in proc.stderr
