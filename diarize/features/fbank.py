"""Log-mel filterbank frontend (EEND): log-mel, mean normalisation, splicing, subsampling.

Computed on the fly from raw 16 kHz audio, batched, without gradients. Frame counts follow
one rule (:meth:`FbankFrontend.num_frames`)::

    frames = num_samples // (hop_length * subsampling)

so with the defaults (hop 160, subsampling 10) output frame ``i`` covers
``[i * 0.1 s, (i + 1) * 0.1 s)``. A trailing partial frame is dropped.

Inside, *base* frames come every ``hop_length`` samples: base frame ``j`` is an STFT window
centred on sample ``j * hop_length`` (audio zero-padded by ``n_fft // 2`` on both sides), and an
item of ``n`` samples has ``n // hop_length`` valid base frames. Output frame ``i`` is base frame
``i * subsampling + subsampling // 2`` (the centre of its span) spliced with ``context`` base
frames on each side; base frames outside the item are zeros (the mean after normalisation).
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from diarize.config import FeatureConfig
from diarize.features import Frontend

LOG_FLOOR = 1e-10  # power floor before the log


class FbankFrontend(Frontend):
    """Raw audio -> spliced, subsampled, mean-normalised log-mel frames.

    ``out_dim = n_mels * (2 * context + 1)``; ``frame_shift = hop_length * subsampling / sample_rate``.
    """

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        fb = config.fbank
        if fb.win_length > fb.n_fft:
            raise ValueError(f"fbank win_length {fb.win_length} exceeds n_fft {fb.n_fft}")
        if min(fb.hop_length, fb.subsampling, fb.n_mels) < 1 or fb.context < 0:
            raise ValueError(f"fbank config out of range: {fb}")
        self.config = fb
        self.sample_rate = config.sample_rate
        self.out_dim = fb.n_mels * (2 * fb.context + 1)
        self.frame_shift = fb.hop_length * fb.subsampling / config.sample_rate
        # Derived constants, not weights: kept out of the state_dict.
        window = torch.hann_window(fb.win_length)
        mel = torchaudio.functional.melscale_fbanks(
            fb.n_fft // 2 + 1, 0.0, config.sample_rate / 2, fb.n_mels, config.sample_rate
        )  # (n_fft // 2 + 1, n_mels)
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("mel_fb", mel, persistent=False)

    def num_frames(self, num_samples: int) -> int:
        """Output frames for ``num_samples`` samples: ``num_samples // (hop_length * subsampling)``."""
        return int(num_samples) // (self.config.hop_length * self.config.subsampling)

    @torch.no_grad()
    def forward(
        self, wave: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """wave (batch, samples), lengths (batch,) in samples ->
        feats (batch, frames, out_dim) with ``frames = num_frames(samples)``, frame lengths (batch,).

        Samples beyond an item's length are ignored, so padding never changes its valid frames;
        frames beyond an item's frame length are zeros.
        """
        lengths = check_lengths(wave, lengths)
        feats, base_lengths = self.log_mel(wave, lengths)  # (batch, base frames, n_mels)
        feats = mean_normalise(feats, base_lengths)
        feats = splice(
            feats, self.config.context, self.config.subsampling, self.num_frames(wave.shape[1])
        )
        frame_lengths = lengths // (self.config.hop_length * self.config.subsampling)
        valid = torch.arange(feats.shape[1], device=feats.device) < frame_lengths[:, None]
        return feats * valid[..., None], frame_lengths  # padded frames are zeros

    def log_mel(
        self, wave: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """wave (batch, samples), lengths (batch,) -> log-mel (batch, base frames, n_mels) with
        at least ``samples // hop_length`` base frames, and valid base frames (batch,)."""
        fb = self.config
        samples = torch.arange(wave.shape[1], device=wave.device)
        wave = wave.float() * (samples < lengths[:, None])  # zero the padding
        wave = nn.functional.pad(wave, (fb.n_fft // 2, fb.n_fft // 2))
        spec = torch.stft(
            wave,
            fb.n_fft,
            fb.hop_length,
            fb.win_length,
            self.window,
            center=False,
            return_complex=True,
        )  # (batch, n_fft // 2 + 1, base frames)
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(power.transpose(1, 2), self.mel_fb)  # (batch, base frames, n_mels)
        return mel.clamp_min(LOG_FLOOR).log(), lengths // fb.hop_length


def check_lengths(wave: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Validate wave (batch, samples) and lengths (batch,); ``None`` means every item is full."""
    if wave.dim() != 2:
        raise ValueError(f"wave must be (batch, samples), got shape {tuple(wave.shape)}")
    if lengths is None:
        return torch.full((wave.shape[0],), wave.shape[1], dtype=torch.long, device=wave.device)
    lengths = torch.as_tensor(lengths, device=wave.device).long()
    if lengths.shape != (wave.shape[0],):
        raise ValueError(
            f"lengths must be (batch,) = ({wave.shape[0]},), got {tuple(lengths.shape)}"
        )
    if len(lengths) and (lengths.min() < 0 or lengths.max() > wave.shape[1]):
        raise ValueError(f"lengths must lie in [0, {wave.shape[1]}], got {lengths.tolist()}")
    return lengths


def mean_normalise(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """feats (batch, frames, dim), lengths (batch,) -> feats minus each item's mean over its
    valid frames; padded frames become zero."""
    valid = (torch.arange(feats.shape[1], device=feats.device) < lengths[:, None])[..., None]
    total = (feats * valid).sum(dim=1, keepdim=True)  # (batch, 1, dim)
    mean = total / lengths.clamp_min(1)[:, None, None]
    return (feats - mean) * valid


def splice(feats: torch.Tensor, context: int, subsampling: int, frames: int) -> torch.Tensor:
    """feats (batch, base frames, dim) -> (batch, frames, (2 * context + 1) * dim).

    Output frame ``i`` is base frames ``j - context .. j + context`` with
    ``j = i * subsampling + subsampling // 2``, concatenated in time order (base frame
    ``j - context + k`` fills columns ``k * dim .. (k + 1) * dim``); frames outside are zeros.
    """
    centres = torch.arange(frames, device=feats.device) * subsampling + subsampling // 2
    needed = (centres[-1].item() + context + 1) if frames else 0
    right = max(needed - feats.shape[1], 0) + context
    padded = nn.functional.pad(
        feats, (0, 0, context, right)
    )  # (batch, context + base + right, dim)
    offsets = torch.arange(2 * context + 1, device=feats.device)
    index = centres[:, None] + offsets[None, :]  # (frames, 2 * context + 1), into padded
    spliced = padded[:, index]  # (batch, frames, 2 * context + 1, dim)
    return spliced.flatten(2)  # (batch, frames, (2 * context + 1) * dim)
