"""CAM++ frontend: frame counts and timing, CAM++'s own frame-level layer, frozen weights,
checkpoints that carry them, the feature cache and a training run on top."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from conftest import tiny_experiment, write_synthetic_set

from diarize.checkpoint import build_model, load_checkpoint, load_model, save_checkpoint
from diarize.config import CAMPPlusFrontendConfig, FeatureConfig, from_dict
from diarize.embeddings import load_embedding
from diarize.embeddings.campplus import CAMPPlus, CAMPPlusConfig
from diarize.features import build_frontend
from diarize.features.campplus import PAD, CAMPPlusFrontend
from diarize.train import train
from diarize.utils import DiarizeError

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"head_channels": 4, "init_channels": 8, "growth_rate": 4, "bn_size": 2}
REAL = Path(__file__).parents[1] / "data" / "pretrained" / "campplus_cn_en_common.pt"


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    """A random-weight CAM++ written as 3D-Speaker ships it: a bare state dict."""
    torch.manual_seed(0)
    net = CAMPPlus(CAMPPlusConfig(embedding_size=8, **TINY))
    for module in net.modules():  # running statistics that matter, unlike the defaults
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("campplus") / "campplus_tiny.pt"
    torch.save(net.state_dict(), path)
    return path


def features(checkpoint: Path | str = "", frame_shift: float = 0.1) -> dict:
    return {
        "kind": "campplus",
        "campplus": {"checkpoint": str(checkpoint), "frame_shift": frame_shift, **TINY},
    }


def frontend(checkpoint: Path | str = "", frame_shift: float = 0.1) -> CAMPPlusFrontend:
    return build_frontend(from_dict(FeatureConfig, features(checkpoint, frame_shift)))


def waves(*lengths: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise bursts (batch, max length) zero-padded, and their lengths (batch,)."""
    gen = torch.Generator().manual_seed(1)
    wave = torch.zeros(len(lengths), max(lengths))
    for b, n in enumerate(lengths):
        wave[b, :n] = 0.1 * torch.randn(n, generator=gen) * torch.linspace(0.2, 1.0, n)
    return wave, torch.tensor(lengths)


@pytest.mark.parametrize("frame_shift", [0.02, 0.1])
def test_frame_counts_and_shapes(tiny_file, frame_shift):
    fe = frontend(tiny_file, frame_shift)
    per_frame = round(frame_shift * 16000)
    assert (
        fe.frame_shift == frame_shift and fe.out_dim == 63
    )  # 8 + 12*4 -> 28 + 24*4 -> 62 + 16*4 -> 63
    for n in (319, 320, 1599, 1600, 1601, 16000, 16321, 33333):
        wave, lengths = waves(n, n // 2)
        feats, frame_lengths = fe(wave, lengths)
        assert fe.num_frames(n) == n // per_frame
        assert feats.shape == (2, n // per_frame, 63)
        assert frame_lengths.tolist() == [n // per_frame, n // 2 // per_frame]
        assert (feats[1, frame_lengths[1] :] == 0).all()


def test_frames_are_campplus_frame_level_layer(tiny_file):
    """At 20 ms the frames are CAM++'s layer before the statistics pooling, one per 320
    samples, untrimmed: pooled and embedded they give CAM++'s own embedding."""
    fe, embedder = frontend(tiny_file, 0.02), load_embedding(tiny_file)
    for n in (16000, 16160, 24000):
        wave, lengths = waves(n)
        feats, _ = fe(wave, lengths)  # (1, n // 320, 63)
        padded = F.pad(wave, (PAD, PAD))
        with torch.no_grad():
            h = embedder.xvector[:-2](embedder.head(embedder.features(padded).transpose(1, 2)))
            assert h.shape == (1, 63, n // 320)  # the frontend dropped nothing
            torch.testing.assert_close(feats, h.transpose(1, 2))
            pooled = embedder.xvector.dense(embedder.xvector.stats(feats.transpose(1, 2)))
            torch.testing.assert_close(pooled, embedder(padded))


def test_pooling_averages_20ms_frames_and_padding_changes_nothing(tiny_file):
    fine, coarse = frontend(tiny_file, 0.02), frontend(tiny_file, 0.1)
    wave, lengths = waves(40000, 17000)
    feats, _ = coarse(wave, lengths)  # (2, 25, 63)
    alone, _ = coarse(wave[1:, :17000], lengths[1:])
    torch.testing.assert_close(feats[1:, :10], alone, rtol=0, atol=1e-5)  # batching is exact
    frames = fine(wave[:1], lengths[:1])[0][0]  # (125, 63)
    torch.testing.assert_close(feats[0], frames.reshape(25, 5, 63).mean(1))


def test_campplus_is_frozen_the_projection_trains(tiny_file):
    torch.manual_seed(0)
    config = tiny_experiment(Path("/tmp"), "unused", features=features(tiny_file))
    model = build_model(config).train()
    stats = {k: v.clone() for k, v in model.frontend.state_dict().items()}
    assert not any(p.requires_grad for p in model.frontend.parameters())
    assert not model.frontend.campplus.training  # eval mode inside a training model
    wave, lengths = waves(32000, 32000)
    out = model(wave, lengths, torch.tensor([2, 2]))
    out["logits"].square().mean().backward()
    assert all(p.grad is None for p in model.frontend.parameters())
    assert model.input_proj.weight.grad.abs().sum() > 0
    after = model.frontend.state_dict()
    assert all(torch.equal(stats[k], after[k]) for k in stats)  # running stats unchanged


def test_checkpoint_carries_campplus_weights(tiny_file, tmp_path):
    torch.manual_seed(0)
    source = tmp_path / "campplus.pt"
    source.write_bytes(tiny_file.read_bytes())
    config = tiny_experiment(tmp_path, "unused", features=features(source))
    model = build_model(config).eval()
    shipped = torch.load(source, weights_only=True)
    state = model.state_dict()
    assert all(
        torch.equal(state[f"frontend.campplus.{k}"], v)
        for k, v in shipped.items()
        if "dense" not in k
    )
    assert not any("dense" in k or "stats" in k for k in state)  # frame level only
    save_checkpoint(tmp_path / "model.pt", model, config)
    source.unlink()  # inference must not need the CAM++ file again
    raw = torch.load(tmp_path / "model.pt", weights_only=True)
    assert raw["config"]["features"]["campplus"]["checkpoint"] == str(source)
    loaded, _ = load_model(tmp_path / "model.pt")
    wave, lengths = waves(48000)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(wave, lengths)[0], model.encode(wave, lengths)[0])


def test_bad_campplus_files_and_settings_are_one_line_errors(tiny_file, tmp_path):
    with pytest.raises(DiarizeError, match="no such file"):
        frontend(tmp_path / "missing.pt")
    wide = features(tiny_file)
    wide["campplus"]["growth_rate"] = 8
    with pytest.raises(DiarizeError, match="growth_rate=4.*growth_rate=8"):
        build_frontend(from_dict(FeatureConfig, wide))
    with pytest.raises(DiarizeError, match="multiple of 0.02"):
        frontend(tiny_file, 0.05)
    fe = frontend(tiny_file)
    wave, lengths = waves(16000)
    with fe.precomputed(torch.zeros(1, 1, 9, 63)), pytest.raises(ValueError, match="expected"):
        fe(wave, lengths)


@pytest.mark.skipif(not REAL.is_file(), reason="data/pretrained/campplus_cn_en_common.pt absent")
def test_the_published_checkpoint_loads():
    fe = build_frontend(
        FeatureConfig(kind="campplus", campplus=CAMPPlusFrontendConfig(checkpoint=str(REAL)))
    )
    wave, lengths = waves(16000)
    feats, _ = fe(wave, lengths)
    assert fe.out_dim == 512 and feats.shape == (1, 10, 512) and (feats >= 0).all()  # after a ReLU


def test_training_reads_cached_features(tiny_file, tmp_path):
    data = write_synthetic_set(tmp_path / "data", num_recordings=2, seconds=8.0)
    cache = tmp_path / "cache"
    config = tiny_experiment(
        tmp_path, data, features=features(tiny_file), epochs=1, feature_cache=str(cache)
    )
    out = train(config)
    (npy,) = cache.glob("*.npy")
    stored = np.load(npy)
    assert stored.shape == (4, 1, 40, 63) and stored.dtype == np.float16  # 2 x 2 chunks of 4 s
    model, _ = load_model(out / "checkpoint_epoch1.pt")
    wave = torch.from_numpy(sf.read(data / "rec0.wav", dtype="float32")[0])
    feats, _ = model.frontend(wave[None, :64000], torch.tensor([64000]))  # the first chunk
    torch.testing.assert_close(
        torch.from_numpy(stored[0, 0]).float(), feats[0], rtol=2e-3, atol=2e-3
    )
    history = load_checkpoint(out / "checkpoint_epoch1.pt")["history"]
    assert np.isfinite(history[0]["train_loss"]) and "dev_der" in history[0]


def _diarizer(model, **infer):
    from diarize import Diarizer
    from diarize.config import InferConfig

    config = InferConfig(link_threshold=0.3, **infer)
    return Diarizer(model, config, chunk_frames=40)


def _windows(diarizer, wave) -> list:
    return diarizer.analyse((wave, 16000)).windows


def _decoding_model(tiny_file, tmp_path):
    """A tiny CAM++-frontend model that decodes every attractor (threshold 0), so that its
    windows have posteriors to compare."""
    torch.manual_seed(0)
    config = tiny_experiment(tmp_path, "unused", features=features(tiny_file))
    config = replace(config, model=replace(config.model, attractor_threshold=0.0))
    return build_model(config).eval()


def test_frontend_blocks_aligned_with_windows_change_nothing(tiny_file, tmp_path, monkeypatch):
    """Windows that are exactly the blocks (no context) see exactly the audio they would
    alone; blocks that cut them elsewhere give other posteriors."""
    import diarize.inference.local

    monkeypatch.setattr(diarize.inference.local, "BLOCK_CONTEXT", 0.0)
    model = _decoding_model(tiny_file, tmp_path)
    wave = waves(16000 * 12)[0][0].numpy()  # two 6-s windows
    alone = _windows(_diarizer(model, window=6.0, hop=6.0), wave)
    blocked = _windows(_diarizer(model, window=6.0, hop=6.0, frontend_block=6.0), wave)
    shifted = _windows(_diarizer(model, window=6.0, hop=6.0, frontend_block=4.0), wave)
    assert [w.start for w in alone] == [w.start for w in blocked] == [0, 60]
    for a, b, c in zip(alone, blocked, shifted, strict=True):
        assert a.probs.shape == (60, model.config.max_speakers)
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)
        assert np.abs(a.probs - c.probs).max() > 1e-3


def test_frontend_blocks_are_cut_at_multiples_and_sliced_per_window(tiny_file, tmp_path):
    """Overlapping windows take each frame's states from the block that holds it, run on
    the block and its context."""
    from diarize.inference import frame_grid, open_audio, stream_windows

    torch.manual_seed(0)
    model = build_model(tiny_experiment(tmp_path, "unused", features=features(tiny_file))).eval()
    wave = waves(16000 * 13)[0][0].numpy()
    calls = []

    def block_states(block: np.ndarray) -> np.ndarray:  # frame means, tagged by block length
        calls.append(len(block))
        frames = len(block) // 1600
        means = block[: frames * 1600].reshape(frames, 1600).mean(1)
        return np.stack([means, np.full(frames, len(block))])[None].transpose(0, 2, 1)

    config = _diarizer(model, window=6.0, hop=3.0).config
    grid = frame_grid(model, config, len(wave), 16000, 40)
    source = open_audio((wave, 16000), 16000)
    windows = list(stream_windows(source, grid, None, 0, block_states, 50, 10))
    # blocks [0, 5), [5, 10), [10, 13) s, once each, seen with 1 s of context on each side
    assert calls == [96000, 112000, 64000]
    means = wave.reshape(130, 1600).mean(1)
    tags = np.repeat(calls, [50, 50, 30])
    for w in windows:
        frames = len(w.wave) // 1600
        np.testing.assert_allclose(w.states[0, :, 0], means[w.start : w.start + frames], rtol=1e-6)
        np.testing.assert_array_equal(w.states[0, :, 1], tags[w.start : w.start + frames])


def test_frontend_block_needs_a_frozen_frontend(tmp_path):
    from diarize.config import InferConfig

    model = build_model(tiny_experiment(tmp_path, "unused")).eval()  # fbank
    with pytest.raises(DiarizeError, match="frontend_block needs a frozen frontend"):
        _diarizer(model, frontend_block=20.0)
    for bad in (-1.0, 0.5, float("nan")):
        with pytest.raises(DiarizeError, match="frontend_block"):
            InferConfig(frontend_block=bad)
