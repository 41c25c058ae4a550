"""The one interface of every pretrained speaker-embedding model.

A :class:`SpeakerEmbedding` takes 16 kHz waves (batch, samples) and returns embeddings
(batch, dim), compared by cosine. Each model computes its own features (``features``: Kaldi or
SpeechBrain filterbanks, mean-normalised over the item) and runs its network on them
(``embed_features``). ``min_duration`` is the shortest stretch (seconds) the model is meant to
see (the segment length its toolkit's diarization recipe uses); shorter audio still gives an
embedding down to ``min_samples``.

A model travels inside a diarization checkpoint as :meth:`SpeakerEmbedding.checkpoint`:
``{"kind", "config", "model"}`` (plain values and tensors), read back by
:func:`diarize.embeddings.from_checkpoint`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

SAMPLE_RATE = 16000


class SpeakerEmbedding(nn.Module):
    """Base class. Subclasses set ``kind``, ``config`` (a frozen dataclass with a
    ``min_duration`` field), ``dim``, ``frontend`` and define :meth:`embed_features`."""

    kind: ClassVar[str]
    sample_rate: int = SAMPLE_RATE
    dim: int
    config: Any
    frontend: nn.Module
    min_samples: int = 2400  # 0.15 s: fewer frames than the networks' pooling needs

    @property
    def min_duration(self) -> float:
        return float(self.config.min_duration)

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """wave (batch, samples) -> mean-normalised features (batch, frames, feats)."""
        feats = self.frontend(wave)
        return feats - feats.mean(dim=1, keepdim=True)

    def embed_features(self, feats: torch.Tensor) -> torch.Tensor:
        """feats (batch, frames, feats) -> embeddings (batch, dim)."""
        raise NotImplementedError

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """wave (batch, samples) at 16 kHz -> embeddings (batch, dim), not length-normalised."""
        if wave.dim() != 2:
            raise ValueError(f"wave must be (batch, samples), got shape {tuple(wave.shape)}")
        if wave.shape[1] < self.min_samples:
            raise ValueError(
                f"{self.kind} needs at least {self.min_samples} samples "
                f"({self.min_samples / self.sample_rate:.2f} s), got {wave.shape[1]}"
            )
        return self.embed_features(self.features(wave))

    @torch.inference_mode()
    def embed(self, waves: Sequence[torch.Tensor], batch_size: int = 16) -> torch.Tensor:
        """waves: 1-d tensors (samples,) of any lengths -> unit-length embeddings (n, dim).

        Items of equal length share a batch; each item's embedding is the one ``forward``
        gives it alone (no padding is ever mixed into the statistics).
        """
        device = next(self.buffers(), next(self.parameters())).device
        out = torch.zeros(len(waves), self.dim)
        by_length: dict[int, list[int]] = {}
        for i, wave in enumerate(waves):
            by_length.setdefault(int(wave.shape[-1]), []).append(i)
        for indices in by_length.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                batch = torch.stack([waves[i].reshape(-1) for i in chunk]).to(device)
                out[chunk] = self(batch).float().cpu()
        return nn.functional.normalize(out, dim=1)

    def checkpoint(self) -> dict:
        """{"kind", "config" (plain dict), "model" (state dict)}: what a diarization
        checkpoint stores to rebuild this model (:func:`diarize.embeddings.from_checkpoint`)."""
        return {
            "kind": self.kind,
            "config": dataclasses.asdict(self.config),
            "model": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }


def config_from_dict(cls: type, values: dict) -> Any:
    """Rebuild a (possibly nested) frozen config dataclass from :func:`dataclasses.asdict`
    output; unknown keys are an error naming them, tuples come back from lists."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
    kwargs = {}
    for name, value in values.items():
        default = fields[name].default
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = config_from_dict(type(default), value)
        elif isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)
