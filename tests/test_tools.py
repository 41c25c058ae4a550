"""Stand-alone tools: the LibriSpeech preparation on a tiny fake LibriSpeech tree."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from diarize.data.kaldi import load_source_corpus

TOOLS = Path(__file__).parents[1] / "tools"


def fake_librispeech(root: Path, subsets: dict[str, list[str]]) -> None:
    rng = np.random.default_rng(0)
    for subset, speakers in subsets.items():
        for spk in speakers:
            for chapter in ("100", "200"):
                d = root / subset / spk / chapter
                d.mkdir(parents=True)
                for utt in range(2):
                    burst = (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32)
                    sf.write(d / f"{spk}-{chapter}-{utt:04d}.flac", burst, 16000)
                (d / f"{spk}-{chapter}.trans.txt").write_text(f"{spk}-{chapter}-0000 HELLO\n")


def run_tool(*args):
    return subprocess.run(
        [sys.executable, str(TOOLS / "prepare_librispeech.py"), *map(str, args)],
        capture_output=True,
        text=True,
    )


def test_prepare_librispeech_then_simulate(tmp_path):
    fake_librispeech(
        tmp_path / "LS", {"train-clean-100": ["19", "26", "27"], "dev-clean": ["84", "174"]}
    )
    proc = run_tool(tmp_path / "LS", tmp_path / "corpus")
    assert proc.returncode == 0, proc.stderr
    corpus = load_source_corpus(tmp_path / "corpus")
    assert len(corpus.utterances) == 5 * 2 * 2
    assert sorted(corpus.speakers()) == ["174", "19", "26", "27", "84"]
    assert (tmp_path / "corpus" / "persons_train").read_text().split() == ["19", "26", "27"]
    assert (tmp_path / "corpus" / "persons_dev").read_text().split() == ["174", "84"]
    sim = subprocess.run(
        [
            sys.executable,
            "-m",
            "diarize",
            "simulate",
            str(tmp_path / "corpus"),
            str(tmp_path / "sim"),
            "--num-mixtures",
            "2",
            "--speakers",
            "2",
            "--min-utts",
            "2",
            "--max-utts",
            "3",
            "--speaker-list",
            str(tmp_path / "corpus" / "persons_train"),
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert sim.returncode == 0, sim.stderr
    assert len((tmp_path / "sim" / "wav.scp").read_text().splitlines()) == 2


def test_prepare_librispeech_rejects_shared_speakers_and_missing_subsets(tmp_path):
    fake_librispeech(tmp_path / "LS", {"train-clean-100": ["19"], "dev-clean": ["19"]})
    proc = run_tool(tmp_path / "LS", tmp_path / "corpus")
    assert proc.returncode != 0 and "speakers in both" in proc.stderr
    proc = run_tool(tmp_path / "LS", tmp_path / "corpus", "--dev", "test-other")
    assert proc.returncode != 0 and "test-other: no such subset" in proc.stderr


@pytest.mark.parametrize("script", ["offline_sim", "librispeech_sim", "real_voices"])
def test_recipes_are_valid_bash(script):
    path = Path(__file__).parents[1] / "recipes" / script / "run.sh"
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0


def test_export_model_strips_training_state_and_stores_infer_settings(tmp_path):
    import torch

    from diarize.checkpoint import build_model, load_checkpoint, load_model, save_checkpoint
    from diarize.config import load_config

    config = load_config(
        None, {"model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "ff_dim": 32}}
    )
    model = build_model(config)
    save_checkpoint(
        tmp_path / "train.pt",
        model,
        config,
        epoch=3,
        optimizer={"state": {}},
        rng={"torch": torch.get_rng_state()},
    )
    proc = subprocess.run(
        [
            sys.executable,
            str(TOOLS / "export_model.py"),
            str(tmp_path / "train.pt"),
            str(tmp_path / "ship.pt"),
            "--max-mb",
            "0",
            "--infer",
            "median=7",
            "threshold=0.6",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    ship = load_checkpoint(tmp_path / "ship.pt")
    assert "optimizer" not in ship and "rng" not in ship and ship["epoch"] == 3
    assert all(v.dtype == torch.float16 for v in ship["model"].values() if v.is_floating_point())
    loaded, cfg = load_model(tmp_path / "ship.pt")
    assert (cfg.infer.median, cfg.infer.threshold) == (7, 0.6)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value.half().float())


def test_grow_model_writes_a_deeper_checkpoint_that_trains_from_init(tmp_path):
    from diarize.checkpoint import build_model, load_model, save_checkpoint
    from diarize.config import load_config
    from diarize.train import _load_init

    config = load_config(
        None, {"model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "ff_dim": 32}}
    )
    save_checkpoint(tmp_path / "small.pt", build_model(config), config)
    tool = [sys.executable, str(TOOLS / "grow_model.py"), str(tmp_path / "small.pt")]
    proc = subprocess.run(tool + [str(tmp_path / "deep.pt"), "--layers", "3"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "1 -> 3 layers" in proc.stdout and "difference 0.00e+00" in proc.stdout
    deep, deep_config = load_model(tmp_path / "deep.pt")
    assert deep_config.model.n_layers == 3 and len(deep.encoder.layers) == 3
    # what `diarize train --init deep.pt --set model.n_layers=3` checks and loads
    _load_init(build_model(deep_config), str(tmp_path / "deep.pt"), deep_config)
    proc = subprocess.run(tool + [str(tmp_path / "x.pt"), "--layers", "0"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "fewer" in proc.stderr
    assert not (tmp_path / "x.pt").exists()
