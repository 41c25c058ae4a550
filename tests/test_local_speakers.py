"""Local speakers as speaker-encoder training items: tools/harvest_local_speakers.py labels
each window's local speakers by the reference speaker most active on their frames alone, and
tools/train_speaker_encoder.py --local-speakers puts them into the angular-margin loss."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import load_script, write_synthetic_set
from pyannote.core import Annotation, Segment

from diarize.inference.local import WindowOutput
from diarize.utils import DiarizeError

TOOLS = Path(__file__).resolve().parents[1] / "tools"


harvest = load_script("tools/harvest_local_speakers.py")
trainer = load_script("tools/train_speaker_encoder.py")


def test_local_speakers_take_the_reference_speaker_most_active_on_their_frames_alone():
    # 0.1 s frames; A speaks 0-3 s, B 2.5-6 s (reference). The window (frames 0-59) has two
    # local speakers: one alone on frames 0-29 (A, except 25-29 where B also speaks), one
    # alone on 40-59 (B); a third is alone on 3 frames only and is left out.
    reference = Annotation()
    reference[Segment(0.0, 3.0)] = "A"
    reference[Segment(2.5, 6.0)] = "B"
    probs = np.zeros((60, 3), dtype=np.float32)
    probs[0:30, 0] = 0.9
    probs[40:60, 1] = 0.9
    probs[32:35, 2] = 0.9
    window = WindowOutput(0, probs, np.zeros((3, 4), np.float32))
    analysis = SimpleNamespace(grid=SimpleNamespace(num_frames=60, frame_shift=0.1), windows=[window])  # fmt: skip
    items = harvest.recording_items(analysis, reference, min_frames=20)
    assert [(label, round(purity, 3)) for _, label, purity in items] == [("A", 1.0), ("B", 1.0)]
    np.testing.assert_array_equal(items[0][0], np.arange(30))
    # With A's turn ending at 2.5 s, frames 25-29 of the first are B's: still A, 25/30 pure.
    reference = Annotation()
    reference[Segment(0.0, 2.5)] = "A"
    reference[Segment(2.5, 6.0)] = "B"
    items = harvest.recording_items(analysis, reference, min_frames=20)
    assert [(label, round(purity, 3)) for _, label, purity in items] == [("A", 0.833), ("B", 1.0)]


@pytest.fixture(scope="module")
def harvested(tmp_path_factory) -> Path:
    """The bundled model's local speakers of two synthetic 2-speaker recordings."""
    root = tmp_path_factory.mktemp("harvest")
    data = write_synthetic_set(root / "data", num_recordings=2, seconds=12.0)
    out = root / "local.npz"
    proc = subprocess.run(
        [sys.executable, str(TOOLS / "harvest_local_speakers.py"), str(data), str(out),
         "--per-recording", "5"],
        capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "local speakers of 2 recordings" in proc.stdout
    return out


def test_harvested_items_hold_the_encoder_input_of_their_frames(harvested):
    items = np.load(harvested)
    n = len(items["labels"])
    assert 1 <= n <= 10 and set(items["labels"]) <= {"spk0", "spk1"}
    assert items["frames"].dtype == np.float16 and items["frames"].shape[1] == 66
    offsets = items["offsets"]
    assert offsets[0] == 0 and offsets[-1] == len(items["frames"]) and np.all(np.diff(offsets) > 0)
    assert np.all((items["purity"] > 0) & (items["purity"] <= 1))
    assert set(items["recordings"]) <= {"rec0", "rec1"}


def test_training_reads_the_items_of_its_classes_only(harvested):
    def args(**kw):
        return SimpleNamespace(**{"local_speakers": str(harvested), "min_purity": 0.0, "local_fraction": 0.5} | kw)  # fmt: skip

    items = np.load(harvested)
    local = trainer.local_speakers(args(), ["spk0", "spk1"])
    assert len(local.frames) == len(items["labels"])
    np.testing.assert_array_equal(local.labels, [int(s == "spk1") for s in items["labels"]])
    only = trainer.local_speakers(args(), ["other", "spk1"])
    assert len(only.frames) == int(np.sum(items["labels"] == "spk1")) and set(only.labels) <= {1}  # fmt: skip
    pure = trainer.local_speakers(args(min_purity=1.0), ["spk0", "spk1"])
    assert len(pure.frames) == int(np.sum(items["purity"] >= 1.0))
    with pytest.raises(DiarizeError, match="no local speaker of a training class"):
        trainer.local_speakers(args(), ["x", "y"])
    with pytest.raises(DiarizeError, match="not a local-speaker file"):
        trainer.local_speakers(args(local_speakers=str(harvested.with_suffix(".missing"))), ["a"])


def test_local_crops_join_the_angular_margin_loss_with_their_classes():
    rng = np.random.default_rng(0)
    frames = [rng.standard_normal((150, 66)).astype(np.float32) for _ in range(4)]
    labels = np.array([0, 0, 1, 1])
    local = trainer.Local([rng.standard_normal((120, 66)).astype(np.float16)], np.array([2]), 0.5)  # fmt: skip
    seen = []

    def head(emb, y):
        seen.append(y.tolist())
        return emb.sum() * 0, torch.tensor(0.0)

    encoder = lambda x: x.mean(1)  # noqa: E731
    trainer.step_loss(encoder, head, None, None, frames, labels, rng, 8, local)
    assert len(seen[0]) == 12 and seen[0][8:] == [2, 2, 2, 2] and set(seen[0][:8]) <= {0, 1}
    trainer.step_loss(encoder, head, None, None, frames, labels, rng, 8)
    assert len(seen[1]) == 8


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--local-fraction", "0"], "--local-fraction must be above 0"),
     (["--min-purity", "1.5"], "--min-purity within")],
)  # fmt: skip
def test_local_speaker_options_are_checked(extra, message):
    with pytest.raises(DiarizeError, match=message):
        trainer.check_options(trainer.parser().parse_args(["corpus", "out.pt", *extra]))


def test_equal_error_rate_of_same_recording_pairs():
    bench = load_script("bench/local_speaker_eer.py")
    assert bench.equal_error_rate(np.array([0.9, 0.8]), np.array([0.1, 0.2, 0.3])) == 0.0
    assert bench.equal_error_rate(np.array([0.1, 0.2]), np.array([0.8, 0.9])) == 1.0
    assert bench.equal_error_rate(np.array([0.9, 0.4]), np.array([0.5, 0.1])) == 0.5
    # two recordings: pairs are only made within each one
    emb = np.eye(3)[[0, 0, 1, 0, 2]]
    labels = np.array(["a", "a", "b", "a", "c"])
    recordings = np.array(["r1", "r1", "r1", "r2", "r2"])
    same, other = bench.pair_scores(emb, labels, recordings, np.ones(5, bool))
    np.testing.assert_array_equal(same, [1.0])
    np.testing.assert_array_equal(np.sort(other), [0.0, 0.0, 0.0])
