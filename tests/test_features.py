"""Log-mel filterbank frontend: frame counts, normalisation, splicing, padding."""

from __future__ import annotations

import pytest
import torch

from diarize.config import FbankConfig, FeatureConfig
from diarize.features import build_frontend
from diarize.features.fbank import FbankFrontend, mean_normalise, splice


def frontend(**fbank) -> FbankFrontend:
    return build_frontend(FeatureConfig(kind="fbank", fbank=FbankConfig(**fbank)))


def noise(batch: int, samples: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, samples, generator=torch.Generator().manual_seed(seed)) * 0.1


def test_defaults_are_100ms_frames():
    fe = frontend()
    assert isinstance(fe, FbankFrontend)
    assert fe.frame_shift == pytest.approx(0.1)
    assert fe.out_dim == 23 * 15
    assert fe.num_frames(16000) == 10
    assert fe.num_frames(15999) == 9
    assert list(fe.state_dict()) == []  # window and mel matrix are not weights


@pytest.mark.parametrize("samples", [0, 1, 1599, 1600, 1601, 3200, 16000, 16001, 40123])
def test_frame_counts_match_num_frames(samples):
    fe = frontend()
    feats, lengths = fe(noise(1, samples), torch.tensor([samples]))
    assert feats.shape == (1, fe.num_frames(samples), fe.out_dim)
    assert lengths.tolist() == [fe.num_frames(samples)]


def test_batch_frames_follow_padded_samples_and_lengths_each_item():
    fe = frontend()
    lengths = torch.tensor([32000, 17000, 1000, 0])
    feats, frame_lengths = fe(noise(4, 32000), lengths)
    assert feats.shape == (4, 20, fe.out_dim)
    assert frame_lengths.tolist() == [fe.num_frames(n) for n in lengths.tolist()]


def test_mean_normalisation_zero_mean_over_valid_frames():
    fe = frontend(context=0, subsampling=1)  # output frames = normalised base frames
    wave = noise(2, 16000) + 0.5 * torch.sin(torch.arange(16000) * 0.3)
    feats, lengths = fe(wave, torch.tensor([16000, 8000]))
    assert lengths.tolist() == [100, 50]
    for item, n in enumerate(lengths.tolist()):
        mean = feats[item, :n].mean(dim=0)
        assert mean.abs().max() < 1e-4
        assert feats[item, :n].std() > 0.1
    assert (feats[1, 50:] == 0).all()


def test_mean_normalise_masks_padding():
    feats = torch.tensor([[[1.0], [3.0], [100.0]]])  # (batch, frames, dim); frame 2 is padding
    out = mean_normalise(feats, torch.tensor([2]))
    assert out[0, :, 0].tolist() == [-1.0, 1.0, 0.0]


def test_splice_layout():
    base = torch.arange(12.0).reshape(1, 6, 2)  # (batch, base frames, dim): frame j = [2j, 2j+1]
    out = splice(base, context=1, subsampling=2, frames=3)  # centres 1, 3, 5
    assert out.shape == (1, 3, 6)
    assert out[0, 0].tolist() == [0, 1, 2, 3, 4, 5]  # frames 0, 1, 2
    assert out[0, 1].tolist() == [4, 5, 6, 7, 8, 9]  # frames 2, 3, 4
    assert out[0, 2].tolist() == [8, 9, 10, 11, 0, 0]  # frames 4, 5, (outside)
    left = splice(base, context=2, subsampling=1, frames=1)
    assert left[0, 0].tolist() == [0, 0, 0, 0, 0, 1, 2, 3, 4, 5]


def test_frontend_splices_normalised_log_mel():
    fe = frontend(n_mels=4, context=2, subsampling=3)
    wave = noise(1, 4800)
    feats, _ = fe(wave, torch.tensor([4800]))
    base, base_lengths = fe.log_mel(wave, torch.tensor([4800]))
    base = mean_normalise(base, base_lengths)[0]  # (base frames, n_mels)
    for i in range(feats.shape[1]):
        centre = 3 * i + 1
        for k in range(5):
            j = centre - 2 + k
            expected = base[j] if 0 <= j < base_lengths[0] else torch.zeros(4)
            torch.testing.assert_close(feats[0, i, 4 * k : 4 * (k + 1)], expected)


def test_padding_does_not_change_valid_frames():
    fe = frontend()
    wave = noise(1, 24000)
    alone, n_alone = fe(wave, torch.tensor([24000]))
    padded = torch.cat([wave, torch.randn(1, 9000)], dim=1)  # garbage beyond the length
    batch = torch.cat([padded, noise(1, 33000, seed=1)])
    together, n_together = fe(batch, torch.tensor([24000, 33000]))
    assert n_together[0] == n_alone[0] == 15
    torch.testing.assert_close(together[0, :15], alone[0], atol=1e-5, rtol=1e-5)
    assert (together[0, 15:] == 0).all()


def test_bad_input_raises():
    fe = frontend()
    with pytest.raises(ValueError, match="lengths"):
        fe(noise(2, 1000), torch.tensor([1000, 1001]))
    with pytest.raises(ValueError, match="batch, samples"):
        fe(noise(1, 1000)[0], torch.tensor([1000]))
    with pytest.raises(ValueError, match="n_fft"):
        frontend(win_length=1024, n_fft=512)
