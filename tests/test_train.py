import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from conftest import tiny_experiment, write_synthetic_set

from diarize.checkpoint import average_checkpoints, load_checkpoint, load_model
from diarize.config import load_config, to_dict
from diarize.train import epoch_checkpoints, train
from diarize.utils import DiarizeError


def tiny_config(tmp_path, data, out="exp", **train):
    return tiny_experiment(tmp_path, data, out, **train)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_synthetic_set(tmp_path_factory.mktemp("data"), num_recordings=3, seconds=12.0)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_training_writes_checkpoints_history_and_a_usable_model(tmp_path, data):
    out = train(tiny_config(tmp_path, data))
    assert [e for e, _ in epoch_checkpoints(out)] == [1, 2]
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"train_loss", "dev_loss", "dev_der", "dev_speaker_count_accuracy"} <= set(history[0])
    assert (out / "curve.png").stat().st_size > 0 and (out / "train.log").exists()
    model, config = load_model(out / "checkpoint_epoch2.pt")  # the checkpoint alone is enough
    assert config.model.d_model == 16
    probs, attractors = model.infer(torch.zeros(16000))[0]
    assert probs.shape[0] == 10 and attractors.shape[1] == 16


def test_resume_after_a_kill_gives_the_same_parameters(tmp_path, data):
    straight = train(tiny_config(tmp_path, data, out="straight", epochs=3, epoch_chunks=6))
    # "killed" after epoch 1, then resumed to 3 epochs
    train(tiny_config(tmp_path, data, out="resumed", epochs=1, epoch_chunks=6))
    resumed = train(
        tiny_config(tmp_path, data, out="resumed", epochs=3, epoch_chunks=6), resume=True
    )
    a = load_checkpoint(straight / "checkpoint_epoch3.pt")
    b = load_checkpoint(resumed / "checkpoint_epoch3.pt")
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["history"][-1]["train_loss"] == b["history"][-1]["train_loss"]


def test_existing_checkpoints_need_resume(tmp_path, data):
    train(tiny_config(tmp_path, data, epochs=1, dev_data=""))
    with pytest.raises(DiarizeError, match="--resume"):
        train(tiny_config(tmp_path, data, epochs=1, dev_data=""))


def test_adaptation_starts_from_init_and_checks_architecture(tmp_path, data):
    base = train(tiny_config(tmp_path, data, out="base", epochs=1, dev_data=""))
    init = base / "checkpoint_epoch1.pt"
    adapted = tiny_config(
        tmp_path, data, out="adapt", epochs=1, dev_data="", lr=0.0, scheduler="constant"
    )
    out = train(adapted, init=str(init))
    before, after = (
        load_checkpoint(init)["model"],
        load_checkpoint(out / "checkpoint_epoch1.pt")["model"],
    )
    assert all(torch.equal(before[k], after[k]) for k in before)  # lr 0: weights unchanged
    # dropout and the inference-time attractor settings do not shape the weights
    regularised = tiny_config(tmp_path, data, out="drop", epochs=1, dev_data="")
    regularised = replace(
        regularised,
        model=replace(regularised.model, dropout=0.4, attractor_threshold=0.7, max_speakers=3),
    )
    out = train(regularised, init=str(init))
    assert load_model(out / "checkpoint_epoch1.pt")[1].model.dropout == 0.4
    other = load_config(
        None,
        {
            "model": {"d_model": 8, "n_heads": 2},
            "train": {"train_data": str(data), "out_dir": str(tmp_path / "x")},
        },
    )
    with pytest.raises(DiarizeError, match="same architecture"):
        train(other, init=str(init))


def test_average_of_checkpoints(tmp_path, data):
    out = train(tiny_config(tmp_path, data, dev_data=""))
    paths = [p for _, p in epoch_checkpoints(out)]
    average_checkpoints(paths, tmp_path / "avg.pt")
    avg = load_checkpoint(tmp_path / "avg.pt")["model"]
    a, b = (load_checkpoint(p)["model"] for p in paths)
    key = "input_proj.weight"
    torch.testing.assert_close(avg[key], (a[key] + b[key]) / 2)
    load_model(tmp_path / "avg.pt")


def test_cli_train_bad_config_is_one_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model:\n  layers: 3\n")
    proc = subprocess.run(
        [sys.executable, "-m", "diarize", "train", "--config", str(cfg)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "unknown key(s) layers" in proc.stderr


@pytest.mark.slow
def test_ddp_with_two_gloo_processes(tmp_path, data):
    cfg = tmp_path / "ddp.yaml"
    import yaml

    from diarize.config import to_dict

    config = tiny_config(tmp_path, data, out="ddp", epochs=1, dev_data="")
    cfg.write_text(yaml.safe_dump(to_dict(config)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29517",
            "-m",
            "diarize",
            "train",
            "--config",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    ckpt = load_checkpoint(tmp_path / "ddp" / "checkpoint_epoch1.pt")
    assert ckpt["epoch"] == 1 and ckpt["step"] > 0


def test_cli_set_overrides_any_field():
    from diarize.config import parse_overrides

    assert parse_overrides(
        ["features.wavlm.checkpoint=/x/WavLM-Base+.pt", "train.lr=2e-5", "train.amp=false"]
    ) == {
        "features": {"wavlm": {"checkpoint": "/x/WavLM-Base+.pt"}},
        "train": {"lr": 2e-5, "amp": False},
    }
    with pytest.raises(DiarizeError, match=r"\[SECTION.\]KEY=VALUE"):
        parse_overrides(["train.lr"])


def test_cli_set_unknown_field_is_one_line(tmp_path):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text("model:\n  d_model: 16\n")
    proc = subprocess.run(
        [sys.executable, "-m", "diarize", "train", "--config", str(cfg), "--set", "model.layerz=2"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "unknown key(s) layerz" in proc.stderr


def test_one_dev_forward_gives_the_loss_and_the_decoding_of_two(tmp_path, data):
    from diarize.checkpoint import build_model
    from diarize.data.dataset import collate
    from diarize.train import compute_loss, dev_step, make_dataset

    config = tiny_config(tmp_path, data)
    torch.manual_seed(0)
    model = build_model(config).eval()
    dataset = make_dataset(str(data), config, model)
    batch = collate([dataset[i] for i in range(3)])
    loss, parts, probs = dev_step(model, batch, config, "cpu")
    with torch.no_grad():
        expected_loss, expected_parts = compute_loss(model, batch, config, "cpu")
    decoded = model.infer(batch["wave"], batch["lengths"])
    torch.testing.assert_close(loss, expected_loss)
    assert parts["pit"] == pytest.approx(expected_parts["pit"], rel=1e-6)
    for p, (q, _) in zip(probs, decoded, strict=True):
        torch.testing.assert_close(p, q)


def test_gradient_accumulation_groups_micro_batches():
    from diarize.train import groups

    assert list(groups(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(groups(range(2), 1)) == [[0], [1]]
    assert list(groups([], 4)) == []


def test_resume_applies_changed_settings_and_records_only_what_happened(tmp_path, data):
    """--resume with --set train.lr=...: the new rate is applied and logged, and what the
    checkpoint and config.yaml record is what the optimiser used (issue 15)."""
    train(tiny_config(tmp_path, data, epochs=1, epoch_chunks=4, dev_data="", scheduler="constant"))
    out = train(
        tiny_config(
            tmp_path, data, epochs=2, epoch_chunks=4, dev_data="", scheduler="constant", lr=0.5
        ),  # fmt: skip
        resume=True,
    )
    ckpt = load_checkpoint(out / "checkpoint_epoch2.pt")
    assert ckpt["config"]["train"]["lr"] == 0.5
    assert [g["lr"] for g in ckpt["optimizer"]["param_groups"]] == [0.5]
    assert ckpt["scheduler"]["base_lrs"] == [0.5]
    assert load_config(out / "config.yaml").train.lr == 0.5
    logged = (out / "train.log").read_text()
    assert "resume: train.lr: 0.003 -> 0.5 (applied)" in logged
    assert "resume: train.epochs: 1 -> 2 (applied)" in logged


def test_resume_with_another_model_size_is_one_line(tmp_path, data):
    train(tiny_config(tmp_path, data, epochs=1, epoch_chunks=4, dev_data=""))
    before = (tmp_path / "exp" / "config.yaml").read_text()
    bigger = tiny_experiment(tmp_path, data, "exp", epochs=2, epoch_chunks=4, dev_data="")
    bigger = load_config(None, {**to_dict(bigger), "model": {**to_dict(bigger)["model"], "d_model": 32}})  # fmt: skip
    with pytest.raises(DiarizeError, match=r"checkpoint_epoch1.pt: --resume continues the run of this checkpoint, but model.d_model changed \(16 -> 32\)"):  # fmt: skip
        train(bigger, resume=True)
    assert (tmp_path / "exp" / "config.yaml").read_text() == before  # nothing recorded
