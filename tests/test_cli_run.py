"""``diarize run`` end to end with a tiny random-weights checkpoint: bad inputs, partial
failures, atomic outputs, --exclusive / --json / --plot."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("diarize.models")

from diarize.checkpoint import build_model, save_checkpoint  # noqa: E402
from diarize.cli import main  # noqa: E402
from diarize.config import ExperimentConfig, ModelConfig, TrainConfig  # noqa: E402
from diarize.rttm import read_rttm  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A tiny checkpoint (10 s windows) and a set of good and bad inputs."""
    root = tmp_path_factory.mktemp("run")
    config = ExperimentConfig(
        model=ModelConfig(d_model=16, n_layers=1, n_heads=2, ff_dim=32),
        train=TrainConfig(chunk_frames=100),
    )
    torch.manual_seed(0)
    save_checkpoint(root / "tiny.pt", build_model(config), config)
    torch.save({"weights": torch.zeros(3)}, root / "wrong.pt")
    rng = np.random.default_rng(0)
    noise = lambda n, *ch: (0.1 * rng.standard_normal((n, *ch))).astype(np.float32)  # noqa: E731
    sf.write(root / "a.wav", noise(16000 * 12), 16000)
    sf.write(root / "silent.wav", np.zeros(16000 * 4, dtype=np.float32), 16000)
    sf.write(root / "short.wav", noise(3200), 16000)  # 0.2 s
    sf.write(root / "stereo.flac", noise(44100 * 3, 2), 44100)
    sf.write(root / "low.wav", noise(8000 * 3), 8000)
    (root / "notes.wav").write_text("not audio at all")
    return root


def diarize(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "diarize", "run", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_mixed_inputs_failures_reported_and_skipped(work):
    out = work / "out"
    names = [
        "a.wav",
        "silent.wav",
        "short.wav",
        "stereo.flac",
        "low.wav",
        "notes.wav",
        "missing.wav",
    ]
    proc = diarize(
        *[str(work / n) for n in names], "-o", str(out), "--model", str(work / "tiny.pt"), "--json"
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("diarize run: ")]
    assert any("missing.wav: no such file" in line for line in errors)
    assert any("notes.wav: not a readable audio file" in line for line in errors)
    assert "2 of 7 input(s) failed" in proc.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(
        f"{u}.{ext}" for u in ("a", "silent", "short", "stereo", "low") for ext in ("rttm", "json")
    )
    assert (out / "silent.rttm").read_text() == ""  # digital silence: nobody speaks
    assert set(read_rttm(out / "a.rttm")) <= {"a"}
    for uri, duration in (("stereo", 3.0), ("low", 3.0), ("short", 0.2), ("a", 12.0)):
        summary = json.loads((out / f"{uri}.json").read_text())
        assert summary["duration"] == pytest.approx(duration)
        assert all(0 <= t["start"] < t["end"] <= duration + 1e-6 for t in summary["turns"])
        assert set(summary["talk_time"]) == {t["speaker"] for t in summary["turns"]}


def test_checkpoint_of_the_wrong_kind_is_one_clear_line(work, capsys):
    rc = main(
        ["run", str(work / "a.wav"), "-o", str(work / "w.rttm"), "--model", str(work / "wrong.pt")]
    )
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "not a diarize EEND-EDA checkpoint" in err
    assert not (work / "w.rttm").exists()


def test_single_rttm_with_exclusive_json_and_plots(work, tmp_path):
    out = tmp_path / "all.rttm"
    rc = main(["run", str(work / "a.wav"), str(work / "low.wav"), "-o", str(out), "--model",
               str(work / "tiny.pt"), "--exclusive", "--json", "--plot", str(tmp_path / "t.png"),
               "--num-speakers", "2", "--batch-size", "1", "--workers", "2"])  # fmt: skip
    assert rc == 0
    hyp = read_rttm(out)
    assert set(hyp) <= {"a", "low"} and all(len(ann.labels()) <= 2 for ann in hyp.values())
    for ann in read_rttm(tmp_path / "all.exclusive.rttm").values():
        assert not ann.get_overlap()  # one speaker at a time
    summary = json.loads((tmp_path / "all.json").read_text())
    assert [r["uri"] for r in summary["recordings"]] == ["a", "low"]
    for uri in ("a", "low"):  # several recordings: one PNG each, beside the one asked for
        assert (tmp_path / f"{uri}.png").read_bytes()[:8] == PNG_MAGIC
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_one_recording_plot_and_wav_scp(work, tmp_path):
    (tmp_path / "wav.scp").write_text(f"rec1 {work / 'a.wav'}\n")
    rc = main(["run", str(tmp_path / "wav.scp"), "-o", str(tmp_path / "out"), "--model",
               str(work / "tiny.pt"), "--plot", str(tmp_path / "rec1.png"), "--window", "4"])  # fmt: skip
    assert rc == 0
    assert (tmp_path / "out" / "rec1.rttm").exists()
    assert (tmp_path / "rec1.png").read_bytes()[:8] == PNG_MAGIC


def test_bad_options_and_missing_default_model(work, tmp_path, monkeypatch, capsys):
    args = ["run", str(work / "a.wav"), "-o", str(tmp_path / "o"), "--model", str(work / "tiny.pt")]
    assert main([*args, "--num-speakers", "2", "--max-speakers", "3"]) == 1
    assert main([*args, "--window", "2", "--hop", "3"]) == 1
    assert main([*args, "--min-speakers", "3", "--max-speakers", "2"]) == 1
    monkeypatch.setattr("diarize.pipeline.DEFAULT_CHECKPOINT", tmp_path / "none.pt")
    assert main(["run", str(work / "a.wav"), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and "--model CKPT" in err[-1]
    assert not (tmp_path / "o").exists()


def test_evaluate_writes_hypotheses_and_report(work, tmp_path, capsys):
    data = tmp_path / "set"
    data.mkdir()
    for uri in ("a", "low"):
        (data / f"{uri}.wav").write_bytes((work / f"{uri}.wav").read_bytes())
    (data / "ref.rttm").write_text(
        "SPEAKER a 1 0.5 3.0 <NA> <NA> x <NA> <NA>\nSPEAKER a 1 4.0 5.0 <NA> <NA> y <NA> <NA>\n"
        "SPEAKER low 1 0.0 2.0 <NA> <NA> z <NA> <NA>\n"
    )
    out = tmp_path / "eval"
    rc = main(
        [
            "evaluate",
            str(data),
            "--model",
            str(work / "tiny.pt"),
            "-o",
            str(out),
            "--oracle-num-speakers",
        ]
    )
    assert rc == 0
    assert sorted(p.name for p in (out / "rttm").iterdir()) == ["a.rttm", "low.rttm"]
    assert set(read_rttm(out / "all.rttm")) <= {"a", "low"}
    report = json.loads((out / "der.json").read_text())
    assert set(report["files"]) == {"a", "low"} and "total" in report
    assert "TOTAL" in capsys.readouterr().out


def test_inference_options_override_the_checkpoint_settings():
    from diarize.cli import build_parser, inference_overrides
    from diarize.config import InferConfig
    from diarize.config import with_fields as with_overrides

    base = InferConfig(link_threshold=0.45)
    args = build_parser().parse_args(["run", "x.wav", "-o", "out", "--no-split-voices"])
    assert with_overrides(base, inference_overrides(args)) == InferConfig(
        link_threshold=0.45, split_voices=False
    )
    args = build_parser().parse_args(["run", "x.wav", "-o", "out", "--link-threshold", "0.2"])
    assert with_overrides(base, inference_overrides(args)) == InferConfig(
        link_threshold=0.2, split_voices=True
    )


def test_evaluate_rejects_a_negative_collar_before_any_work(work, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["evaluate", str(tmp_path), "--model", str(work / "tiny.pt"), "--collar", "-1"])
    assert exit.value.code == 2 and "finite number >= 0" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
