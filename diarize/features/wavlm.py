"""WavLM frontend: a learnable softmax-weighted sum of WavLM's hidden states, pooled in time.

Hidden state 0 is the Transformer's input (the convolutional features, projected, plus the
convolutional position embedding); hidden state ``l`` is the output of Transformer layer
``l`` (the same list as ``transformers``' ``output_hidden_states``). Each is layer-normalised
(no parameters) before the weighted sum, so the weights compare layers, not their scales;
:meth:`WavLMFrontend.layer_weights` reports them after training.

``out_dim`` is WavLM's hidden size (768 for base / base_plus, 1024 for large): the diarization
model projects it to its own ``d_model``, so no extra projection is done here.

Each hidden state is layer-normalised, then averaged to ``frame_shift``, then weighted
(:meth:`WavLMFrontend.mix`): the average and the weighted sum are both linear, so this is the
weighted sum pooled; the per-frame layer norm has to come first.

Timing: the audio is zero-padded by ``(receptive field - hop) / 2`` = 40 samples on each side,
so WavLM frame ``j`` is centred on ``[j, j + 1) * 20 ms`` and ``n`` samples give exactly
``n // 320`` frames; ``k = frame_shift / 20 ms`` of them are averaged into one output frame,
hence ``num_frames(n) = n // (frame_shift * 16000)``.

Freeze modes (``features.wavlm.freeze``):

- ``all``: WavLM is frozen and kept in eval mode (no dropout), run without gradients; only
  the layer weights train. What they weigh (:meth:`WavLMFrontend.layer_states`) then never
  changes, so training may read it from disk (``train.feature_cache``,
  :mod:`diarize.features.cache`, given to the frontend with :meth:`WavLMFrontend.precomputed`).
- ``cnn``: the convolutional feature extractor is frozen; the Transformer is fine-tuned.
- ``none``: everything is fine-tuned.

Padding: items shorter than the batch get WavLM's key padding mask. WavLM Base(+) normalises
its first convolution over time (GroupNorm), so a padded item is not bit-identical to the same
item alone; training chunks have equal lengths anyway.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from torchaudio.models import Wav2Vec2Model

from diarize.config import FeatureConfig
from diarize.features import CachedFrontend
from diarize.features.wavlm_import import (
    SHAPES,
    build_wavlm,
    describe_arch,
    load_weights,
    read_wavlm,
    same_arch,
)
from diarize.utils import DiarizeError

SAMPLE_RATE = 16000
HOP = 320  # WavLM samples per frame (20 ms)
FREEZE_MODES = ("all", "cnn", "none")


class WavLMFrontend(CachedFrontend):
    """WavLM (``features.wavlm``) -> weighted hidden states at ``frame_shift``."""

    cached_name = "WavLM states"

    def __init__(self, config: FeatureConfig):
        super().__init__()
        cfg = config.wavlm
        self.pool = _check(config, cfg.shape, cfg.freeze)
        self.frame_shift = cfg.frame_shift
        self.samples_per_frame = HOP * self.pool
        self.freeze = cfg.freeze
        self.shape = cfg.shape
        self.grad_checkpointing = cfg.grad_checkpointing
        self.quantize_on_eval = cfg.quantize
        self.quantized = False
        arch = SHAPES[cfg.shape]
        self.wavlm = build_wavlm(arch)
        normalize = False
        if cfg.checkpoint:
            normalize = self._load(cfg.checkpoint, arch, cfg.shape)
        # the model expects zero-mean unit-variance audio (WavLM Large); saved with the weights
        self.register_buffer("normalize_waveform", torch.tensor(normalize))
        self.out_dim = arch["encoder_embed_dim"]
        self.pad_left, self.pad_right = _padding(arch["extractor_conv_layer_config"])
        self.layer_logits = nn.Parameter(torch.zeros(arch["encoder_num_layers"] + 1))
        if arch["encoder_layer_norm_first"]:  # final norm of pre-LN models: unused on hidden states
            self.wavlm.encoder.transformer.layer_norm = nn.Identity()
        if cfg.layers:
            if not 0 < cfg.layers <= arch["encoder_num_layers"]:
                raise ValueError(
                    f"features.wavlm.layers={cfg.layers}: WavLM {cfg.shape} has {arch['encoder_num_layers']} layers"
                )
            self.truncate(cfg.layers)
        self._set_requires_grad()
        self.train()

    def _load(self, source: str, arch: dict, shape: str) -> bool:
        state, found, normalize = read_wavlm(source)
        if not same_arch(found, arch):
            raise DiarizeError(
                f"{source}: WavLM checkpoint is {describe_arch(found)}, but features.wavlm.shape={shape} "
                f"is {describe_arch(arch)}"
            )
        load_weights(self.wavlm, state, source)
        return normalize

    def _set_requires_grad(self) -> None:
        self.wavlm.requires_grad_(self.freeze != "all")
        if self.freeze == "cnn":
            self.wavlm.feature_extractor.requires_grad_(False)

    @property
    def cached_layers(self) -> int:
        """Hidden states per frame in the feature cache: ``num_layers + 1``."""
        return self.num_layers + 1

    @property
    def num_layers(self) -> int:
        """Transformer layers kept (hidden states are ``num_layers + 1``)."""
        return len(self.wavlm.encoder.transformer.layers)

    def num_frames(self, num_samples: int) -> int:
        return num_samples // self.samples_per_frame

    def train(self, mode: bool = True) -> WavLMFrontend:
        super().train(mode)
        if self.freeze == "all":
            self.wavlm.eval()  # a frozen WavLM runs without dropout
        return self

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """All WavLM parameters (frozen ones have ``requires_grad=False``): the trainer gives
        the trainable ones their own learning rate. The layer weights are not among them."""
        return list(self.wavlm.parameters())

    def layer_weights(self) -> torch.Tensor:
        """Softmax weights of hidden states 0..num_layers, (num_layers + 1,)."""
        return self.layer_logits.detach().softmax(0)

    def forward(
        self, wave: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """wave (batch, samples), lengths (batch,) -> feats (batch, frames, out_dim), frames (batch,).

        Inside :meth:`precomputed`, WavLM is not run: the given layer states are mixed instead
        (``wave`` then only sets the shapes)."""
        if self._precomputed is not None:
            states, frame_lengths = self._take_precomputed(wave, lengths)
        else:
            if self.quantize_on_eval and not self.training and not self.quantized:
                self.quantize()
            states, frame_lengths = self.layer_states(wave, lengths)
        return self.mix(states), frame_lengths

    def layer_states(
        self, wave: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """wave (batch, samples), lengths (batch,) -> every hidden state layer-normalised and
        averaged to ``frame_shift``, (batch, num_layers + 1, frames, dim) (zero on padded
        frames), and frame lengths (batch,). The output is their weighted sum (:meth:`mix`);
        with ``freeze: all`` they do not change in training, which the feature cache uses."""
        frames = self.num_frames(wave.shape[1])
        if wave.shape[1] < HOP:  # WavLM needs one frame's worth of samples
            wave = F.pad(wave, (0, HOP - wave.shape[1]))
        hidden, _ = self.hidden_states(wave, lengths)
        states = torch.stack(
            [self._pool(F.layer_norm(h, h.shape[-1:]), frames) for h in hidden], 1
        )  # (batch, num_layers + 1, frames, dim)
        frame_lengths = lengths // self.samples_per_frame
        padded = torch.arange(frames, device=wave.device) >= frame_lengths[:, None]
        return states.masked_fill(padded[:, None, :, None], 0.0), frame_lengths

    def _pool(self, h: torch.Tensor, frames: int) -> torch.Tensor:
        """(batch, wavlm frames, dim) -> mean of each ``pool`` frames, (batch, frames, dim)."""
        batch, _, dim = h.shape
        return h[:, : frames * self.pool].reshape(batch, frames, self.pool, dim).mean(2)

    def mix(self, states: torch.Tensor) -> torch.Tensor:
        """Layer states (batch, num_layers + 1, frames, dim) -> their softmax-weighted sum
        (batch, frames, dim)."""
        weights = self.layer_logits.softmax(0).to(states.dtype)
        return torch.einsum("l,blfd->bfd", weights, states)

    def frozen_states(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.layer_states(wave, lengths)[0]  # (batch, num_layers + 1, frames, dim)

    def check_precomputable(self) -> None:
        """Precomputed states only with ``freeze: all``, where they are what WavLM gives."""
        if self.freeze != "all":
            raise DiarizeError(
                f"precomputed WavLM states need features.wavlm.freeze=all, not {self.freeze!r}"
            )

    def _take_precomputed(
        self, wave: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        states, frame_lengths, padded = self.take_precomputed(wave, lengths)
        states = states.to(self.layer_logits.dtype).masked_fill(padded[:, None, :, None], 0.0)
        return states, frame_lengths

    def hidden_states(
        self, wave: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """wave (batch, samples), lengths (batch,) -> ``num_layers + 1`` hidden states, each
        (batch, samples // 320, dim), and their valid lengths (batch,)."""
        valid = (
            torch.arange(wave.shape[1], device=wave.device)[None, :] < lengths[:, None]
        )  # (batch, samples)
        wave = wave * valid
        if bool(self.normalize_waveform):
            wave = _normalize(wave, valid, lengths)
        wave = F.pad(wave, (self.pad_left, self.pad_right))
        frozen = self.freeze == "all" or not torch.is_grad_enabled()
        with torch.set_grad_enabled(not frozen):
            return wavlm_hidden_states(
                self.wavlm,
                wave,
                lengths + self.pad_left + self.pad_right,
                cnn_grad=self.freeze == "none",
                checkpointing=self.grad_checkpointing and self.training and not frozen,
            )

    def truncate(self, num_layers: int) -> None:
        """Keep Transformer layers 1..num_layers (and their weights); the others are dropped."""
        if not 0 < num_layers <= self.num_layers:
            raise ValueError(f"cannot keep {num_layers} of {self.num_layers} WavLM layers")
        transformer = self.wavlm.encoder.transformer
        transformer.layers = transformer.layers[:num_layers]
        self.layer_logits = nn.Parameter(self.layer_logits.detach()[: num_layers + 1].clone())

    def suggest_layers(self, tolerance: float = 0.02) -> int:
        """The fewest layers ``n`` (>= 1) such that the softmax weights of hidden states above
        ``n`` sum to at most ``tolerance``. Cutting there changes the mix of layers by at most
        ``2 * tolerance`` in L1 (the kept weights re-normalise); a per-layer threshold would not
        bound this when many upper layers each carry a little. Use it as ``features.wavlm.layers``."""
        w = self.layer_weights()
        above = w.flip(0).cumsum(0).flip(0)  # above[i] = sum of w[i:]
        keep = [
            n
            for n in range(1, self.num_layers + 1)
            if n == self.num_layers or above[n + 1] <= tolerance
        ]
        return keep[0]

    def quantize(self) -> None:
        """Dynamic int8 quantization of the Linear layers of WavLM's Transformer layers (CPU
        inference only; in place). The feature projection stays fp32: it is one layer's
        worth of compute and, quantized, alone moves hidden state 0 by ~2 %."""
        if self.quantized:
            return
        if any(p.is_cuda for p in self.wavlm.parameters()):
            raise DiarizeError("features.wavlm.quantize: dynamic int8 runs on CPU only")
        transformer = self.wavlm.encoder.transformer
        transformer.layers = torch.ao.quantization.quantize_dynamic(
            transformer.layers, {nn.Linear}, dtype=torch.qint8
        )
        self.quantized = True


def wavlm_hidden_states(
    model: Wav2Vec2Model,
    wave: torch.Tensor,
    lengths: torch.Tensor | None = None,
    *,
    cnn_grad: bool = True,
    checkpointing: bool = False,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """All hidden states of a torchaudio WavLM, as ``transformers`` numbers them.

    wave (batch, samples), lengths (batch,) or None -> list of ``layers + 1`` tensors
    (batch, frames, dim) and frame lengths (batch,). Padded frames are masked as keys.
    """
    if lengths is None:
        lengths = torch.full((wave.shape[0],), wave.shape[1], device=wave.device)
    with torch.set_grad_enabled(cnn_grad and torch.is_grad_enabled()):
        feats, frame_lengths = model.feature_extractor(wave, lengths)  # (batch, frames, conv dim)
    encoder = model.encoder
    x = encoder.feature_projection(feats)  # (batch, frames, dim)
    padding = (
        torch.arange(x.shape[1], device=x.device)[None, :] >= frame_lengths[:, None]
    )  # (batch, frames)
    padding &= (frame_lengths > 0)[:, None]  # an empty item attends to everything, not nothing
    x = x.masked_fill(padding[..., None], 0.0)
    x = encoder.transformer._preprocess(x)  # + convolutional position embedding (+ norm)
    key_padding_mask = None  # additive float mask (a bool one makes torch warn on every call)
    if bool(padding.any()):
        key_padding_mask = torch.zeros(padding.shape, dtype=x.dtype, device=x.device).masked_fill(
            padding, float("-inf")
        )
    states, position_bias = [x], None
    for layer in encoder.transformer.layers:
        if checkpointing:
            x, position_bias = checkpoint(
                layer, x, None, position_bias, key_padding_mask, use_reentrant=False
            )
        else:
            x, position_bias = layer(
                x, None, position_bias=position_bias, key_padding_mask=key_padding_mask
            )
        states.append(x)
    return states, frame_lengths


def _check(config: FeatureConfig, shape: str, freeze: str) -> int:
    """Validate the settings; return the pooling factor ``frame_shift / 20 ms``."""
    if config.sample_rate != SAMPLE_RATE:
        raise ValueError(f"features.sample_rate={config.sample_rate}: WavLM needs {SAMPLE_RATE}")
    if shape not in SHAPES:
        raise ValueError(f"features.wavlm.shape={shape!r}: expected one of {', '.join(SHAPES)}")
    if freeze not in FREEZE_MODES:
        raise ValueError(
            f"features.wavlm.freeze={freeze!r}: expected one of {', '.join(FREEZE_MODES)}"
        )
    pool = round(config.wavlm.frame_shift / 0.02)
    if pool < 1 or abs(pool * 0.02 - config.wavlm.frame_shift) > 1e-9:
        raise ValueError(
            f"features.wavlm.frame_shift={config.wavlm.frame_shift}: must be a multiple of 0.02 s"
        )
    return pool


def _padding(conv_layers: list[tuple[int, int, int]]) -> tuple[int, int]:
    """Samples to pad (left, right) so that ``n`` samples give ``n // hop`` centred frames."""
    field, hop = 1, 1
    for _, kernel, stride in conv_layers:
        field += (kernel - 1) * hop
        hop *= stride
    if hop != HOP or field < hop:
        raise ValueError(
            f"WavLM conv layers {conv_layers}: hop {hop} (need {HOP}), receptive field {field}"
        )
    extra = field - hop
    return extra // 2, extra - extra // 2


def _normalize(wave: torch.Tensor, valid: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance over each item's valid samples; padding stays zero."""
    n = lengths.clamp(min=1)[:, None].to(wave.dtype)
    mean = wave.sum(1, keepdim=True) / n
    var = ((wave - mean) * valid).pow(2).sum(1, keepdim=True) / n
    return (wave - mean) / torch.sqrt(var + 1e-5) * valid
