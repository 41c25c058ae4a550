"""Stage 2, pretrained embeddings: each local speaker heard alone gets one embedding from a
pretrained speaker-embedding model (:mod:`diarize.embeddings`: CAM++, WeSpeaker ResNet,
ECAPA), and no sample of the recording goes through that model twice.

A local speaker's embedding comes from the audio where it speaks alone in its window. Windows
overlap (by half, by default), so a stretch of audio is heard by a local speaker of every
window covering it. The recording is therefore cut at each window's first and last frame into
spans covered by the same windows; in a span, the frames where the same local speakers are
alone (one per covering window, or nobody) form one *piece*. A piece is embedded once and
shared by its local speakers; a local speaker's embedding is the average of its pieces'
embeddings weighted by their lengths, at unit length. Pieces shorter than the model takes
(``min_samples``) are left out. A local speaker with less than the model's ``min_duration``
seconds of pieces gets no embedding (``WindowOutput.embedded`` False) and is linked by its
attractor after the others (:func:`diarize.inference.linking.cluster`).

:class:`PretrainedEmbedder` does this as the windows come (it sees each batch of
:func:`~diarize.inference.local.analyse_windows`), gathering :data:`GATHER` pieces before
each call of :meth:`~diarize.embeddings.SpeakerEmbedding.embed` (pieces of equal length
share a forward pass, so the more are gathered, the fewer and fuller the passes: 589 passes
for a 20-minute meeting with 16 gathered, 126 with 256; README, "Speaker embeddings"), so
it keeps only the windows whose frames are not cut into pieces yet, and the pieces
gathered.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from diarize.inference.local import WindowOutput, part_starts
from diarize.inference.windows import FrameGrid, Window

Node = tuple[int, int]  # (window index, local speaker index)

# pieces gathered per call of the model's embed (at most 256 x 6 s of 16 kHz float32 audio,
# 98 MB, held at once; 2-3 s pieces are the usual)
GATHER = 256


@dataclasses.dataclass
class Piece:
    """Samples heard alone by the same local speakers, one per window covering them."""

    wave: np.ndarray  # (samples,) at the embedding model's rate
    owners: list[Node]
    start: int = 0  # first frame of its span in the recording


class PretrainedEmbedder:
    """Embeds the local speakers of one recording's windows, given in time order."""

    def __init__(self, model, grid: FrameGrid, batch_size: int = GATHER):
        """``model``: a :class:`~diarize.embeddings.SpeakerEmbedding` (``embed``,
        ``min_duration``, ``min_samples``, ``sample_rate``); ``batch_size``: pieces gathered
        per call of ``model.embed``, which batches those of equal length."""
        self.model, self.grid, self.batch_size = model, grid, batch_size
        self.pending: list[tuple[int, Window, WindowOutput]] = []  # windows not all cut yet
        self.cut_until = 0  # frames before this are cut into pieces
        self.seen = 0  # windows added so far
        self.pieces: list[Piece] = []  # cut, not embedded yet
        self.sums: dict[Node, np.ndarray] = {}  # sum of piece embeddings x piece samples
        self.samples: dict[Node, int] = {}  # samples embedded for each local speaker
        # the same per span (node, first frame of the span): a local speaker's parts
        self.part_sums: dict[tuple[Node, int], np.ndarray] = {}
        self.part_samples: dict[tuple[Node, int], int] = {}

    def add(self, windows: list[Window], outputs: list[WindowOutput]) -> None:
        """The next windows of the recording and their local analysis."""
        for window, out in zip(windows, outputs, strict=True):
            self.cut(out.start)  # no later window covers the frames before this one
            self.pending.append((self.seen, window, out))
            self.seen += 1
        self.embed(whole_batches=True)

    def finish(self, outputs: list[WindowOutput]) -> list[WindowOutput]:
        """``outputs`` (all windows, in order) with ``embeddings`` (local speakers, dim) and
        ``embedded`` (local speakers,) set."""
        self.cut(max((out.stop for _, _, out in self.pending), default=self.cut_until))
        self.embed()
        return [self.with_embeddings(w, out) for w, out in enumerate(outputs)]

    def cut(self, until: int) -> None:
        """Cut frames ``[cut_until, until)`` into pieces: they are covered by pending windows
        only. Windows ending before ``until`` are then dropped."""
        bounds = {self.cut_until, until}
        for _, _, out in self.pending:
            bounds |= {b for b in (out.start, out.stop) if self.cut_until < b < until}
        edges = sorted(bounds)
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            covering = [p for p in self.pending if p[2].start <= lo and p[2].stop >= hi]
            if covering:
                self.pieces += span_pieces(lo, hi, covering, self.grid, self.model)
        self.pending = [p for p in self.pending if p[2].stop > until]
        self.cut_until = max(self.cut_until, until)

    def embed(self, whole_batches: bool = False) -> None:
        """Embed the pieces cut so far (``whole_batches``: only full batches of them)."""
        import torch

        while self.pieces and (len(self.pieces) >= self.batch_size or not whole_batches):
            batch, self.pieces = self.pieces[: self.batch_size], self.pieces[self.batch_size :]
            emb = self.model.embed([torch.from_numpy(p.wave) for p in batch]).numpy()  # (n, dim)
            for piece, vector in zip(batch, emb.astype(np.float64), strict=True):
                for node in piece.owners:
                    self.sums[node] = self.sums.get(node, 0.0) + len(piece.wave) * vector
                    self.samples[node] = self.samples.get(node, 0) + len(piece.wave)
                    part = (node, piece.start)
                    self.part_sums[part] = self.part_sums.get(part, 0.0) + len(piece.wave) * vector
                    self.part_samples[part] = self.part_samples.get(part, 0) + len(piece.wave)

    def with_embeddings(self, w: int, out: WindowOutput) -> WindowOutput:
        """Window ``w``'s output with the embeddings of its local speakers heard alone for
        at least the model's ``min_duration`` (zeros and ``embedded`` False for the others)."""
        speakers = out.probs.shape[1]
        emb = np.zeros((speakers, self.model.dim), dtype=np.float32)
        embedded = np.zeros(speakers, dtype=bool)
        enough = self.model.min_duration * self.model.sample_rate
        for k in range(speakers):
            if self.samples.get((w, k), 0) >= enough:
                total = self.sums[(w, k)]
                emb[k] = total / max(np.linalg.norm(total), 1e-12)
                embedded[k] = True
        return dataclasses.replace(out, embeddings=emb, embedded=embedded, **self.parts(w, out))

    def parts(self, w: int, out: WindowOutput) -> dict[str, np.ndarray]:
        """Window ``w``'s ``part_starts``, ``part_sums`` and ``part_seconds``
        (:class:`~diarize.inference.local.WindowOutput`): its spans are its parts (both are
        cut where other windows start or stop, :func:`~diarize.inference.local.part_starts`)."""
        speakers = out.probs.shape[1]
        starts = part_starts(out.start, len(out.probs), self.grid)
        sums = np.zeros((speakers, len(starts), self.model.dim), dtype=np.float32)
        seconds = np.zeros((speakers, len(starts)), dtype=np.float32)
        for p, start in enumerate((out.start + starts).tolist()):
            for k in range(speakers):
                if ((w, k), start) in self.part_samples:
                    sums[k, p] = self.part_sums[((w, k), start)]
                    seconds[k, p] = self.part_samples[((w, k), start)] / self.model.sample_rate
        return {"part_starts": starts, "part_sums": sums, "part_seconds": seconds}


def span_pieces(
    lo: int, hi: int, covering: list[tuple[int, Window, WindowOutput]], grid: FrameGrid, model
) -> list[Piece]:
    """The pieces of frames ``[lo, hi)``, covered by ``covering`` ((index, window, output)
    of each window holding all of them): frames grouped by who is alone there in each
    window; groups where nobody is alone, or too short for ``model``, are left out."""
    from diarize.audio import resample

    who = np.stack([alone_speaker(out.alone[lo - out.start : hi - out.start]) for _, _, out in covering], axis=1)  # fmt: skip
    keys, group = np.unique(who, axis=0, return_inverse=True)  # who: (frames, covering)
    group = group.reshape(-1)  # (frames,)
    _, window, out = covering[0]
    pieces = []
    for g, key in enumerate(keys):
        if (key < 0).all():
            continue
        wave = frame_samples(window.wave, lo - out.start + np.flatnonzero(group == g), grid)
        if grid.sample_rate != model.sample_rate:
            wave = resample(wave, grid.sample_rate, model.sample_rate)
        if len(wave) >= model.min_samples:
            owners = [(i, int(k)) for (i, _, _), k in zip(covering, key, strict=True) if k >= 0]
            pieces.append(Piece(np.ascontiguousarray(wave, dtype=np.float32), owners, lo))
    return pieces


def alone_speaker(alone: np.ndarray) -> np.ndarray:
    """alone (frames, local speakers) bool -> (frames,) the local speaker alone, or -1."""
    if alone.shape[1] == 0:
        return np.full(len(alone), -1)
    return np.where(alone.any(axis=1), alone.argmax(axis=1), -1)


def frame_samples(wave: np.ndarray, frames: np.ndarray, grid: FrameGrid) -> np.ndarray:
    """The samples (len(frames) x samples_per_frame,) of ``frames`` (window-relative, in
    order) of a window's ``wave``, joined."""
    spf = grid.samples_per_frame
    index = frames[:, None] * spf + np.arange(spf)[None, :]  # (frames, samples per frame)
    return wave[index.reshape(-1)]
