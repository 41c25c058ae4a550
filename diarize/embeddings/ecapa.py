"""ECAPA-TDNN (Desplanques et al., Interspeech 2020) as SpeechBrain trains and distributes it.

Written here with SpeechBrain's module and parameter names, so that ``embedding_model.ckpt``
(a plain state dict) loads as it is; the architecture comes from the ``hyperparams.yaml``
beside it (:func:`read_hyperparams`: a small reader of its tags, SpeechBrain is not needed),
or from the weights' shapes with SpeechBrain's default dilations when there is none.

Input: SpeechBrain's 80-band filterbank in dB (:class:`~diarize.embeddings.fbank.SpeechBrainFbank`)
minus its mean over the item (``InputNormalization(norm_type="sentence", std_norm=False)``).
Network: a TDNN (conv, ReLU, batch norm), three SE-Res2Net blocks (dilated Res2Net
convolutions with squeeze-excitation and a residual connection), the concatenation of their
outputs through a TDNN, attentive statistics pooling with global context, batch norm and a
linear layer. Convolutions pad "same" by reflection, as SpeechBrain's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn

from diarize.embeddings.base import SpeakerEmbedding
from diarize.embeddings.fbank import SpeechBrainFbank, SpeechBrainFbankConfig
from diarize.utils import DiarizeError


@dataclass(frozen=True)
class ECAPAConfig:
    input_size: int = 80  # filterbank bands
    channels: tuple[int, ...] = (1024, 1024, 1024, 1024, 3072)  # spkrec-ecapa-voxceleb
    kernel_sizes: tuple[int, ...] = (5, 3, 3, 3, 1)
    dilations: tuple[int, ...] = (1, 2, 3, 4, 1)
    attention_channels: int = 128
    res2net_scale: int = 8
    se_channels: int = 128
    global_context: bool = True
    lin_neurons: int = 192  # embedding size
    min_duration: float = 3.0  # seconds (SpeechBrain's AMI diarization: 3 s segments)
    fbank: SpeechBrainFbankConfig = SpeechBrainFbankConfig()


class Conv1d(nn.Module):
    """SpeechBrain's Conv1d: stride 1, "same" length by reflection padding."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, dilation: int = 1) -> None:
        super().__init__()
        self.pad = dilation * (kernel - 1) // 2
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = nn.functional.pad(x, (self.pad, self.pad), mode="reflect")
        return self.conv(x)


class BatchNorm1d(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class TDNNBlock(nn.Module):
    """Convolution, ReLU, then batch norm: (batch, in, time) -> (batch, out, time)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.conv = Conv1d(in_ch, out_ch, kernel, dilation)
        self.norm = BatchNorm1d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.relu(self.conv(x)))


class Res2NetBlock(nn.Module):
    """Channels cut into ``scale`` groups; group i > 0 goes through a TDNN after adding the
    previous group's output (the first group passes unchanged)."""

    def __init__(self, channels: int, scale: int, kernel: int, dilation: int) -> None:
        super().__init__()
        width = channels // scale
        self.scale = scale
        self.blocks = nn.ModuleList(
            TDNNBlock(width, width, kernel, dilation) for _ in range(scale - 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = torch.chunk(x, self.scale, dim=1)
        out = [groups[0]]
        for i, block in enumerate(self.blocks, start=1):
            out.append(block(groups[i] if i == 1 else groups[i] + out[-1]))
        return torch.cat(out, dim=1)


class SEBlock(nn.Module):
    """Squeeze-excitation: channels scaled by a sigmoid of the time-averaged input."""

    def __init__(self, channels: int, se_channels: int) -> None:
        super().__init__()
        self.conv1 = Conv1d(channels, se_channels, 1)
        self.conv2 = Conv1d(se_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.relu(self.conv1(x.mean(dim=2, keepdim=True)))
        return torch.sigmoid(self.conv2(s)) * x


class SERes2NetBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, config: ECAPAConfig, i: int) -> None:
        super().__init__()
        self.tdnn1 = TDNNBlock(in_ch, out_ch, 1, 1)
        self.res2net_block = Res2NetBlock(
            out_ch, config.res2net_scale, config.kernel_sizes[i], config.dilations[i]
        )
        self.tdnn2 = TDNNBlock(out_ch, out_ch, 1, 1)
        self.se_block = SEBlock(out_ch, config.se_channels)
        self.shortcut = Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut(x) if self.shortcut is not None else x
        return self.se_block(self.tdnn2(self.res2net_block(self.tdnn1(x)))) + residual


class AttentiveStatisticsPooling(nn.Module):
    """(batch, ch, time) -> attention-weighted mean and std (batch, 2 * ch, 1)."""

    def __init__(self, channels: int, attention: int, global_context: bool) -> None:
        super().__init__()
        self.global_context = global_context
        self.tdnn = TDNNBlock(channels * (3 if global_context else 1), attention, 1, 1)
        self.conv = Conv1d(attention, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[-1]
        attn = x
        if self.global_context:
            uniform = torch.full_like(x[:, :1], 1.0 / frames)  # (batch, 1, time)
            mean, std = weighted_stats(x, uniform)
            attn = torch.cat([x, mean.expand(-1, -1, frames), std.expand(-1, -1, frames)], 1)
        weights = torch.softmax(self.conv(torch.tanh(self.tdnn(attn))), dim=2)
        mean, std = weighted_stats(x, weights)
        return torch.cat([mean, std], dim=1)


def weighted_stats(x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (batch, ch, time), weights summing to 1 over time -> mean, std (batch, ch, 1)."""
    mean = (w * x).sum(dim=2, keepdim=True)
    var = (w * (x - mean).pow(2)).sum(dim=2, keepdim=True)
    return mean, var.clamp_min(1e-12).sqrt()


class ECAPA(SpeakerEmbedding):
    kind = "ecapa"

    def __init__(self, config: ECAPAConfig = ECAPAConfig()) -> None:
        super().__init__()
        if not len(config.channels) == len(config.kernel_sizes) == len(config.dilations):
            raise ValueError(f"ECAPA channels, kernel_sizes, dilations differ in length: {config}")
        self.config = config
        self.dim = config.lin_neurons
        self.frontend = SpeechBrainFbank(config.fbank)
        ch = config.channels
        self.blocks = nn.ModuleList(
            [TDNNBlock(config.input_size, ch[0], config.kernel_sizes[0], config.dilations[0])]
        )
        for i in range(1, len(ch) - 1):
            self.blocks.append(SERes2NetBlock(ch[i - 1], ch[i], config, i))
        self.mfa = TDNNBlock(sum(ch[1:-1]), ch[-1], config.kernel_sizes[-1], config.dilations[-1])
        self.asp = AttentiveStatisticsPooling(
            ch[-1], config.attention_channels, config.global_context
        )
        self.asp_bn = BatchNorm1d(2 * ch[-1])
        self.fc = Conv1d(2 * ch[-1], config.lin_neurons, 1)

    def embed_features(self, feats: torch.Tensor) -> torch.Tensor:
        """feats (batch, frames, input_size) -> (batch, lin_neurons)."""
        x = feats.transpose(1, 2)  # (batch, input_size, frames)
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        x = self.mfa(torch.cat(outputs[1:], dim=1))  # (batch, channels[-1], frames)
        return self.fc(self.asp_bn(self.asp(x)))[..., 0]


class _HyperLoader(yaml.SafeLoader):
    """YAML loader that keeps HyperPyYAML's tags (``!new:``, ``!name:``, ``!ref``, ...) as
    :class:`_Tagged` values instead of building objects."""


@dataclass(frozen=True)
class _Tagged:
    tag: str  # e.g. "new:speechbrain.lobes.features.Fbank", "ref"
    value: object


def _construct_tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> _Tagged:
    if isinstance(node, yaml.MappingNode):
        return _Tagged(suffix, loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return _Tagged(suffix, loader.construct_sequence(node, deep=True))
    return _Tagged(suffix, loader.construct_scalar(node))


_HyperLoader.add_multi_constructor("!", _construct_tagged)


def read_hyperparams(path: Path) -> dict:
    """The ECAPA and filterbank settings of a SpeechBrain ``hyperparams.yaml``:
    ``{"ecapa": {...ECAPA_TDNN arguments}, "fbank": {...Fbank arguments}}`` with ``!ref``
    values resolved; a mapping not found is ``{}``."""
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_HyperLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise DiarizeError(f"{path}: cannot read SpeechBrain hyperparams ({e})") from None
    if not isinstance(doc, dict):
        raise DiarizeError(f"{path}: not a SpeechBrain hyperparams file (no mapping)")
    found = {"ecapa": {}, "fbank": {}}
    for value in doc.values():
        if isinstance(value, _Tagged) and isinstance(value.value, dict):
            if value.tag.endswith("ECAPA_TDNN.ECAPA_TDNN"):
                found["ecapa"] = {k: _resolve(v, doc, path) for k, v in value.value.items()}
            elif value.tag.endswith("lobes.features.Fbank"):
                found["fbank"] = {k: _resolve(v, doc, path) for k, v in value.value.items()}
    return found


def _resolve(value: object, doc: dict, path: Path) -> object:
    """``!ref <name>`` -> the top-level value ``name``; lists element-wise."""
    if isinstance(value, list):
        return [_resolve(v, doc, path) for v in value]
    if not isinstance(value, _Tagged):
        return value
    text = str(value.value).strip()
    if value.tag == "ref" and text.startswith("<") and text.endswith(">") and text[1:-1] in doc:
        return _resolve(doc[text[1:-1]], doc, path)
    raise DiarizeError(f"{path}: cannot resolve !{value.tag} {text} (only plain !ref <key>)")


ECAPA_KEYS = (
    "input_size",
    "channels",
    "kernel_sizes",
    "dilations",
    "attention_channels",
    "res2net_scale",
    "se_channels",
    "global_context",
    "lin_neurons",
)
FBANK_KEYS = ("sample_rate", "n_mels", "n_fft", "win_length", "hop_length", "f_min", "f_max")


def ecapa_config(state: dict[str, torch.Tensor], hyperparams: dict | None) -> ECAPAConfig:
    """The ECAPA-TDNN configuration: from ``hyperparams`` (:func:`read_hyperparams`) where it
    says, else from the weights' shapes (dilations: SpeechBrain's defaults)."""
    values = shapes_config(state)
    hp = hyperparams or {"ecapa": {}, "fbank": {}}
    for key, value in hp["ecapa"].items():
        if key in ECAPA_KEYS:
            values[key] = tuple(value) if isinstance(value, list) else value
    fbank = {k: v for k, v in hp["fbank"].items() if k in FBANK_KEYS}
    return ECAPAConfig(**values, fbank=SpeechBrainFbankConfig(**fbank))


def shapes_config(state: dict[str, torch.Tensor]) -> dict:
    """ECAPAConfig fields read from a SpeechBrain ECAPA-TDNN state dict's keys and shapes."""
    first = state["blocks.0.conv.conv.weight"]  # (channels[0], input_size, kernel)
    mfa = state["mfa.conv.conv.weight"]
    se_blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("blocks.")})[1:]
    res2net = [f"blocks.{i}.res2net_block.blocks.0.conv.conv.weight" for i in se_blocks]
    groups = {k.split(".")[4] for k in state if k.startswith("blocks.1.res2net_block.blocks.")}
    channels = (
        first.shape[0],
        *(state[f"blocks.{i}.tdnn1.conv.conv.weight"].shape[0] for i in se_blocks),
    )
    values = {
        "input_size": first.shape[1],
        "channels": (*channels, mfa.shape[0]),
        "kernel_sizes": (first.shape[2], *(state[k].shape[2] for k in res2net), mfa.shape[2]),
        "attention_channels": state["asp.tdnn.conv.conv.weight"].shape[0],
        "res2net_scale": len(groups) + 1,
        "se_channels": state["blocks.1.se_block.conv1.conv.weight"].shape[0],
        "global_context": state["asp.tdnn.conv.conv.weight"].shape[1] == 3 * mfa.shape[0],
        "lin_neurons": state["fc.conv.weight"].shape[0],
    }
    if len(values["channels"]) != len(ECAPAConfig.dilations):
        values["dilations"] = (1,) * len(values["channels"])
    return values
