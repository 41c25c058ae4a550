"""Frontends: raw audio in, frames out. The rest of the model does not care which one.

Every frontend is a :class:`Frontend` module; :func:`build_frontend` picks one from a
:class:`~diarize.config.FeatureConfig`. Frame ``i`` of the output stands for the time
``[i * frame_shift, (i + 1) * frame_shift)``; training labels are sampled at the centre of
that span (see :func:`diarize.data.labels.frame_labels`).
"""

from __future__ import annotations

import torch
from torch import nn

from diarize.config import FeatureConfig


class Frontend(nn.Module):
    """Base class. Subclasses set ``frame_shift`` (seconds) and ``out_dim``."""

    frame_shift: float
    out_dim: int

    def num_frames(self, num_samples: int) -> int:
        """Output frames for ``num_samples`` input samples."""
        raise NotImplementedError

    def forward(
        self, wave: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """wave (batch, samples), lengths (batch,) in samples ->
        feats (batch, frames, out_dim), frame lengths (batch,)."""
        raise NotImplementedError


def build_frontend(config: FeatureConfig) -> Frontend:
    if config.kind == "fbank":
        from diarize.features.fbank import FbankFrontend

        return FbankFrontend(config)
    if config.kind == "wavlm":
        from diarize.features.wavlm import WavLMFrontend

        return WavLMFrontend(config)
    if config.kind == "campplus":
        from diarize.features.campplus import CAMPPlusFrontend

        return CAMPPlusFrontend(config)
    raise ValueError(f"unknown frontend kind {config.kind!r} (fbank | wavlm | campplus)")
