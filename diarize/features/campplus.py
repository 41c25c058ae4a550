"""CAM++ frontend: frozen frame-level features of a pretrained CAM++ speaker model.

CAM++ (:mod:`diarize.embeddings.campplus`, 3D-Speaker's layout) is run up to its last
frame-level layer, ``xvector.out_nonlinear``, the batch norm + ReLU just before the
statistics pooling; the pooling and the embedding layer are dropped. Shapes, for ``n``
samples at 16 kHz (``campplus_cn_en_common.pt``: 32 head channels, 512 output channels)::

    80-bin Kaldi fbank, mean-normalised per window   (batch, n // 160, 80)        10 ms
    FCM head (2-d convolutions, frequency / 8)       (batch, 32 * 10, n // 160)   10 ms
    TDNN, stride 2                                   (batch, 128, n // 320)       20 ms
    dense blocks + transitions + batch norm / ReLU   (batch, 512, n // 320)       20 ms
    average of each frame_shift / 20 ms frames       (batch, n // (frame_shift * 16000), 512)

``out_dim`` is CAM++'s last channel count (512): the diarization model's input layer projects
it to ``d_model`` (the contract of the WavLM frontend), and that projection trains; CAM++
does not (no gradient, eval mode: batch norms keep their running statistics).

Timing: the wave is zero-padded by 40 samples on each side, so fbank frame ``j`` (25 ms
every 10 ms, Kaldi's whole-frame rule) is centred on sample ``160 j + 160`` and the stride-2
TDNN's frame ``k`` on ``320 k + 160``, the centre of ``[k, k + 1) * 20 ms``; ``n`` samples
give exactly ``n // 320`` of them, hence ``num_frames(n) = n // (frame_shift * 16000)`` with
output frame ``i`` standing for ``[i, i + 1) * frame_shift``.

The fbank mean and CAM++'s context-aware masking (utterance and 2-s segment means) see the
whole window, so every item is run on its own samples: items of a batch with different
lengths are run in separate groups (on a CPU, one by one) and padding never changes a value. The weights travel in
the diarization checkpoint's state dict (``frontend.campplus.*``): a trained model rebuilds
without the original file. With ``train.feature_cache`` the features are computed once per
training set (:mod:`diarize.features.cache`, given back with :meth:`precomputed`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from diarize.config import CAMPPlusFrontendConfig, FeatureConfig
from diarize.embeddings.campplus import CAMPPlus, CAMPPlusConfig
from diarize.embeddings.fbank import KaldiFbankConfig
from diarize.features import CachedFrontend
from diarize.features.fbank import check_lengths
from diarize.utils import DiarizeError

SAMPLE_RATE = 16000
HOP = 320  # samples per CAM++ frame-level output (20 ms: 10 ms fbank, stride-2 TDNN)
PAD = 40  # samples of zeros on each side: centres the frames (see the module docstring)
ARCH_FIELDS = ("feat_dim", "head_channels", "init_channels", "growth_rate", "bn_size")


class CAMPPlusFrontend(CachedFrontend):
    """Frozen CAM++ (``features.campplus``) -> frame-level features at ``frame_shift``."""

    cached_name = "CAM++ features"

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        cfg = config.campplus
        self.pool = _check(config)
        self.frame_shift = cfg.frame_shift
        self.samples_per_frame = HOP * self.pool
        self.campplus = CAMPPlus(network_config(cfg))
        del self.campplus.xvector.stats, self.campplus.xvector.dense  # frame level only
        if cfg.checkpoint:
            self._load(cfg.checkpoint)
        self.out_dim = self.campplus.xvector.out_nonlinear.batchnorm.num_features
        self.campplus.requires_grad_(False)
        self.train()

    def _load(self, source: str) -> None:
        """Copy the weights of a 3D-Speaker CAM++ file whose architecture is this one's."""
        from diarize.embeddings.registry import load_path

        if not Path(source).is_file():
            raise DiarizeError(f"features.campplus.checkpoint={source}: no such file")
        found = load_path(Path(source))
        if not isinstance(found, CAMPPlus):
            raise DiarizeError(f"{source}: a {found.kind} checkpoint, not CAM++")
        ours = self.campplus.config
        if any(getattr(found.config, f) != getattr(ours, f) for f in ARCH_FIELDS):
            raise DiarizeError(
                f"{source}: CAM++ {_describe(found.config)}, but features.campplus is "
                f"{_describe(ours)}"
            )
        state = {k: v for k, v in found.state_dict().items() if not k.startswith("xvector.dense.")}
        self.campplus.load_state_dict(state, strict=True)

    def num_frames(self, num_samples: int) -> int:
        return int(num_samples) // self.samples_per_frame

    def train(self, mode: bool = True) -> CAMPPlusFrontend:
        super().train(mode)
        self.campplus.eval()  # frozen: batch norms keep their running statistics
        return self

    def forward(
        self, wave: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """wave (batch, samples), lengths (batch,) -> feats (batch, frames, out_dim) (zero on
        padded frames), frame lengths (batch,). Inside :meth:`precomputed`, CAM++ is not run:
        the given features are returned (``wave`` then only sets the shapes)."""
        if self._precomputed is not None:
            return self._take_precomputed(wave, lengths)
        return self.frame_features(wave, lengths)

    @torch.no_grad()
    def frame_features(
        self, wave: torch.Tensor, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """wave (batch, samples), lengths (batch,) -> CAM++ features (batch, frames, out_dim),
        each item computed on its own ``lengths[b]`` samples, zero beyond its frames; frame
        lengths (batch,). What the feature cache stores."""
        lengths = check_lengths(wave, lengths)
        frames = self.num_frames(wave.shape[1])
        out = torch.zeros(wave.shape[0], frames, self.out_dim, device=wave.device)
        # On a CPU one item at a time is faster (20-s chunks, one thread: 45-50 s per hour of
        # audio against 70-100 s in batches of 4-16, whose 2-d activations leave the caches).
        step = 1 if wave.device.type == "cpu" else wave.shape[0]
        for length in lengths.unique().tolist():
            n = self.num_frames(length)
            group = (lengths == length).nonzero()[:, 0]
            for part in group.split(step) if n else ():
                out[part, :n] = self._run(wave[part, :length], n)
        return out, lengths // self.samples_per_frame

    def frozen_states(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.frame_features(wave, lengths)[0][:, None]  # (batch, 1, frames, out_dim)

    def _run(self, wave: torch.Tensor, frames: int) -> torch.Tensor:
        """wave (group, samples) -> (group, frames, out_dim), ``frames`` of them (>= 1)."""
        net = self.campplus
        fbank = net.frontend(F.pad(wave.float(), (PAD, PAD)))  # (group, samples // 160, mels)
        fbank = fbank - fbank.mean(dim=1, keepdim=True)  # mean-normalised over the window
        h = net.xvector(net.head(fbank.transpose(1, 2)))  # (group, out_dim, samples // 320)
        h = h[..., : frames * self.pool].unflatten(-1, (frames, self.pool)).mean(-1)
        return h.transpose(1, 2)  # (group, frames, out_dim)

    def _take_precomputed(
        self, wave: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        states, frame_lengths, padded = self.take_precomputed(wave, lengths)
        feats = states[:, 0].float().masked_fill(padded[..., None], 0.0)
        return feats, frame_lengths  # (batch, frames, out_dim), (batch,)


def network_config(cfg: CAMPPlusFrontendConfig) -> CAMPPlusConfig:
    """The CAM++ network of ``features.campplus`` (80 Kaldi bands by default)."""
    return CAMPPlusConfig(
        feat_dim=cfg.feat_dim,
        head_channels=cfg.head_channels,
        init_channels=cfg.init_channels,
        growth_rate=cfg.growth_rate,
        bn_size=cfg.bn_size,
        fbank=KaldiFbankConfig(sample_rate=SAMPLE_RATE, num_mel_bins=cfg.feat_dim),
    )


def _describe(config: CAMPPlusConfig) -> str:
    return ", ".join(f"{f}={getattr(config, f)}" for f in ARCH_FIELDS)


def _check(config: FeatureConfig) -> int:
    """Validate the settings; return the pooling factor ``frame_shift / 20 ms``."""
    cfg = config.campplus
    if config.sample_rate != SAMPLE_RATE:
        raise DiarizeError(f"features.sample_rate={config.sample_rate}: CAM++ needs {SAMPLE_RATE}")
    pool = round(cfg.frame_shift / 0.02)
    if pool < 1 or abs(pool * 0.02 - cfg.frame_shift) > 1e-9:
        raise DiarizeError(
            f"features.campplus.frame_shift={cfg.frame_shift}: must be a multiple of 0.02 s"
        )
    if cfg.feat_dim % 8 or min(getattr(cfg, f) for f in ARCH_FIELDS) < 1:
        raise DiarizeError(
            f"features.campplus: sizes must be positive, feat_dim a multiple of 8: {cfg}"
        )
    return pool
