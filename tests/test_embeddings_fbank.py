"""The embedding models' filterbanks against the implementations they reproduce."""

from __future__ import annotations

import math

import pytest
import torch
import torchaudio.compliance.kaldi as kaldi

from diarize.embeddings.fbank import (
    KaldiFbank,
    KaldiFbankConfig,
    SpeechBrainFbank,
    SpeechBrainFbankConfig,
)


def waves(samples: int = 16000 + 123) -> torch.Tensor:
    """(3, samples): noise, a tone with a little noise, a chirp with a DC offset."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(samples) / 16000
    noise = 0.1 * torch.randn(samples, generator=g)
    tone = 0.3 * torch.sin(2 * math.pi * 220 * t) + 1e-4 * torch.randn(samples, generator=g)
    chirp = 0.2 * torch.sin(2 * math.pi * (100 + 2000 * t) * t) + 0.05
    return torch.stack([noise, tone, chirp])


@pytest.mark.parametrize(
    "config",
    [
        KaldiFbankConfig(),
        KaldiFbankConfig(window_type="hamming", scale=32768.0),
        KaldiFbankConfig(window_type="hanning", num_mel_bins=40, high_freq=-400.0),
        KaldiFbankConfig(window_type="rectangular", preemphasis=0.0, remove_dc_offset=False),
        KaldiFbankConfig(round_to_power_of_two=False, low_freq=60.0, frame_shift=12.5),
    ],
)
def test_kaldi_fbank_matches_torchaudio(config):
    x = waves()
    ours = KaldiFbank(config)(x)
    ref = torch.stack(
        [
            kaldi.fbank(
                item[None] * config.scale,
                num_mel_bins=config.num_mel_bins,
                frame_length=config.frame_length,
                frame_shift=config.frame_shift,
                window_type=config.window_type,
                preemphasis_coefficient=config.preemphasis,
                remove_dc_offset=config.remove_dc_offset,
                round_to_power_of_two=config.round_to_power_of_two,
                low_freq=config.low_freq,
                high_freq=config.high_freq,
                sample_frequency=config.sample_rate,
                dither=0.0,
            )
            for item in x
        ]
    )
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max() < 1e-4


def test_kaldi_fbank_frame_count_and_batch_independence():
    fb = KaldiFbank()
    assert [fb.num_frames(n) for n in (399, 400, 559, 560, 16000)] == [0, 1, 1, 2, 98]
    x = waves(4000)
    batched = fb(x)
    assert batched.shape == (3, 23, 80)
    assert torch.equal(batched[1], fb(x[1:2])[0])
    assert fb(torch.zeros(2, 300)).shape == (2, 0, 80)


def test_kaldi_fbank_rejects_bad_settings():
    with pytest.raises(ValueError, match="window_type"):
        KaldiFbank(KaldiFbankConfig(window_type="blackmann"))
    with pytest.raises(ValueError, match="mel range"):
        KaldiFbank(KaldiFbankConfig(low_freq=9000.0))


@pytest.mark.parametrize(
    "config", [SpeechBrainFbankConfig(), SpeechBrainFbankConfig(n_mels=40, f_min=50, f_max=7000)]
)
def test_speechbrain_fbank_matches_speechbrain(config):
    features = pytest.importorskip("speechbrain.lobes.features")
    ref_module = features.Fbank(n_mels=config.n_mels, f_min=config.f_min, f_max=config.f_max)
    x = waves()
    ours, ref = SpeechBrainFbank(config)(x), ref_module(x)
    assert ours.shape == ref.shape == (3, 1 + x.shape[1] // 160, config.n_mels)
    assert (ours - ref).abs().max() < 1e-4
