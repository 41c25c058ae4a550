"""CAM++ (Wang et al., Interspeech 2023), the speaker-embedding network of 3D-Speaker.

Written here from the paper and 3D-Speaker's layout so that its published state dicts
(``campplus_cn_en_common.pt``, ``campplus_cn_common.bin``, ``campplus_voxceleb.bin``) load as
they are: the module and parameter names are 3D-Speaker's.

Input: 80 Kaldi log-mel bands (25 ms povey windows every 10 ms, waves in [-1, 1]), minus their
mean over the item. Network: a 2-d convolutional front (``head``: two residual stages that
halve the frequency axis, then a stride-2 convolution; 32 channels x 10 bands become 320
channels), a stride-2 TDNN, three densely connected blocks of context-aware masking layers
(each layer's output gated by a sigmoid of its utterance mean plus its 100-frame segment mean)
with transitions halving the channels, mean and standard deviation over time, and a linear
layer with a parameter-free batch norm to the embedding.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from diarize.embeddings.base import SpeakerEmbedding
from diarize.embeddings.fbank import KaldiFbank, KaldiFbankConfig

BLOCKS = ((12, 3, 1), (24, 3, 2), (16, 3, 2))  # (layers, kernel, dilation) per dense block
SEGMENT = 100  # frames of the segment pooling in the masking layers


@dataclass(frozen=True)
class CAMPPlusConfig:
    feat_dim: int = 80  # mel bands
    embedding_size: int = 192  # 192 (zh / zh-en common models), 512 (VoxCeleb)
    growth_rate: int = 32  # channels each dense layer adds
    bn_size: int = 4  # bottleneck width of a dense layer, in growth rates
    init_channels: int = 128  # channels of the first TDNN
    head_channels: int = 32  # channels of the 2-d front
    min_duration: float = 1.5  # seconds (3D-Speaker diarization embeds 1.5 s segments)
    fbank: KaldiFbankConfig = KaldiFbankConfig()


def bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict([("batchnorm", nn.BatchNorm1d(channels)), ("relu", nn.ReLU())])
    )


class ResBlock2d(nn.Module):
    """3x3 residual block striding the frequency axis only: (batch, in, freq, time) ->
    (batch, out, freq / stride, time)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=(stride, 1), bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class FCM(nn.Module):
    """The 2-d front: (batch, feat_dim, time) -> (batch, channels * feat_dim / 8, time)."""

    def __init__(self, channels: int, feat_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.layer1 = nn.Sequential(
            ResBlock2d(channels, channels, 2), ResBlock2d(channels, channels, 1)
        )
        self.layer2 = nn.Sequential(
            ResBlock2d(channels, channels, 2), ResBlock2d(channels, channels, 1)
        )
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.out_channels = channels * (feat_dim // 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x[:, None])))  # (batch, ch, feat_dim, time)
        out = self.layer2(self.layer1(out))
        out = torch.relu(self.bn2(self.conv2(out)))  # (batch, ch, feat_dim / 8, time)
        return out.flatten(1, 2)  # (batch, ch * feat_dim / 8, time)


class TDNNLayer(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.linear = nn.Conv1d(in_ch, out_ch, kernel, stride, padding=kernel // 2, bias=False)
        self.nonlinear = bn_relu(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x))


class CAMLayer(nn.Module):
    """Context-aware masking: a dilated convolution whose output channels are gated by a
    sigmoid of (utterance mean + 100-frame segment mean) of the input."""

    def __init__(self, bn_ch: int, out_ch: int, kernel: int, dilation: int) -> None:
        super().__init__()
        pad = (kernel - 1) // 2 * dilation
        self.linear_local = nn.Conv1d(
            bn_ch, out_ch, kernel, padding=pad, dilation=dilation, bias=False
        )
        self.linear1 = nn.Conv1d(bn_ch, bn_ch // 2, 1)
        self.linear2 = nn.Conv1d(bn_ch // 2, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, bn_ch, time) -> (batch, out_ch, time)."""
        frames = x.shape[-1]
        segments = nn.functional.avg_pool1d(x, SEGMENT, SEGMENT, ceil_mode=True)
        segments = segments.repeat_interleave(SEGMENT, dim=-1)[..., :frames]
        context = x.mean(-1, keepdim=True) + segments  # (batch, bn_ch, time)
        gate = torch.sigmoid(self.linear2(torch.relu(self.linear1(context))))
        return self.linear_local(x) * gate


class CAMDenseTDNNLayer(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, bn_ch: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.nonlinear1 = bn_relu(in_ch)
        self.linear1 = nn.Conv1d(in_ch, bn_ch, 1, bias=False)
        self.nonlinear2 = bn_relu(bn_ch)
        self.cam_layer = CAMLayer(bn_ch, out_ch, kernel, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class CAMDenseTDNNBlock(nn.ModuleDict):
    """Dense block: each layer's output is appended to its input's channels."""

    def __init__(
        self, layers: int, in_ch: int, growth: int, bn_ch: int, kernel: int, dilation: int
    ) -> None:
        super().__init__()
        for i in range(layers):
            self[f"tdnnd{i + 1}"] = CAMDenseTDNNLayer(
                in_ch + i * growth, growth, bn_ch, kernel, dilation
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.values():
            x = torch.cat([x, layer(x)], dim=1)
        return x


class TransitLayer(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.nonlinear = bn_relu(in_ch)
        self.linear = nn.Conv1d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.nonlinear(x))


class StatsPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, ch, time) -> mean and unbiased std over time (batch, 2 * ch)."""
        return torch.cat([x.mean(dim=-1), x.std(dim=-1)], dim=-1)


class DenseLayer(nn.Module):
    """Linear map to the embedding, then batch norm without affine parameters."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(in_ch, out_ch, 1, bias=False)
        self.nonlinear = nn.Sequential(
            OrderedDict([("batchnorm", nn.BatchNorm1d(out_ch, affine=False))])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, in_ch) -> (batch, out_ch)."""
        return self.nonlinear(self.linear(x[..., None])[..., 0])


class CAMPPlus(SpeakerEmbedding):
    kind = "campplus"

    def __init__(self, config: CAMPPlusConfig = CAMPPlusConfig()) -> None:
        super().__init__()
        self.config = config
        self.dim = config.embedding_size
        self.frontend = KaldiFbank(config.fbank)
        self.head = FCM(config.head_channels, config.feat_dim)
        self.xvector = nn.Sequential(
            OrderedDict([("tdnn", TDNNLayer(self.head.out_channels, config.init_channels, 5, 2))])
        )
        channels = config.init_channels
        for i, (layers, kernel, dilation) in enumerate(BLOCKS, start=1):
            bn_ch = config.bn_size * config.growth_rate
            block = CAMDenseTDNNBlock(layers, channels, config.growth_rate, bn_ch, kernel, dilation)
            self.xvector.add_module(f"block{i}", block)
            channels += layers * config.growth_rate
            self.xvector.add_module(f"transit{i}", TransitLayer(channels, channels // 2))
            channels //= 2
        self.xvector.add_module("out_nonlinear", bn_relu(channels))
        self.xvector.add_module("stats", StatsPool())
        self.xvector.add_module("dense", DenseLayer(2 * channels, config.embedding_size))

    def embed_features(self, feats: torch.Tensor) -> torch.Tensor:
        """feats (batch, frames, feat_dim) -> (batch, embedding_size)."""
        return self.xvector(self.head(feats.transpose(1, 2)))


def campplus_config(state: dict[str, torch.Tensor], **overrides) -> CAMPPlusConfig:
    """The configuration a 3D-Speaker CAM++ state dict was trained with, read from its shapes."""
    head = state["head.conv1.weight"].shape[0]
    growth, bn_ch = state["xvector.block1.tdnnd1.cam_layer.linear_local.weight"].shape[:2]
    tdnn_out, tdnn_in = state["xvector.tdnn.linear.weight"].shape[:2]
    feat_dim = tdnn_in // head * 8
    overrides.setdefault("fbank", KaldiFbankConfig(num_mel_bins=feat_dim))
    return CAMPPlusConfig(
        feat_dim=feat_dim,
        embedding_size=state["xvector.dense.linear.weight"].shape[0],
        growth_rate=growth,
        bn_size=bn_ch // growth,
        init_channels=tdnn_out,
        head_channels=head,
        **overrides,
    )
