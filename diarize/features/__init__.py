"""Frontends: raw audio in, frames out. The rest of the model does not care which one.

Every frontend is a :class:`Frontend` module; :func:`build_frontend` picks one from a
:class:`~diarize.config.FeatureConfig`. Frame ``i`` of the output stands for the time
``[i * frame_shift, (i + 1) * frame_shift)``; training labels are sampled at the centre of
that span (see :func:`diarize.data.labels.frame_labels`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


class CachedFrontend(Frontend):
    """A frozen frontend whose states a feature cache (:mod:`diarize.features.cache`) can
    stand in for: within :meth:`precomputed`, ``forward`` takes them instead of running the
    network. Subclasses set ``cached_name`` and ``cached_layers`` (the states' second
    dimension) and may refuse in :meth:`check_precomputable`."""

    cached_name: str = "states"  # what the states are called in errors
    cached_layers: int = 1
    _precomputed: torch.Tensor | None = None

    def check_precomputable(self) -> None:
        """Raise a DiarizeError where precomputed states would not be what the network gives."""

    def frozen_states(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """wave (batch, samples), lengths (batch,) -> the states that stand in for the network
        (batch, cached_layers, frames, out_dim), zero on padded frames: what the feature cache
        stores and what :meth:`precomputed` takes."""
        raise NotImplementedError

    @contextlib.contextmanager
    def precomputed(self, states: torch.Tensor) -> Iterator[None]:
        """Within the block, calls take ``states`` (batch, cached_layers, frames, out_dim), the
        feature cache's layout, instead of running the network."""
        self.check_precomputable()
        self._precomputed = states
        try:
            yield
        finally:
            self._precomputed = None

    def take_precomputed(
        self, wave: torch.Tensor, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The precomputed states for ``wave`` (batch, samples) and ``lengths`` (batch,),
        their shape checked: states (batch, cached_layers, frames, out_dim), frame lengths
        (batch,), padded (batch, frames) bool, True beyond each item's frames."""
        from diarize.features.fbank import check_lengths

        states, frames = self._precomputed, self.num_frames(wave.shape[1])
        expected = (wave.shape[0], self.cached_layers, frames, self.out_dim)
        if tuple(states.shape) != expected:
            raise ValueError(
                f"precomputed {self.cached_name} have shape {tuple(states.shape)}, expected "
                f"{expected} for wave {tuple(wave.shape)}"
            )
        frame_lengths = check_lengths(wave, lengths) // self.samples_per_frame
        padded = torch.arange(frames, device=wave.device) >= frame_lengths[:, None]
        return states, frame_lengths, padded


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
