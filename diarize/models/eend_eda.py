"""EEND-EDA: end-to-end neural diarization with encoder-decoder attractors.

Horiguchi et al., "End-to-end speaker diarization for an unknown number of speakers with
encoder-decoder based attractors", Interspeech 2020; TASLP 2022 ("Encoder-decoder based
attractors for end-to-end neural diarization").

    wave (batch, samples)
      -> frontend                       (batch, frames, feat dim)
      -> linear + LayerNorm             (batch, frames, d_model)
      -> pre-LN Transformer encoder     (batch, frames, d_model)   = embeddings
      -> EDA: LSTM encoder over the embeddings, LSTM decoder fed zeros
                                        (batch, attractors, d_model) = attractors
      -> embeddings . attractors^T      (batch, frames, attractors)  = activity logits
    and a linear + sigmoid on each attractor for "this attractor is a speaker".
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import replace

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from diarize.config import FeatureConfig, ModelConfig
from diarize.features import build_frontend


class EendEda(nn.Module):
    """Frontend + Transformer encoder + encoder-decoder attractors."""

    def __init__(self, features: FeatureConfig, config: ModelConfig) -> None:
        super().__init__()
        if config.d_model % config.n_heads:
            raise ValueError(
                f"d_model {config.d_model} is not divisible by n_heads {config.n_heads}"
            )
        self.config = config
        self.frontend = build_frontend(features)
        self.input_proj = nn.Linear(self.frontend.out_dim, config.d_model)
        self.input_norm = nn.LayerNorm(config.d_model)
        layer = nn.TransformerEncoderLayer(
            config.d_model,
            config.n_heads,
            config.ff_dim,
            config.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, config.n_layers, norm=nn.LayerNorm(config.d_model), enable_nested_tensor=False
        )
        self.eda = EncoderDecoderAttractor(config.d_model)

    @property
    def frame_shift(self) -> float:
        """Seconds per output frame."""
        return self.frontend.frame_shift

    def num_frames(self, num_samples: int) -> int:
        """Output frames for ``num_samples`` input samples."""
        return self.frontend.num_frames(num_samples)

    def encode(
        self, wave: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """wave (batch, samples), lengths (batch,) in samples ->
        embeddings (batch, frames, d_model) (zero on padded frames), frame lengths (batch,)."""
        feats, frame_lengths = self.frontend(wave, lengths)  # (batch, frames, feat dim)
        x = self.input_norm(self.input_proj(feats))  # (batch, frames, d_model)
        frames = torch.arange(x.shape[1], device=x.device)
        # An item with no frame would make attention all-masked (NaN): let it see frame 0.
        attend_mask = frames >= frame_lengths.clamp_min(1)[:, None]  # (batch, frames), True = pad
        emb = self.encoder(x, src_key_padding_mask=attend_mask)
        valid = frames < frame_lengths[:, None]  # (batch, frames)
        return emb * valid[..., None], frame_lengths

    def attractors(
        self, emb: torch.Tensor, frame_lengths: torch.Tensor, num_attractors: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """emb (batch, frames, d_model), frame_lengths (batch,) ->
        attractors (batch, num_attractors, d_model), existence_logits (batch, num_attractors).

        Frames are shuffled in time first when training with ``shuffle_frames``.
        """
        shuffle = self.training and self.config.shuffle_frames
        return self.eda(emb, frame_lengths, num_attractors, shuffle=shuffle)

    def forward(
        self, wave: torch.Tensor, lengths: torch.Tensor, num_speakers: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Training path. wave (batch, samples), lengths (batch,), num_speakers (batch,) ->
        ``logits`` (batch, frames, speakers) with ``speakers = max(num_speakers)``,
        ``existence_logits`` (batch, speakers + 1), ``frame_lengths`` (batch,)."""
        emb, frame_lengths = self.encode(wave, lengths)
        speakers = int(num_speakers.max()) if num_speakers.numel() else 0
        attractors, existence_logits = self.attractors(emb, frame_lengths, speakers + 1)
        logits = torch.matmul(
            emb, attractors[:, :speakers].transpose(1, 2)
        )  # (batch, frames, speakers)
        return {
            "logits": logits,
            "existence_logits": existence_logits,
            "frame_lengths": frame_lengths,
        }

    @torch.no_grad()
    def infer(
        self,
        wave: torch.Tensor,
        lengths: torch.Tensor | None = None,
        num_speakers: int | None = None,
        max_speakers: int | None = None,
        threshold: float | None = None,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Inference in eval mode, without shuffling. wave (batch, samples) or (samples,),
        lengths (batch,) (``None`` = full) -> per item ``(probs (frames_i, speakers_i),
        attractors (speakers_i, d_model))``.

        Speakers are decoded while the existence probability stays >= ``threshold``
        (default ``attractor_threshold``), or exactly ``num_speakers`` when given; at most
        ``max_speakers`` (default ``config.max_speakers``) either way.
        """
        max_speakers = self.config.max_speakers if max_speakers is None else max_speakers
        threshold = self.config.attractor_threshold if threshold is None else threshold
        if num_speakers is not None and num_speakers < 0:
            raise ValueError(f"num_speakers must be >= 0, got {num_speakers}")
        wave = wave[None] if wave.dim() == 1 else wave
        if lengths is None:
            lengths = torch.full(
                (wave.shape[0],), wave.shape[-1], dtype=torch.long, device=wave.device
            )
        with eval_mode(self):
            emb, frame_lengths = self.encode(wave, lengths)
            decode = max_speakers + 1 if num_speakers is None else min(num_speakers, max_speakers)
            attractors, existence_logits = self.eda(emb, frame_lengths, decode, shuffle=False)
        counts = count_speakers(existence_logits, num_speakers, max_speakers, threshold)
        out = []
        for item, count in enumerate(counts.tolist()):
            att = attractors[item, :count]  # (speakers_i, d_model)
            probs = torch.sigmoid(
                emb[item, : frame_lengths[item]] @ att.T
            )  # (frames_i, speakers_i)
            out.append((probs, att))
        return out


def deepen(model: EendEda, n_layers: int) -> EendEda:
    """A copy of ``model`` with ``n_layers`` Transformer layers that computes the same
    function (growth that keeps what was learnt, as Net2Net does for depth): the original
    layers keep their order and weights, spread evenly among the new ones; each new layer
    copies the layer before it with its two residual branches' output projections
    (attention ``out_proj``, feed-forward ``linear2``) zeroed, so a pre-LN layer passes its
    input through unchanged until training moves it."""
    old = len(model.encoder.layers)
    if n_layers < old:
        raise ValueError(f"deepen: {n_layers} layers is fewer than the model's {old}")
    grown = copy.deepcopy(model)
    keep = {round(i * n_layers / old): i for i in range(old)}  # new position -> old layer
    layers, source = [], 0
    for position in range(n_layers):
        if position in keep:
            source = keep[position]
            layers.append(grown.encoder.layers[source])  # already a copy
            continue
        layer = copy.deepcopy(grown.encoder.layers[source])
        for proj in (layer.self_attn.out_proj, layer.linear2):
            nn.init.zeros_(proj.weight)
            nn.init.zeros_(proj.bias)
        layers.append(layer)
    grown.config = replace(model.config, n_layers=n_layers)
    grown.encoder.layers = nn.ModuleList(layers)
    grown.encoder.num_layers = n_layers
    return grown


class EncoderDecoderAttractor(nn.Module):
    """LSTM encoder over the frame embeddings; its final state starts an LSTM decoder fed
    zeros, one step per attractor; a linear layer scores whether each attractor exists."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.encoder = nn.LSTM(dim, dim, batch_first=True)
        self.decoder = nn.LSTM(dim, dim, batch_first=True)
        self.counter = nn.Linear(dim, 1)

    def forward(
        self,
        emb: torch.Tensor,
        frame_lengths: torch.Tensor,
        num_attractors: int,
        shuffle: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """emb (batch, frames, dim), frame_lengths (batch,) ->
        attractors (batch, num_attractors, dim), existence_logits (batch, num_attractors)."""
        if num_attractors < 0:
            raise ValueError(f"num_attractors must be >= 0, got {num_attractors}")
        if emb.shape[1] == 0:  # no frame at all: encode one zero frame
            emb = emb.new_zeros(emb.shape[0], 1, emb.shape[2])
        if shuffle:
            emb = shuffle_frames(emb, frame_lengths)
        # An item with no frame is encoded from its (zero) first frame.
        lengths = frame_lengths.clamp(1, emb.shape[1])
        if emb.is_cuda:  # cuDNN runs packed sequences fast
            packed = pack_padded_sequence(
                emb, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            _, state = self.encoder(packed)  # (h, c), each (1, batch, dim)
        else:
            state = lstm_final_state(self.encoder, emb, lengths)
        zeros = emb.new_zeros(emb.shape[0], max(num_attractors, 1), emb.shape[2])
        attractors, _ = self.decoder(zeros, state)  # (batch, attractors, dim)
        attractors = attractors[:, :num_attractors]
        return attractors, self.counter(attractors).squeeze(-1)


def lstm_final_state(
    lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (h, c) a one-layer ``lstm`` reaches after each item's first ``lengths`` frames,
    as with a packed sequence, computed step by step with the same weights.

    x (batch, frames, dim), lengths (batch,) -> h, c, each (1, batch, hidden).
    On CPU the packed LSTM's backward slices its input once per frame and allocates a
    full-size gradient each time (quadratic in frames); here the input projection is one
    matmul and the frames are unbound once, so training the EDA costs linear time.
    """
    if lstm.num_layers != 1 or lstm.bidirectional or not lstm.batch_first:
        raise ValueError("lstm_final_state needs a one-layer, one-way, batch_first LSTM")
    gates_x = x @ lstm.weight_ih_l0.T + (
        lstm.bias_ih_l0 + lstm.bias_hh_l0
    )  # (batch, frames, 4 hidden)
    h = x.new_zeros(x.shape[0], lstm.hidden_size)
    c = x.new_zeros(x.shape[0], lstm.hidden_size)
    for t, g_x in enumerate(gates_x.unbind(1)):
        if t >= int(lengths.max()):
            break
        i, f, g, o = (g_x + h @ lstm.weight_hh_l0.T).chunk(4, dim=1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        running = (t < lengths)[:, None]  # (batch, 1): items still inside their frames
        h, c = torch.where(running, h_new, h), torch.where(running, c_new, c)
    return h[None], c[None]


def shuffle_frames(emb: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
    """emb (batch, frames, dim) -> each item's valid frames in a random order, then its padding."""
    padding = torch.arange(emb.shape[1], device=emb.device) >= frame_lengths[:, None]
    keys = torch.rand(emb.shape[:2], device=emb.device).masked_fill(padding, 2.0)
    order = keys.argsort(dim=1)  # (batch, frames): valid frames first
    return emb.gather(1, order[..., None].expand_as(emb))


def count_speakers(
    existence_logits: torch.Tensor, num_speakers: int | None, max_speakers: int, threshold: float
) -> torch.Tensor:
    """existence_logits (batch, attractors) -> speakers per item (batch,): the attractors before
    the first existence probability below ``threshold`` (or ``num_speakers``), at most ``max_speakers``."""
    batch = existence_logits.shape[0]
    if num_speakers is not None:
        return torch.full((batch,), min(num_speakers, max_speakers), dtype=torch.long)
    exists = torch.sigmoid(existence_logits) >= threshold  # (batch, attractors)
    leading = exists.long().cumprod(dim=1).sum(dim=1)  # attractors before the first "no"
    return leading.clamp(max=max_speakers).cpu()


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Put ``module`` in eval mode for the block, then restore its previous mode."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)
