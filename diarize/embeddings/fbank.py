"""Filterbank features of the pretrained speaker-embedding models, batched.

- :class:`KaldiFbank`: Kaldi's ``compute-fbank-feats`` (as ``torchaudio.compliance.kaldi.fbank``
  computes it; CAM++ and WeSpeaker use it): frames of ``frame_length`` ms every
  ``frame_shift`` ms with Kaldi's edge rule (``snip_edges``: only whole frames), DC offset
  removed, pre-emphasis, a window, a zero-padded power-of-two FFT, the power spectrum through
  triangular filters on Kaldi's mel scale (``1127 ln(1 + f / 700)``), the natural log.
- :class:`SpeechBrainFbank`: SpeechBrain's ``lobes.features.Fbank`` (ECAPA-TDNN): a centred STFT
  with a periodic Hamming window, filters on the HTK mel scale (``2595 log10(1 + f / 700)``),
  decibels clipped ``top_db`` below each item's maximum.

Both take waves (batch, samples) at the model's rate and return (batch, frames, mels); every
item of a batch is computed on its own (batching never changes a value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

WINDOWS = ("povey", "hamming", "hanning", "rectangular")


@dataclass(frozen=True)
class KaldiFbankConfig:
    sample_rate: int = 16000
    num_mel_bins: int = 80
    frame_length: float = 25.0  # window length, ms
    frame_shift: float = 10.0  # hop, ms
    window_type: str = "povey"  # povey | hamming | hanning | rectangular
    preemphasis: float = 0.97  # x[t] - preemphasis * x[t - 1] inside each frame
    remove_dc_offset: bool = True  # subtract each frame's mean first
    round_to_power_of_two: bool = True  # FFT size: next power of two of the window
    low_freq: float = 20.0  # lowest filter edge, Hz
    high_freq: float = 0.0  # highest filter edge, Hz (<= 0: offset from Nyquist)
    scale: float = 1.0  # waves are multiplied by this first (WeSpeaker: 32768, int16 range)


class KaldiFbank(nn.Module):
    """Waves (batch, samples) -> log mel energies (batch, frames, num_mel_bins), with
    ``frames = 1 + (samples - window) // shift`` (0 when shorter than one window)."""

    def __init__(self, config: KaldiFbankConfig = KaldiFbankConfig()) -> None:
        super().__init__()
        if config.window_type not in WINDOWS:
            raise ValueError(f"window_type must be one of {WINDOWS}, got {config.window_type!r}")
        self.config = config
        self.window_size = int(config.sample_rate * config.frame_length * 0.001)
        self.window_shift = int(config.sample_rate * config.frame_shift * 0.001)
        self.fft_size = (
            1 << (self.window_size - 1).bit_length()
            if config.round_to_power_of_two
            else self.window_size
        )
        window = kaldi_window(config.window_type, self.window_size)
        self.register_buffer("window", window, persistent=False)
        mel = kaldi_mel_banks(config, self.fft_size)  # (fft_size // 2 + 1, num_mel_bins)
        self.register_buffer("mel_banks", mel, persistent=False)

    def num_frames(self, num_samples: int) -> int:
        if num_samples < self.window_size:
            return 0
        return 1 + (num_samples - self.window_size) // self.window_shift

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        c = self.config
        if wave.shape[1] < self.window_size:
            return wave.new_zeros(wave.shape[0], 0, c.num_mel_bins, dtype=torch.float32)
        x = (wave.float() * c.scale).unfold(1, self.window_size, self.window_shift)
        # x: (batch, frames, window_size)
        if c.remove_dc_offset:
            x = x - x.mean(dim=2, keepdim=True)
        if c.preemphasis != 0.0:
            previous = torch.cat([x[..., :1], x[..., :-1]], dim=2)  # x[-1] := x[0], as Kaldi
            x = x - c.preemphasis * previous
        x = nn.functional.pad(x * self.window, (0, self.fft_size - self.window_size))
        power = torch.fft.rfft(x).abs().pow(2.0)  # (batch, frames, fft_size // 2 + 1)
        energies = torch.matmul(power, self.mel_banks)  # (batch, frames, num_mel_bins)
        return energies.clamp_min(torch.finfo(torch.float32).eps).log()


def kaldi_window(window_type: str, size: int) -> torch.Tensor:
    """Kaldi's (symmetric) analysis windows, (size,)."""
    if window_type == "povey":
        return torch.hann_window(size, periodic=False).pow(0.85)
    if window_type == "hamming":
        return torch.hamming_window(size, periodic=False, alpha=0.54, beta=0.46)
    if window_type == "hanning":
        return torch.hann_window(size, periodic=False)
    return torch.ones(size)


def kaldi_mel_banks(config: KaldiFbankConfig, fft_size: int) -> torch.Tensor:
    """Kaldi's triangular filters as a matrix (fft_size // 2 + 1, num_mel_bins); the Nyquist
    bin has no weight, as in Kaldi."""
    nyquist = 0.5 * config.sample_rate
    high = config.high_freq if config.high_freq > 0 else nyquist + config.high_freq
    if not 0.0 <= config.low_freq < high <= nyquist:
        raise ValueError(f"mel range [{config.low_freq}, {high}] Hz is outside [0, {nyquist}]")

    # float32 throughout, in torchaudio's order of operations (its values to the last bit)
    def mel(f: torch.Tensor) -> torch.Tensor:
        return 1127.0 * (1.0 + f / 700.0).log()

    mel_low = 1127.0 * math.log(1.0 + config.low_freq / 700.0)
    mel_high = 1127.0 * math.log(1.0 + high / 700.0)
    delta = (mel_high - mel_low) / (config.num_mel_bins + 1)
    index = torch.arange(config.num_mel_bins)[:, None]  # (num_mel_bins, 1)
    left = mel_low + index * delta
    centre = mel_low + (index + 1.0) * delta
    right = mel_low + (index + 2.0) * delta
    fft_mel = mel(config.sample_rate / fft_size * torch.arange(fft_size // 2))[None, :]
    up = (fft_mel - left) / (centre - left)  # (num_mel_bins, fft_size // 2)
    down = (right - fft_mel) / (right - centre)
    banks = torch.minimum(up, down).clamp_min(0.0)
    banks = nn.functional.pad(banks, (0, 1))  # (num_mel_bins, fft_size // 2 + 1)
    return banks.T.contiguous()


@dataclass(frozen=True)
class SpeechBrainFbankConfig:
    sample_rate: int = 16000
    n_mels: int = 80
    n_fft: int = 400
    win_length: float = 25.0  # ms
    hop_length: float = 10.0  # ms
    f_min: float = 0.0  # Hz
    f_max: float | None = None  # Hz (None: sample_rate // 2)
    amin: float = 1e-10  # power floor before the log
    top_db: float = 80.0  # decibels kept below each item's maximum


class SpeechBrainFbank(nn.Module):
    """Waves (batch, samples) -> log mel filterbanks in dB (batch, frames, n_mels), with
    ``frames = 1 + samples // hop`` (a centred STFT, zero-padded by ``n_fft // 2``)."""

    def __init__(self, config: SpeechBrainFbankConfig = SpeechBrainFbankConfig()) -> None:
        super().__init__()
        self.config = config
        self.win_length = int(round(config.sample_rate / 1000.0 * config.win_length))
        self.hop_length = int(round(config.sample_rate / 1000.0 * config.hop_length))
        self.register_buffer("window", torch.hamming_window(self.win_length), persistent=False)
        self.register_buffer("filters", speechbrain_filters(config), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        c = self.config
        spec = torch.stft(
            wave.float(),
            c.n_fft,
            self.hop_length,
            self.win_length,
            self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )  # (batch, n_fft // 2 + 1, frames)
        power = spec.real.square() + spec.imag.square()
        fbanks = torch.matmul(power.transpose(1, 2), self.filters)  # (batch, frames, n_mels)
        db = 10.0 * torch.log10(fbanks.clamp_min(c.amin))
        floor = db.amax(dim=(1, 2), keepdim=True) - c.top_db  # (batch, 1, 1)
        return torch.maximum(db, floor)


def speechbrain_filters(config: SpeechBrainFbankConfig) -> torch.Tensor:
    """SpeechBrain's triangular mel filters, (n_fft // 2 + 1, n_mels)."""
    f_max = config.f_max if config.f_max is not None else config.sample_rate // 2
    if not 0.0 <= config.f_min < f_max:
        raise ValueError(f"SpeechBrain fbank needs 0 <= f_min < f_max, got {config.f_min}, {f_max}")

    def to_mel(hz: float) -> float:
        return 2595.0 * math.log10(1.0 + hz / 700.0)

    mel = torch.linspace(to_mel(config.f_min), to_mel(f_max), config.n_mels + 2)
    hz = 700.0 * (10.0 ** (mel / 2595.0) - 1.0)  # (n_mels + 2,)
    band = (hz[1:] - hz[:-1])[:-1, None]  # (n_mels, 1)
    centre = hz[1:-1, None]  # (n_mels, 1)
    freqs = torch.linspace(0, config.sample_rate // 2, config.n_fft // 2 + 1)[None, :]
    slope = (freqs - centre) / band  # (n_mels, n_fft // 2 + 1)
    return torch.minimum(slope + 1.0, 1.0 - slope).clamp_min(0.0).T.contiguous()
