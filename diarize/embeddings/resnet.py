"""WeSpeaker's ResNet speaker-embedding networks (ResNet34 in pyannote 3.x pipelines).

Written here with WeSpeaker's module and parameter names, so that its state dicts load as
they are: WeSpeaker's own ``avg_model.pt`` (plain state dict; the training head
``projection.*`` is dropped) and pyannote's ``pytorch_model.bin`` of the same model (a
Lightning checkpoint whose ``state_dict`` keys carry a ``resnet.`` prefix, with its fbank
settings in ``hyper_parameters``).

Input: 80 Kaldi log-mel bands of waves scaled to the int16 range (WeSpeaker: povey windows;
pyannote: Hamming), minus their mean over the item. Network: a 3x3 convolution, four residual
stages (32, 64, 128, 256 channels; the last three halve frequency and time), mean and
standard deviation over time of every channel x band, a linear layer to the embedding (and,
for two-layer models, ReLU, parameter-free batch norm and a second linear layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from diarize.embeddings.base import SpeakerEmbedding
from diarize.embeddings.fbank import KaldiFbank, KaldiFbankConfig

WESPEAKER_FBANK = KaldiFbankConfig(scale=32768.0)  # povey window, as WeSpeaker's CLI
PYANNOTE_FBANK = KaldiFbankConfig(scale=32768.0, window_type="hamming")


@dataclass(frozen=True)
class ResNetConfig:
    num_blocks: tuple[int, ...] = (3, 4, 6, 3)  # residual blocks per stage (ResNet34)
    bottleneck: bool = False  # 1x1-3x3-1x1 blocks, 4x wider outputs (ResNet152/221/293)
    m_channels: int = 32  # channels of the first stage
    feat_dim: int = 80  # mel bands
    embed_dim: int = 256
    two_emb_layer: bool = False  # a second linear layer after the first
    std_eps: float = 1e-7  # added to the variance before the square root (pyannote: 0)
    min_duration: float = 1.5  # seconds (WeSpeaker diarization embeds 1.5 s segments)
    fbank: KaldiFbankConfig = WESPEAKER_FBANK


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        return torch.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


def shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    """Identity, or a strided 1x1 convolution + batch norm where the shape changes."""
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False), nn.BatchNorm2d(out_planes)
    )


class ResNet(SpeakerEmbedding):
    kind = "resnet"

    def __init__(self, config: ResNetConfig = ResNetConfig()) -> None:
        super().__init__()
        self.config = config
        self.dim = config.embed_dim
        self.frontend = KaldiFbank(config.fbank)
        block = Bottleneck if config.bottleneck else BasicBlock
        m = config.m_channels
        self.conv1 = nn.Conv2d(1, m, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(m)
        in_planes = m
        for i, blocks in enumerate(config.num_blocks):
            planes, stride = m * 2**i, 1 if i == 0 else 2
            layers = []
            for j in range(blocks):
                layers.append(block(in_planes, planes, stride if j == 0 else 1))
                in_planes = planes * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
        stats_dim = config.feat_dim // 8 * m * 8 * block.expansion
        self.seg_1 = nn.Linear(2 * stats_dim, config.embed_dim)
        if config.two_emb_layer:
            self.seg_bn_1 = nn.BatchNorm1d(config.embed_dim, affine=False)
            self.seg_2 = nn.Linear(config.embed_dim, config.embed_dim)

    def embed_features(self, feats: torch.Tensor) -> torch.Tensor:
        """feats (batch, frames, feat_dim) -> (batch, embed_dim)."""
        out = torch.relu(self.bn1(self.conv1(feats.transpose(1, 2)[:, None])))
        for i in range(len(self.config.num_blocks)):
            out = getattr(self, f"layer{i + 1}")(out)  # (batch, ch, bands, time)
        out = out.flatten(1, 2)  # (batch, ch * bands, time)
        std = torch.sqrt(out.var(dim=-1) + self.config.std_eps)
        embedding = self.seg_1(torch.cat([out.mean(dim=-1), std], dim=1))
        if self.config.two_emb_layer:
            embedding = self.seg_2(self.seg_bn_1(torch.relu(embedding)))
        return embedding


def resnet_config(state: dict[str, torch.Tensor], **overrides) -> ResNetConfig:
    """The configuration of a WeSpeaker ResNet state dict (no ``resnet.`` prefix), from its
    keys and shapes."""
    num_blocks = tuple(
        len({k.split(".")[1] for k in state if k.startswith(f"layer{i}.")}) for i in range(1, 5)
    )
    m = state["conv1.weight"].shape[0]
    bottleneck = "layer1.0.conv3.weight" in state
    embed_dim, stats2 = state["seg_1.weight"].shape
    feat_dim = stats2 // 2 // (m * 8 * (4 if bottleneck else 1)) * 8
    overrides.setdefault("fbank", KaldiFbankConfig(scale=32768.0, num_mel_bins=feat_dim))
    return ResNetConfig(
        num_blocks=num_blocks,
        bottleneck=bottleneck,
        m_channels=m,
        feat_dim=feat_dim,
        embed_dim=embed_dim,
        two_emb_layer="seg_2.weight" in state,
        **overrides,
    )
