"""Speaker encoder: its input features, the network, training, shipping it in a checkpoint,
and linking by its embeddings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import load_script

from diarize.checkpoint import (
    SPEAKER_FORMAT,
    build_model,
    load_checkpoint,
    load_speaker_encoder,
    save_checkpoint,
)
from diarize.config import InferConfig, load_config
from diarize.features.voice import N_MELS, SPEAKER_MELS, speaker_frames
from diarize.inference import FrameGrid, WindowOutput, link
from diarize.models.speaker import SpeakerConfig, SpeakerEncoder

SR = 16000
TOOLS = Path(__file__).resolve().parents[1] / "tools"


def voice(f0: float, tilt: float, seconds: float, seed: int) -> np.ndarray:
    """A hummed voice: harmonics of a wavering ``f0`` falling off as 1 / h**tilt, syllables."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    wave = sum(np.sin(h * phase) / h**tilt for h in range(1, int(6000 / f0)))
    wave = wave * (0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(3, 5) * t))
    wave = wave + 0.01 * rng.standard_normal(len(t))
    return (0.05 * wave / np.sqrt(np.mean(wave**2))).astype(np.float32)


def test_speaker_frames_hold_log_mel_pitch_and_voicing():
    frames = speaker_frames(voice(150.0, 1.0, 1.0, seed=0))
    assert frames.shape == (100, SPEAKER_MELS + 2)
    f0 = 120 * np.exp(frames[5:-5, SPEAKER_MELS])
    assert np.median(np.abs(f0 / 150.0 - 1)) < 0.06  # the pitch wavers by 5 %
    assert (frames[:, SPEAKER_MELS + 1] > 0.6).mean() > 0.9  # voiced throughout
    silent = speaker_frames(np.zeros(SR, dtype=np.float32))
    assert (silent[:, SPEAKER_MELS:] == 0).all() and np.isfinite(silent).all()


def test_encoder_embeds_any_length_to_a_unit_vector():
    torch.manual_seed(0)
    encoder = SpeakerEncoder(SpeakerConfig(channels=16, embedding=8)).eval()
    x = torch.randn(3, 57, SPEAKER_MELS + 2)
    assert encoder(x).shape == (3, 8)
    e = encoder.embed(x[0, :20])
    assert e.shape == (8,) and torch.isclose(e.norm(), torch.tensor(1.0))
    torch.testing.assert_close(encoder.embed(x[0, :20]), e)  # eval: deterministic


def write_corpus(root: Path) -> dict[str, tuple[float, float]]:
    """Three hummed voices, five 2 s utterances each, as a Kaldi-style corpus."""
    voices = {"low": (100.0, 0.8), "mid": (160.0, 1.4), "high": (240.0, 1.0)}
    (root / "audio").mkdir(parents=True)
    scp, utt2spk = [], []
    for spk, (f0, tilt) in voices.items():
        for i in range(5):
            path = root / "audio" / f"{spk}{i}.wav"
            sf.write(path, voice(f0, tilt, 2.0, seed=hash((spk, i)) % 1000), SR)
            scp.append(f"{spk}{i} {path}")
            utt2spk.append(f"{spk}{i} {spk}")
    (root / "wav.scp").write_text("\n".join(scp) + "\n")
    (root / "utt2spk").write_text("\n".join(utt2spk) + "\n")
    return voices


def export_with_speaker(tmp_path: Path, speaker: Path) -> subprocess.CompletedProcess:
    """A tiny EEND-EDA checkpoint ``eend.pt`` exported to ``ship.pt`` with ``--speaker``."""
    config = load_config(
        None, {"model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "ff_dim": 32}}
    )
    save_checkpoint(tmp_path / "eend.pt", build_model(config), config)
    return subprocess.run(
        [sys.executable, str(TOOLS / "export_model.py"), str(tmp_path / "eend.pt"),
         str(tmp_path / "ship.pt"), "--speaker", str(speaker)],
        capture_output=True, text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_trained_encoder_tells_voices_apart_and_ships_in_a_checkpoint(tmp_path):
    voices = write_corpus(tmp_path / "corpus")
    proc = subprocess.run(
        [sys.executable, str(TOOLS / "train_speaker_encoder.py"), str(tmp_path / "corpus"),
         str(tmp_path / "spk.pt"), "--steps", "60", "--channels", "32", "--threads", "1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    entry = load_checkpoint(tmp_path / "spk.pt", kind=SPEAKER_FORMAT)
    assert sorted(entry["classes"]) == sorted(voices)

    # Shipped inside a diarization checkpoint, it is read back (weights_only) unchanged.
    proc = export_with_speaker(tmp_path, tmp_path / "spk.pt")
    assert proc.returncode == 0, proc.stderr
    encoder = load_speaker_encoder(tmp_path / "ship.pt")
    assert encoder is not None and not encoder.training
    assert load_speaker_encoder(tmp_path / "eend.pt") is None

    # New utterances: one voice is closer to itself than to the others.
    emb = {
        name: [
            encoder.embed(torch.from_numpy(speaker_frames(voice(f0, tilt, 2.0, seed=500 + i))))
            for i in range(2)
        ]
        for name, (f0, tilt) in voices.items()
    }
    for name in voices:
        same = float(emb[name][0] @ emb[name][1])
        others = [float(emb[name][0] @ emb[o][1]) for o in voices if o != name]
        assert same > max(others)


def test_export_refuses_a_file_that_is_no_speaker_encoder(tmp_path):
    proc = export_with_speaker(tmp_path, tmp_path / "eend.pt")
    assert proc.returncode != 0 and "not a diarize speaker encoder checkpoint" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1  # one clear line, no traceback
    assert not (tmp_path / "ship.pt").exists()


def test_link_prefers_embeddings_to_voice_profiles():
    # Four windows, two persons who alternate; voice profiles all alike, embeddings not.
    voice_profile = np.tile(np.r_[np.zeros(N_MELS), np.log(120.0)], (1, 1))
    a, b = np.eye(4)[0], np.eye(4)[1]
    windows = []
    for i, person in enumerate([a, b, a, b]):
        probs = np.zeros((50, 1), dtype=np.float32)
        probs[:, 0] = 0.9
        windows.append(
            WindowOutput(100 * i, probs, np.ones((1, 4)), voice_profile, np.array([50]),
                         person[None].astype(np.float32))
        )  # fmt: skip
    assert [int(g[0]) for g in link(windows, InferConfig(link_threshold=0.5))] == [0, 1, 0, 1]
    without = [
        WindowOutput(w.start, w.probs, w.attractors, w.voice, w.voice_frames) for w in windows
    ]
    assert [int(g[0]) for g in link(without, InferConfig(link_threshold=0.5))] == [0, 0, 0, 0]


def test_training_is_deterministic_with_a_seed():
    tool = load_script("tools/train_speaker_encoder.py")
    rng = np.random.default_rng(0)
    frames = [rng.standard_normal((120, SPEAKER_MELS + 2)).astype(np.float32) for _ in range(6)]
    labels = np.array([0, 0, 0, 1, 1, 1])
    one = tool.train(frames, labels, 2, steps=3, seed=1, channels=8, batch=4)
    two = tool.train(frames, labels, 2, steps=3, seed=1, channels=8, batch=4)
    for (k, v), w in zip(one.state_dict().items(), two.state_dict().values(), strict=True):
        torch.testing.assert_close(v, w, msg=k)


def test_windows_get_embeddings_of_the_speakers_heard_alone():
    from diarize import inference

    torch.manual_seed(0)
    encoder = SpeakerEncoder(SpeakerConfig(channels=8, embedding=4)).eval()
    wave = np.concatenate([voice(110.0, 0.8, 4.0, seed=1), voice(230.0, 1.2, 4.0, seed=2)])

    class TwoTurns:  # speaker 0 in the first 4 s, speaker 1 in the last 4 s, 100 ms frames
        def infer(self, wave, lengths, max_speakers=None, threshold=None):
            probs = torch.zeros(80, 2)
            probs[:40, 0], probs[40:, 1] = 0.9, 0.9
            return [(probs, torch.eye(2))]

    grid = FrameGrid(0.1, SR, 1600, 80, 80, 80)
    (out,) = inference.analyse_windows(
        TwoTurns(),
        [inference.Window(0, wave)],
        grid,
        InferConfig(batch_size=1),
        speaker_encoder=encoder,
    )
    assert out.embeddings.shape == (2, 4)
    np.testing.assert_allclose(np.linalg.norm(out.embeddings, axis=1), 1.0, rtol=1e-5)
    expected = encoder.embed(torch.from_numpy(speaker_frames(wave)[:400]))  # its 10 ms frames
    np.testing.assert_allclose(out.embeddings[0], expected.numpy(), rtol=1e-4, atol=1e-5)
