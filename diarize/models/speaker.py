"""Speaker encoder: a fixed-size embedding of who is speaking, for linking speakers across
windows.

EEND-EDA's attractors name the speakers of one window; linking them across the windows of a
long recording needs to know which local speakers are the same person. The hand-made voice
profiles of :mod:`diarize.features.voice` (average spectrum and pitch) confuse similar
voices; this small network, trained to tell persons apart (additive angular margin softmax),
does better on persons it never heard (README, "Long recordings").

Input: :func:`diarize.features.voice.speaker_frames` (10 ms frames: 64 log-mel bands, log
F0, voicing) of the frames where one speaker talks alone. Network: four 1-d convolutions
(kernel 5, 3, 3, 1; dilation 1, 2, 3, 1) with ReLU and batch norm, mean and standard
deviation over time, a linear layer to the embedding; compared by cosine.

A trained encoder travels inside a diarization checkpoint (key ``"speaker"``: its config and
weights, see :mod:`diarize.checkpoint`); ``tools/train_speaker_encoder.py`` trains one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from diarize.features.voice import SPEAKER_MELS


@dataclass(frozen=True)
class SpeakerConfig:
    inputs: int = SPEAKER_MELS + 2  # features per frame (speaker_frames)
    channels: int = 256
    embedding: int = 128


class SpeakerEncoder(nn.Module):
    def __init__(self, config: SpeakerConfig = SpeakerConfig()):
        super().__init__()
        self.config = config
        # Feature normalisation, set from the training data (see `fit_normalisation`).
        self.register_buffer("mean", torch.zeros(config.inputs))
        self.register_buffer("std", torch.ones(config.inputs))
        layers: list[nn.Module] = []
        for i, (kernel, dilation) in enumerate([(5, 1), (3, 2), (3, 3), (1, 1)]):
            layers += [
                nn.Conv1d(
                    config.inputs if i == 0 else config.channels,
                    config.channels,
                    kernel,
                    dilation=dilation,
                    padding=dilation * (kernel - 1) // 2,
                ),
                nn.ReLU(),
                nn.BatchNorm1d(config.channels),
            ]
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(2 * config.channels, config.embedding)

    def fit_normalisation(self, frames: torch.Tensor) -> None:
        """frames (n, inputs): set the input mean and standard deviation."""
        self.mean.copy_(frames.mean(0))
        self.std.copy_(frames.std(0) + 1e-5)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (batch, time, inputs) -> embeddings (batch, embedding), not normalised."""
        h = self.net(((frames - self.mean) / self.std).transpose(1, 2))  # (batch, ch, time)
        return self.out(torch.cat([h.mean(2), h.std(2, unbiased=False)], dim=1))

    @torch.inference_mode()
    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (time, inputs) of one speaker -> unit-length embedding (embedding,)."""
        return nn.functional.normalize(self(frames[None]), dim=1)[0]


class AngularMarginHead(nn.Module):
    """Additive angular margin softmax (ArcFace): logits ``scale x cos(theta + margin)`` for
    the true class, ``scale x cos(theta)`` for the others."""

    def __init__(self, embedding: int, classes: int, scale: float = 30.0, margin: float = 0.2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, embedding) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeddings (batch, embedding), labels (batch,) -> loss (scalar), accuracy."""
        cos = (
            nn.functional.normalize(embeddings, dim=1)
            @ nn.functional.normalize(self.weight, dim=1).T
        )  # (batch, classes)
        theta = torch.acos(cos.clamp(-1 + 1e-6, 1 - 1e-6))
        target = nn.functional.one_hot(labels, cos.shape[1]).bool()
        logits = self.scale * torch.where(target, torch.cos(theta + self.margin), cos)
        accuracy = (cos.argmax(1) == labels).float().mean()
        return nn.functional.cross_entropy(logits, labels), accuracy


def cosine_schedule(step: int, steps: int, warmup: int = 100) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to 0."""
    return min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / steps))
