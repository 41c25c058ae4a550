"""EEND-EDA model: shapes, attractor decoding, padding, and over-fitting a tiny batch."""

from __future__ import annotations

import math

import pytest
import torch

from diarize.config import FeatureConfig, ModelConfig
from diarize.losses import attractor_existence_loss, pit_bce_loss
from diarize.models import EendEda
from diarize.models.eend_eda import count_speakers, shuffle_frames

SAMPLE_RATE = 16000
FRAME = 1600  # samples per output frame with the default fbank (100 ms)


def tiny_model(seed: int = 0, **overrides) -> EendEda:
    torch.manual_seed(seed)
    config = dict(d_model=32, n_layers=2, n_heads=4, ff_dim=64, dropout=0.0) | overrides
    return EendEda(FeatureConfig(), ModelConfig(**config))


def noise(batch: int, samples: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, samples, generator=torch.Generator().manual_seed(seed)) * 0.1


def test_forward_shapes():
    model = tiny_model()
    wave = noise(3, 30 * FRAME)
    out = model(wave, torch.tensor([30 * FRAME, 20 * FRAME + 5, 0]), torch.tensor([2, 3, 0]))
    assert out["logits"].shape == (3, 30, 3)
    assert out["existence_logits"].shape == (3, 4)
    assert out["frame_lengths"].tolist() == [30, 20, 0]
    assert torch.isfinite(out["logits"]).all() and torch.isfinite(out["existence_logits"]).all()
    assert model.frame_shift == pytest.approx(0.1)
    assert model.num_frames(30 * FRAME + 1599) == 30


def test_encode_shapes_and_zero_padding():
    model = tiny_model().eval()
    emb, frame_lengths = model.encode(noise(2, 12 * FRAME), torch.tensor([12 * FRAME, 7 * FRAME]))
    assert emb.shape == (2, 12, 32)
    assert frame_lengths.tolist() == [12, 7]
    assert (emb[1, 7:] == 0).all()


@pytest.mark.parametrize("k", [0, 1, 3, 6])
def test_eda_returns_exactly_k_attractors(k):
    model = tiny_model().eval()
    emb, frame_lengths = model.encode(noise(2, 10 * FRAME), torch.tensor([10 * FRAME, 4 * FRAME]))
    attractors, existence = model.attractors(emb, frame_lengths, k)
    assert attractors.shape == (2, k, 32)
    assert existence.shape == (2, k)


def test_decoder_is_causal_in_attractors():
    model = tiny_model().eval()
    emb, frame_lengths = model.encode(noise(1, 10 * FRAME), torch.tensor([10 * FRAME]))
    few, _ = model.attractors(emb, frame_lengths, 2)
    many, _ = model.attractors(emb, frame_lengths, 5)
    torch.testing.assert_close(many[:, :2], few)


def test_padding_an_item_does_not_change_its_outputs():
    model = tiny_model().eval()
    wave = noise(1, 15 * FRAME)
    alone = model.infer(wave, num_speakers=3)[0]
    batch = torch.cat(
        [torch.cat([wave, noise(1, 10 * FRAME, seed=3)], dim=1), noise(1, 25 * FRAME, seed=4)]
    )
    together = model.infer(batch, torch.tensor([15 * FRAME, 25 * FRAME]), num_speakers=3)[0]
    assert together[0].shape == (15, 3)
    torch.testing.assert_close(together[0], alone[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(together[1], alone[1], atol=1e-4, rtol=1e-4)
    out_alone = model(wave, torch.tensor([15 * FRAME]), torch.tensor([2]))
    out_batch = model(batch, torch.tensor([15 * FRAME, 25 * FRAME]), torch.tensor([2, 1]))
    torch.testing.assert_close(
        out_batch["logits"][0, :15], out_alone["logits"][0], atol=1e-4, rtol=1e-4
    )


def test_infer_speaker_counts():
    model = tiny_model().train()
    wave = noise(2, 10 * FRAME)
    assert [p.shape for p, _ in model.infer(wave, num_speakers=3)] == [(10, 3), (10, 3)]
    assert [a.shape for _, a in model.infer(wave, num_speakers=5, max_speakers=2)] == [(2, 32)] * 2
    assert [p.shape for p, _ in model.infer(wave, threshold=0.0, max_speakers=4)] == [(10, 4)] * 2
    assert [p.shape for p, _ in model.infer(wave, threshold=1.01)] == [(10, 0)] * 2
    assert [
        p.shape for p, _ in model.infer(wave[0], torch.tensor([5 * FRAME]), num_speakers=1)
    ] == [(5, 1)]
    assert model.training  # infer restores the caller's mode


def test_count_speakers_stops_at_first_missing_attractor():
    probs = torch.tensor([[0.9, 0.8, 0.2, 0.9], [0.1, 0.9, 0.9, 0.9], [0.9, 0.9, 0.9, 0.9]])
    logits = torch.logit(probs)
    assert count_speakers(logits, None, 8, 0.5).tolist() == [2, 0, 4]
    assert count_speakers(logits, None, 3, 0.5).tolist() == [2, 0, 3]
    assert count_speakers(logits, 1, 8, 0.5).tolist() == [1, 1, 1]


def test_shuffle_frames_permutes_valid_frames_only():
    emb = torch.arange(1.0, 9.0).reshape(1, 8, 1).repeat(2, 1, 1)  # (batch, frames, dim)
    out = shuffle_frames(emb, torch.tensor([5, 8]))
    assert sorted(out[0, :5, 0].tolist()) == [1, 2, 3, 4, 5]
    assert out[0, 5:, 0].tolist() == [6, 7, 8]
    assert sorted(out[1, :, 0].tolist()) == list(range(1, 9))


def test_frames_shuffled_only_when_training():
    model = tiny_model()
    emb = torch.randn(1, 30, 32)
    lengths = torch.tensor([30])
    first, _ = model.attractors(emb, lengths, 2)
    second, _ = model.attractors(emb, lengths, 2)
    assert not torch.allclose(first, second)  # training: a new frame order each call
    model.eval()
    torch.testing.assert_close(
        model.attractors(emb, lengths, 2)[0], model.attractors(emb, lengths, 2)[0]
    )
    fixed = tiny_model(shuffle_frames=False)
    torch.testing.assert_close(
        fixed.attractors(emb, lengths, 2)[0], fixed.attractors(emb, lengths, 2)[0]
    )


def two_speaker_batch(batch: int, frames: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two 'speakers' (a low and a high harmonic tone) switching on and off on the frame grid,
    overlapping at times -> wave (batch, samples), labels (batch, frames, speakers)."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.zeros(batch, frames, 2)
    for item in range(batch):
        for speaker in range(2):
            on, start = bool(torch.rand(1, generator=gen) < 0.5), 0
            while start < frames:
                run = int(torch.randint(3, 9, (1,), generator=gen))
                labels[item, start : start + run, speaker] = float(on)
                on, start = not on, start + run
    t = torch.arange(frames * FRAME) / SAMPLE_RATE
    low = torch.sin(2 * math.pi * 300 * t) + 0.5 * torch.sin(2 * math.pi * 600 * t)
    high = torch.sin(2 * math.pi * 2500 * t) + 0.5 * torch.sin(2 * math.pi * 3700 * t)
    active = labels.repeat_interleave(FRAME, dim=1)  # (batch, samples, speakers)
    wave = 0.3 * (active[..., 0] * low + active[..., 1] * high)
    return wave + 0.01 * torch.randn(wave.shape, generator=gen), labels


@pytest.mark.slow
def test_tiny_model_overfits_two_speakers():
    torch.set_num_threads(1)
    model = tiny_model(n_layers=1)
    wave, labels = two_speaker_batch(8, 40)
    lengths, num_speakers = torch.full((8,), wave.shape[1]), torch.full((8,), 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(100):
        out = model(wave, lengths, num_speakers)
        loss, _ = pit_bce_loss(out["logits"], labels, out["frame_lengths"], num_speakers)
        loss = loss + attractor_existence_loss(out["existence_logits"], num_speakers)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    results = model.infer(wave, lengths)
    assert [probs.shape for probs, _ in results] == [(40, 2)] * 8  # two speakers found
    probs = torch.stack([p for p, _ in results])  # (batch, frames, speakers)
    _, perm = pit_bce_loss(torch.logit(probs, eps=1e-6), labels, lengths // FRAME, num_speakers)
    aligned = labels.gather(2, perm[:, None].expand_as(labels))
    frame_error = ((probs > 0.5).float() != aligned).float().mean().item()
    assert frame_error < 0.02


def test_lstm_final_state_equals_packed_lstm():
    from torch.nn.utils.rnn import pack_padded_sequence

    from diarize.models.eend_eda import lstm_final_state

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(8, 8, batch_first=True)
    x = torch.randn(3, 20, 8, requires_grad=True)
    lengths = torch.tensor([20, 7, 1])
    _, (h_ref, c_ref) = lstm(
        pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    )
    h, c = lstm_final_state(lstm, x, lengths)
    torch.testing.assert_close(h, h_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c, c_ref, atol=1e-6, rtol=1e-5)
    (g_ref,) = torch.autograd.grad(h_ref.sum() + c_ref.sum(), x)
    (g,) = torch.autograd.grad(h.sum() + c.sum(), x)
    torch.testing.assert_close(g, g_ref, atol=1e-6, rtol=1e-5)
    assert g[1, 7:].abs().max() == 0  # frames past an item's length do not matter


def test_deepen_computes_the_same_function_then_trains_its_new_layers():
    from diarize.models import deepen

    model = tiny_model(seed=3, n_layers=2).eval()
    # the residual branches of a random layer are not zero: make the check mean something
    wave = noise(1, 40 * FRAME, seed=4)
    grown = deepen(model, 5).eval()
    assert len(grown.encoder.layers) == 5 and grown.config.n_layers == 5
    torch.testing.assert_close(
        grown.encode(wave, torch.tensor([40 * FRAME]))[0],
        model.encode(wave, torch.tensor([40 * FRAME]))[0],
        rtol=0,
        atol=1e-6,
    )
    # the originals keep their positions 0 and 2 (5 / 2 rounded); the rest start as identities
    for position, layer in enumerate(grown.encoder.layers):
        zero = bool(
            (layer.linear2.weight == 0).all() and (layer.self_attn.out_proj.weight == 0).all()
        )
        assert zero == (position not in (0, 2)), position
    assert grown.encoder.layers[0] is not model.encoder.layers[0]  # a copy, not shared
    # one training step moves an inserted layer's zeroed projection
    grown.train()
    out = grown(wave, torch.tensor([40 * FRAME]), torch.tensor([1]))
    out["logits"].sum().backward()
    assert grown.encoder.layers[1].linear2.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="fewer"):
        deepen(model, 1)
