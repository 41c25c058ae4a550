"""The benchmark recipes (recipes/{ami,callhome,dihard3,voxconverse}/run.sh, with their
shared stages 2-8 in recipes/benchmark_stages.sh) and the two tools they call: shell syntax,
numbered stages as documented, tools/adapt_from.py on a tiny checkpoint, and the VoxConverse
recipe's prepare and scoring stages end to end on a fake tree with a perfect system (its
results table must say 0 % DER)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ["ami", "callhome", "dihard3", "voxconverse"]


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_syntax_and_stages(name: str):
    script = ROOT / "recipes" / name / "run.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert text.rstrip().endswith('/../benchmark_stages.sh"  # stages 2-8')
    stages = ROOT / "recipes" / "benchmark_stages.sh"  # sourced: stages 2-8
    assert subprocess.run(["bash", "-n", str(stages)]).returncode == 0
    shared = stages.read_text()
    documented = [int(n) for n in re.findall(r"^#   stage (\d+) ", text, re.M)]
    blocks = [int(n) for n in re.findall(r"^if step (\d+); then", text + shared, re.M)]
    assert documented == blocks == list(range(9))
    assert f"diarize prepare {name} " in text and "tools/results_table.py" in shared
    header = text.split("while [ $# -gt 0 ]")[0]  # every path a variable at the top
    for var in ("data", "exp", "bundled", "adapt_base", "wavlm", "conditions"):
        assert re.search(rf"^{var}=", header, re.M), var


def test_adapt_from_keeps_the_architecture_and_takes_the_train_section(tmp_path: Path):
    from diarize.checkpoint import build_model, save_checkpoint
    from diarize.config import ExperimentConfig, InferConfig, ModelConfig, load_config

    trained = ExperimentConfig(
        model=ModelConfig(d_model=16, n_layers=1, n_heads=2, ff_dim=32, max_speakers=3),
        infer=InferConfig(threshold=0.6),
    )
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "m.pt", build_model(trained), trained)
    out = tmp_path / "adapt.yaml"
    cmd = [sys.executable, str(ROOT / "tools" / "adapt_from.py"), str(tmp_path / "m.pt")]
    cmd += ["--base", str(ROOT / "configs" / "eend_eda_adapt.yaml"), "--config-out", str(out)]
    cmd += ["--speaker-out", str(tmp_path / "spk.pt"), "--set", "train.epochs=3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "carries no speaker encoder" in proc.stdout and not (tmp_path / "spk.pt").exists()
    config = load_config(out)
    base = load_config(ROOT / "configs" / "eend_eda_adapt.yaml")
    assert config.model == trained.model and config.features == trained.features
    assert config.infer.threshold == 0.6
    assert config.train.lr == base.train.lr and config.train.epochs == 3


@pytest.mark.skipif(shutil.which("diarize") is None, reason="needs the installed diarize command")
def test_voxconverse_recipe_prepare_and_score_stages(tmp_path: Path):
    from test_prepare_voxconverse import voxconverse

    source = voxconverse(tmp_path / "corpus", missing="")
    work = tmp_path / "work"  # the recipe runs from a repository root: tools/ and configs/
    work.mkdir()
    for name in ("tools", "configs"):
        (work / name).symlink_to(ROOT / name)
    script = ROOT / "recipes" / "voxconverse" / "run.sh"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = lambda *a: subprocess.run(  # noqa: E731
        ["bash", str(script), *a], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    proc = run("--voxconverse", str(source), "--stage", "0", "--stop-stage", "0")
    assert proc.returncode == 0, proc.stderr
    assert (work / "data" / "voxconverse" / "test" / "wav.scp").is_file()
    perfect = work / "exp" / "voxconverse" / "bundled" / "test"
    perfect.mkdir(parents=True)
    shutil.copy(work / "data" / "voxconverse" / "test" / "rttm", perfect / "all.rttm")
    proc = run("--stage", "8", "--stop-stage", "8")
    assert proc.returncode == 0, proc.stderr
    rows = (work / "exp" / "voxconverse" / "results.md").read_text().splitlines()
    assert rows[0].startswith("| system | set | condition |") and len(rows) == 4
    perfect_rows = {row.split(" | 0.00 | 0.00 |")[0] for row in rows[2:]}
    assert perfect_rows == {
        "| bundled | test | voxconverse | 0.25 s | scored",
        "| bundled | test | voxconverse-full | 0 s | scored",
    }
