"""``diarize evaluate`` on the inputs benchmark users hold: a Kaldi directory with piped
wav.scp entries (behind --allow-pipes), scored under a named condition, JER beside DER."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("diarize.models")

from diarize.checkpoint import build_model, save_checkpoint  # noqa: E402
from diarize.cli import main  # noqa: E402
from diarize.config import ExperimentConfig, ModelConfig, TrainConfig  # noqa: E402

SR = 8000


@pytest.fixture
def piped_set(tmp_path: Path) -> Path:
    """A tiny random checkpoint, and a set whose recording 'p' comes out of a stand-in for
    sph2pipe (raw 16-bit PCM -> WAV on stdout) while 'q' is a plain file."""
    config = ExperimentConfig(
        model=ModelConfig(d_model=16, n_layers=1, n_heads=2, ff_dim=32),
        train=TrainConfig(chunk_frames=100),
    )
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "tiny.pt", build_model(config), config)
    rng = np.random.default_rng(0)
    (3000 * rng.standard_normal(6 * SR)).astype("<i2").tofile(tmp_path / "p.raw")
    tool = tmp_path / "sph2pipe"
    tool.write_text(
        f"#!{sys.executable}\n"
        "import sys, numpy as np, soundfile as sf\n"
        "data = np.fromfile(sys.argv[-1], dtype='<i2')\n"
        f"sf.write(sys.stdout.buffer, data, {SR}, format='WAV', subtype='PCM_16')\n"
    )
    tool.chmod(0o755)
    root = tmp_path / "set"
    root.mkdir()
    sf.write(str(root / "q.wav"), (0.1 * rng.standard_normal(4 * SR)).astype(np.float32), SR)
    (root / "wav.scp").write_text(f"p {tool} -f wav -p -c 1 {tmp_path / 'p.raw'} |\nq q.wav\n")
    (root / "reco2dur").write_text("p 6.0\nq 4.0\n")
    (root / "rttm").write_text(
        "SPEAKER p 1 0.5 3.0 <NA> <NA> A <NA> <NA>\nSPEAKER p 1 3.0 2.5 <NA> <NA> B <NA> <NA>\n"
        "SPEAKER q 1 1.0 2.0 <NA> <NA> C <NA> <NA>\n"
    )
    return root


def test_evaluate_piped_set_under_a_condition(piped_set: Path, tmp_path: Path, capsys):
    model, out = tmp_path / "tiny.pt", tmp_path / "eval"
    args = ["evaluate", str(piped_set), "--model", str(model), "-o", str(out)]
    assert main(args) == 1  # without --allow-pipes: one line, no output
    assert "pass --allow-pipes" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--allow-pipes", "--condition", "callhome"]) == 0
    assert sorted(p.name for p in (out / "rttm").iterdir()) == ["p.rttm", "q.rttm"]
    report = json.loads((out / "der.json").read_text())
    assert (report["condition"], report["collar"], report["skip_overlap"]) == (
        "callhome",
        0.25,
        False,
    )
    assert set(report["files"]) == {"p", "q"}
    assert 0 <= report["total"]["jer"] <= 100 and "jer" in report["files"]["p"]
    # the reference extent is scored (no uem): 0.5-5.5 s of p, 1-3 s of q, less 0.25 s each
    # side of every boundary: p keeps A 0.75-2.75 and B 3.75-5.25, q keeps 1.25-2.75
    assert report["files"]["p"]["scored"] == pytest.approx(2.0 + 1.5)
    assert report["files"]["q"]["scored"] == pytest.approx(1.5)
    table = capsys.readouterr().out
    assert "JER%" in table and "condition callhome" in table


def test_evaluate_condition_excludes_collar(piped_set: Path, tmp_path: Path, capsys):
    args = ["evaluate", str(piped_set), "--model", str(tmp_path / "tiny.pt")]
    assert main([*args, "--condition", "dihard3", "--skip-overlap"]) == 1
    assert "leave out --collar and --skip-overlap" in capsys.readouterr().err
