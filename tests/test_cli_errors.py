"""Every mistake a user can make on the command line, as a table: the command, the files it
is given, the one line it must answer (``diarize <cmd>: error: ...``) and the exit status.
No case may print a traceback or leave a file behind."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def rttm(uri: str, onset: float, duration: float, speaker: str) -> str:
    return f"SPEAKER {uri} 1 {onset} {duration} <NA> <NA> {speaker} <NA> <NA>\n"


REF = rttm("r", 0, 4, "a") + rttm("r", 3, 3, "b")
HYP = rttm("r", 0, 5, "x") + rttm("r", 5, 1, "y")


def float_wav(path: Path, bad: float | None = None, at: int = 8000) -> None:
    """1 s of noise at 16 kHz in 32-bit float, with one ``bad`` sample at ``at``."""
    x = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    if bad is not None:
        x[at] = bad
    sf.write(path, x, 16000, subtype="FLOAT")


@dataclass(frozen=True)
class Case:
    argv: str  # the command after "diarize", run in a folder holding `files`
    message: str  # regex for the text after "diarize <cmd>: error: "
    files: dict = field(default_factory=dict)  # name -> text, or a function writing the path
    status: int = 1


CASES = {
    # 1. whitespace in a recording id: rejected, never read with its fields shifted
    "score: uri with a space": Case(
        "score --ref ref.rttm --hyp hyp.rttm",
        r"hyp.rttm:1: expected 9 or 10 fields .*got 11; a recording id or speaker name "
        r"cannot contain spaces",
        {"ref.rttm": rttm("my_meeting", 0, 4, "a"), "hyp.rttm": rttm("my meeting", 0, 4, "x")},
    ),
    "score: uri with a space, 9-field writer": Case(
        "score --ref ref.rttm --hyp hyp.rttm",
        r"ref.rttm:1: field 8 \(the speaker\) is <NA>",
        {"ref.rttm": "SPEAKER my meeting 1 0 4 <NA> <NA> a <NA>\n", "hyp.rttm": HYP},
    ),
    "score: uem uri with a space": Case(
        "score --ref ref.rttm --hyp hyp.rttm --uem a.uem",
        r"a.uem:1: expected 4 fields .*got 5",
        {"ref.rttm": REF, "hyp.rttm": HYP, "a.uem": "my meeting 1 0 10\n"},
    ),
    # 5. nothing to score; absurd times
    "score: empty reference": Case(
        "score --ref ref.rttm --hyp hyp.rttm",
        r"ref.rttm: no SPEAKER line: there is no reference to score against",
        {"ref.rttm": ";; nothing\n", "hyp.rttm": HYP},
    ),
    "score: reference all inside collars": Case(
        "score --ref ref.rttm --hyp hyp.rttm --collar 0.25",
        r"ref.rttm: no reference speaker time left to score .*collar of 0.25 s",
        {"ref.rttm": rttm("r", 1, 0.4, "a"), "hyp.rttm": HYP},
    ),
    "score: time 1e308": Case(
        "score --ref ref.rttm --hyp hyp.rttm --json s.json",
        r"ref.rttm:1: onset/duration must be at most 1e\+09 s, got 1e308 1e308",
        {"ref.rttm": rttm("r", "1e308", "1e308", "a"), "hyp.rttm": HYP},
    ),
    "score: time 1e20 (a 1 s turn would round to nothing)": Case(
        "score --ref ref.rttm --hyp hyp.rttm",
        r"ref.rttm:1: onset/duration must be at most 1e\+09 s",
        {"ref.rttm": rttm("r", "1e20", 1, "a"), "hyp.rttm": HYP},
    ),
    # 8. the output location is checked before the work
    "score: --json is a directory": Case(
        "score --ref ref.rttm --hyp hyp.rttm --json out.json",
        r"out.json: is a directory",
        {"ref.rttm": REF, "hyp.rttm": HYP, "out.json/keep": ""},
    ),
    "score: --json under a file": Case(
        "score --ref ref.rttm --hyp hyp.rttm --json ref.rttm/s.json",
        r"ref.rttm/s.json: cannot write there \(ref.rttm is not a directory\)",
        {"ref.rttm": REF, "hyp.rttm": HYP},
    ),
    # 2. non-finite samples: rejected with the position of the first one
    "run: NaN sample": Case(
        "run nan.wav -o out",
        r"nan.wav: sample 8000 \(at 0.500 s, channel 1\) is nan: non-finite samples",
        {"nan.wav": lambda p: float_wav(p, np.nan)},
    ),
    "run: inf sample": Case(
        "run inf.wav -o out",
        r"inf.wav: sample 100 \(at 0.006 s, channel 1\) is -inf",
        {"inf.wav": lambda p: float_wav(p, -np.inf, at=100)},
    ),
}


def make_files(root: Path, files: dict) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        else:
            path.write_text(content)


def diarize(root: Path, argv: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "diarize", *argv.split()]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=120)


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("name", list(CASES))
def test_error_is_one_line(tmp_path, name):
    case = CASES[name]
    make_files(tmp_path, case.files)
    before = listing(tmp_path)
    proc = diarize(tmp_path, case.argv)
    command = case.argv.split()[0]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == case.status, proc.stderr
    # `run` reports a failing recording as "diarize run: ..." and goes on; the others stop
    prefix = f"diarize {command}: " if command == "run" else f"diarize {command}: error: "
    lines = [line for line in proc.stderr.splitlines() if re.search(case.message, line)]
    assert len(lines) == 1 and lines[0].startswith(prefix), proc.stderr
    if command == "score":
        assert proc.stdout == ""  # no table printed before failing
    assert [p for p in listing(tmp_path) if p not in before and p != "out"] == []


def test_score_extreme_allowed_times_give_exact_strict_json(tmp_path):
    """Standard JSON only: no NaN or Infinity even for extreme (allowed) times."""
    make_files(
        tmp_path, {"ref.rttm": rttm("r", 0, "1e9", "a"), "hyp.rttm": rttm("r", "5e8", "5e8", "x")}
    )
    proc = diarize(tmp_path, "score --ref ref.rttm --hyp hyp.rttm --json s.json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(
        (tmp_path / "s.json").read_text(), parse_constant=lambda c: pytest.fail(f"JSON has {c}")
    )
    assert report["total"]["der"] == pytest.approx(50.0)
