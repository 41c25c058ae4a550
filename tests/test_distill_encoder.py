"""Distilling the speaker encoder from a pretrained embedding model
(tools/train_speaker_encoder.py --teacher): teacher segments, unlabelled stretches, the
loss pulling the student towards the teacher, and the options' errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import load_script

from diarize.checkpoint import SPEAKER_FORMAT, load_checkpoint
from diarize.embeddings import load_embedding
from diarize.embeddings.campplus import CAMPPlus, CAMPPlusConfig
from diarize.utils import DiarizeError

SR = 16000
TOOLS = Path(__file__).resolve().parents[1] / "tools"
tool = load_script("tools/train_speaker_encoder.py")


def hum(f0: float, seconds: float, seed: int) -> np.ndarray:
    """A harmonic tone of a wavering ``f0`` with a little noise (samples,)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(1, 3) * t))) / SR  # fmt: skip
    wave = sum(np.sin(h * phase) / h for h in range(1, 8)) + 0.05 * rng.standard_normal(len(t))
    return (0.1 * wave / np.abs(wave).max()).astype(np.float32)


def write_corpus(root: Path) -> None:
    """Three tone "speakers", three utterances of 2.5 s each, as a Kaldi-style corpus."""
    (root / "audio").mkdir(parents=True)
    scp, utt2spk = [], []
    for spk, f0 in {"low": 110.0, "mid": 180.0, "high": 290.0}.items():
        for i in range(3):
            path = root / "audio" / f"{spk}{i}.wav"
            sf.write(path, hum(f0, 2.5, seed=10 * i + int(f0)), SR)
            scp.append(f"{spk}{i} {path}")
            utt2spk.append(f"{spk}{i} {spk}")
    (root / "wav.scp").write_text("\n".join(scp) + "\n")
    (root / "utt2spk").write_text("\n".join(utt2spk) + "\n")


def write_conversation(root: Path, turns: list[tuple[str, float, float]]) -> Path:
    """One recording ``a`` of 10 s: a tone per speaker in each (speaker, start, duration)
    turn, and its rttm."""
    root.mkdir(parents=True, exist_ok=True)
    wave = 0.002 * np.random.default_rng(0).standard_normal(10 * SR).astype(np.float32)
    for who, start, duration in turns:
        a, b = int(start * SR), int((start + duration) * SR)
        wave[a:b] += hum(130.0 if who == "A" else 250.0, duration, seed=a)[: b - a]
    sf.write(root / "a.wav", wave, SR)
    (root / "wav.scp").write_text("a a.wav\n")
    (root / "rttm").write_text(
        "".join(f"SPEAKER a 1 {s} {d} <NA> <NA> {who} <NA> <NA>\n" for who, s, d in turns)
    )
    return root


TURNS = [("A", 0.0, 4.0), ("B", 3.0, 5.0), ("A", 8.5, 0.5), ("B", 9.0, 1.0)]


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory) -> Path:
    """A small random CAM++ saved as 3D-Speaker's plain state dict (batch norms randomised,
    so that different inputs get different embeddings)."""
    torch.manual_seed(0)
    model = CAMPPlus(CAMPPlusConfig(growth_rate=8, bn_size=2, init_channels=16, head_channels=8))
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith("running_var"):
            value.copy_(0.5 + torch.rand(value.shape))
        elif key.endswith("running_mean"):
            value.copy_(0.3 * torch.randn(value.shape))
    path = tmp_path_factory.mktemp("teacher") / "campplus_cn_en_common.pt"
    torch.save(state, path)
    return path


def test_teacher_segments_are_spread_over_an_item():
    np.testing.assert_array_equal(tool.segment_starts(500, 10), [0, 100, 200, 300])
    np.testing.assert_array_equal(tool.segment_starts(500, 2), [0, 300])
    np.testing.assert_array_equal(tool.segment_starts(700, 3), [0, 200, 500])
    np.testing.assert_array_equal(tool.segment_starts(150, 3), [0])  # shorter than one


def test_unlabelled_stretches_are_one_speaker_alone(tmp_path):
    write_conversation(tmp_path, TURNS)
    found = tool.alone_stretches([str(tmp_path)], 10, np.random.default_rng(0))
    assert [(round(s, 3), round(d, 3)) for _, s, d in found] == [(0.0, 3.0), (4.0, 4.0), (9.0, 1.0)]  # fmt: skip
    assert len(tool.alone_stretches([str(tmp_path)], 2, np.random.default_rng(0))) == 2
    (tmp_path / "rttm").write_text("SPEAKER a 1 0 0.5 <NA> <NA> A <NA> <NA>\n")
    with pytest.raises(DiarizeError, match="no stretch of one speaker alone"):
        tool.alone_stretches([str(tmp_path)], 10, np.random.default_rng(0))


def test_distillation_pulls_the_student_towards_the_teacher(tmp_path, teacher_file, one_thread):
    write_corpus(tmp_path / "corpus")
    data = write_conversation(tmp_path / "conv", TURNS)
    teacher = load_embedding(teacher_file)
    rng = np.random.default_rng(0)
    frames, labels, names, targets = tool.corpus_frames(str(tmp_path / "corpus"), None, rng, teacher, 2)  # fmt: skip
    # Each 2.5 s utterance: two segments (at 0 and 0.5 s), embedded once, unit length.
    assert names == ["high", "low", "mid"] and len(targets) == len(frames) == 9
    assert all(list(t.starts) == [0, 50] and t.embeddings.shape == (2, 192) for t in targets)
    np.testing.assert_allclose(np.linalg.norm(targets[0].embeddings, axis=1), 1.0, rtol=1e-5)
    stretches = tool.alone_stretches([str(data)], 20, rng)
    frames_u, targets_u = tool.unlabelled_frames(stretches, rng, teacher, 2)
    assert len(frames_u) == len(targets_u) == len(stretches) == 3

    history: list[dict] = []
    distill = tool.Distill(1.0, targets, frames_u, targets_u)
    tool.train(frames, labels, 3, steps=40, seed=0, channels=16, batch=8, distill=distill, history=history)  # fmt: skip
    cosine = [h["cosine"] for h in history]
    assert np.mean(cosine[-5:]) > np.mean(cosine[:5]) + 0.3, np.round(cosine, 2)
    plain: list[dict] = []
    tool.train(frames, labels, 3, steps=2, seed=0, channels=16, batch=8, history=plain)
    assert "cosine" not in plain[0] and plain[0]["loss"] == plain[0]["aam"]


def options(*args: str):
    return tool.parser().parse_args(["corpus", "out.pt", *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--distill-weight", "1"], "--teacher and --distill-weight above 0 go together"),
        (["--teacher", "t.pt"], "--teacher and --distill-weight above 0 go together"),
        (["--teacher", "t.pt", "--distill-weight", "-1"], "must be 0 or more"),
        (["--unlabelled", "conv"], "--unlabelled needs --teacher"),
        (["--teacher", "t.pt", "--distill-weight", "1", "--teacher-segments", "0"], "1 or more"),
    ],
)
def test_distillation_options_that_do_not_go_together(args, message):
    with pytest.raises(DiarizeError, match=message):
        tool.check_options(options(*args))
    tool.check_options(options("--teacher", "t.pt", "--distill-weight", "0.5"))


def test_tool_distils_and_records_its_teacher(tmp_path, teacher_file):
    write_corpus(tmp_path / "corpus")
    data = write_conversation(tmp_path / "conv", TURNS)
    proc = subprocess.run(
        [sys.executable, str(TOOLS / "train_speaker_encoder.py"), str(tmp_path / "corpus"),
         str(tmp_path / "spk.pt"), "--steps", "3", "--channels", "8", "--threads", "1",
         "--teacher", str(teacher_file), "--distill-weight", "1", "--unlabelled", str(data)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    entry = load_checkpoint(tmp_path / "spk.pt", kind=SPEAKER_FORMAT)
    assert entry["teacher"] == str(teacher_file) and entry["distill_weight"] == 1.0
    assert "teacher segments" in proc.stdout and "cosine" in proc.stdout
