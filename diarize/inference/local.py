"""Stage 2, local analysis: the network on batches of windows, and what each window's own
(local) speakers sound like.

Each window keeps its posteriors ``probs (frames, local speakers)`` (zero on digital
silence), its attractors, its activity masks (thresholded once, here), and for the local
speakers heard alone long enough a voice profile (:mod:`diarize.features.voice`) and, when
the checkpoint carries a speaker encoder, an embedding (:mod:`diarize.models.speaker`); a
pretrained embedding model instead embeds the windows' speakers as they come
(:mod:`diarize.inference.embed`, each sample once). A local speaker whose turns sound like
several persons (the model decodes fewer speakers than a window may hold) is first split
into one column per voice (:func:`split_voices`).
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from diarize.config import InferConfig, LinkConfig
from diarize.features.voice import (
    PITCH_WIN,
    turn_groups,
    voice_and_speaker_frames,
    voice_frames,
    voice_profiles,
)
from diarize.inference.windows import FrameGrid, Window
from diarize.utils import DiarizeError


@dataclass(frozen=True)
class WindowOutput:
    """What one window leaves behind once the network has run."""

    start: int  # first frame of the window in the recording
    probs: np.ndarray  # (frames, local speakers) posteriors
    attractors: np.ndarray  # (local speakers, d_model)
    # (local speakers, N_MELS + 1): mean log-mel and log F0 (NaN: unvoiced) over the frames
    # where each speaks alone, and how many frames that is (local speakers,); None: unknown
    voice: np.ndarray | None = None
    voice_frames: np.ndarray | None = None
    # (local speakers, embedding): unit-length speaker-encoder embeddings of the speakers
    # heard alone long enough (zeros for the others); None without a speaker encoder
    embeddings: np.ndarray | None = None
    threshold: float = 0.5  # activity threshold of the masks below
    # (frames, local speakers) bool: posterior above threshold, and active with nobody else;
    # computed from probs and threshold when not given
    active: np.ndarray | None = None
    alone: np.ndarray | None = None
    # (local speakers,) bool: which have a pretrained embedding (diarize.inference.embed);
    # None: those heard alone long enough (voice_frames >= LinkConfig.min_voice_frames)
    embedded: np.ndarray | None = None
    # the window cut at the frames where other windows start or stop (``part_starts (parts,)``
    # window-relative first frames, the first 0), and per local speaker and part the sum of
    # its embeddings weighted by samples, ``part_sums (local speakers, parts, embedding)``,
    # and the seconds embedded, ``part_seconds (local speakers, parts)``: for
    # :func:`diarize.inference.parts.split_parts`; None: not measured
    part_starts: np.ndarray | None = None
    part_sums: np.ndarray | None = None
    part_seconds: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.active is None or self.alone is None:
            active, alone = activity(self.probs, self.threshold)
            object.__setattr__(self, "active", active)
            object.__setattr__(self, "alone", alone)

    @property
    def stop(self) -> int:
        return self.start + len(self.probs)


def activity(probs: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """probs (frames, speakers) -> (active, alone), both (frames, speakers) bool: above
    ``threshold``, and above it with no other speaker."""
    active = probs > threshold
    return active, active & (active.sum(1, keepdims=True) == 1)


def analyse_windows(
    model,
    windows: Iterable[Window],
    grid: FrameGrid,
    config: InferConfig,
    max_speakers: int | None = None,
    speaker_encoder=None,
    device: str = "cpu",
    on_batch: Callable[[list[WindowOutput]], None] | None = None,
    embedder=None,
) -> list[WindowOutput]:
    """Run windows through ``model.infer`` in batches of ``config.batch_size`` (at most
    ``max_speakers`` local speakers each), then analyse each window's local speakers
    (:func:`local_speakers`). ``on_batch(outputs)`` after each batch. ``embedder``: a
    :class:`~diarize.inference.embed.PretrainedEmbedder` that sees each batch and gives the
    outputs their embeddings at the end."""
    outputs: list[WindowOutput] = []
    batch: list[Window] = []

    def flush() -> None:
        states = [w.states for w in batch] if batch[0].states is not None else None
        waves = [w.wave for w in batch]
        nets = forward(model, waves, max_speakers, device, states, config.attractor_threshold)
        out = [local_speakers(w, *net, grid, config, speaker_encoder) for w, net in zip(batch, nets, strict=True)]  # fmt: skip
        if embedder is not None:
            embedder.add(batch, out)
        outputs.extend(out)
        batch.clear()
        if on_batch:
            on_batch(out)

    for window in windows:
        batch.append(window)
        if len(batch) == config.batch_size:
            flush()
    if batch:
        flush()
    return outputs if embedder is None else embedder.finish(outputs)


def forward(
    model,
    waves: list[np.ndarray],
    max_speakers: int | None,
    device: str,
    states: list[np.ndarray] | None = None,
    attractor_threshold: float = 0.0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``model.infer`` on a batch of waves (zero-padded to the longest) -> per wave
    ``(probs (frames, local speakers), attractors (local speakers, d_model))``, float32.
    ``states``: per wave its frozen frontend's states (layers, frames, dim), computed
    beforehand (``infer.frontend_block``), which the frontend then takes instead of running.
    ``attractor_threshold``: the existence threshold of the attractors (0: the model's)."""
    import torch

    lengths = [len(w) for w in waves]
    batch = np.zeros((len(waves), max(lengths)), dtype=np.float32)  # (batch, samples)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    wave = torch.from_numpy(batch).to(device)
    given = contextlib.nullcontext()
    if states is not None:
        given = model.frontend.precomputed(_padded_states(states, model.num_frames(batch.shape[1]), device))  # fmt: skip
    with torch.inference_mode(), given:
        out = model.infer(
            wave,
            torch.tensor(lengths, dtype=torch.long, device=device),
            max_speakers=max_speakers,
            threshold=attractor_threshold or None,
        )
    return [(p.float().cpu().numpy(), a.float().cpu().numpy()) for p, a in out]


def _padded_states(states: list[np.ndarray], frames: int, device: str):
    """Per item (layers, frames_i, dim) -> (batch, layers, frames, dim), zero-padded."""
    import torch

    out = np.zeros((len(states), *states[0].shape[:1], frames, states[0].shape[2]), np.float32)
    for i, s in enumerate(states):
        out[i, :, : s.shape[1]] = s[:, :frames]
    return torch.from_numpy(out).to(device)


def has_voice(grid: FrameGrid) -> bool:
    """Whether the model's frames are a whole number of the voice features' 10 ms frames
    (else local speakers are linked by their attractors alone)."""
    try:
        voice_frames(np.zeros(0, dtype=np.float32), grid.samples_per_frame, grid.sample_rate)
    except ValueError:
        return False
    return True


def feature_stream(grid: FrameGrid, speaker_encoder=None):
    """``(frame_features, lookahead)`` for :func:`~diarize.inference.windows.stream_windows`:
    per model frame the voice features ``(frames, N_MELS + 1)`` and, with a speaker encoder,
    its input ``(frames, 10 ms frames per frame, SPEAKER_MELS + 2)``; the lookahead covers
    the longest analysis window past a frame's end. None when the frames have no voice."""
    if not has_voice(grid):
        return None, 0
    spf, rate = grid.samples_per_frame, grid.sample_rate

    def frame_features(wave: np.ndarray) -> tuple[np.ndarray, ...]:
        if speaker_encoder is None:
            return (voice_frames(wave, spf, rate),)  # (frames, N_MELS + 1)
        voice, speaker = voice_and_speaker_frames(wave, spf, rate)  # speaker: (frames x sub, dims)
        return voice, speaker.reshape(len(voice), -1, speaker.shape[1])

    lookahead = -(-round(PITCH_WIN * rate / 16000) // spf) * spf  # whole frames
    return frame_features, lookahead


# seconds of audio on each side of a block that the frontend also sees (then dropped), so
# that no window has frames from a block's edge in its middle
BLOCK_CONTEXT = 2.0


def frontend_blocks(model, config: InferConfig, grid: FrameGrid, device: str = "cpu"):
    """``(block_states, block, context)`` for :func:`~diarize.inference.windows.stream_windows`:
    the model's frozen frontend run on blocks of ``config.frontend_block`` seconds, ``block``
    frames each, with :data:`BLOCK_CONTEXT` seconds of audio on either side; ``(None, 0, 0)``
    when that is 0 (each window runs the frontend itself)."""
    if not config.frontend_block:
        return None, 0, 0
    import torch

    from diarize.models.eend_eda import eval_mode

    frontend = frozen_frontend(model)
    block = max(1, round(config.frontend_block / grid.frame_shift))

    def block_states(wave: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None].to(device)
        with torch.inference_mode(), eval_mode(frontend):
            states = frontend.frozen_states(x, torch.tensor([len(wave)], device=device))
        return states[0].float().cpu().numpy()  # (layers, frames, dim)

    return block_states, block, round(BLOCK_CONTEXT / grid.frame_shift)


def frozen_frontend(model):
    """The model's frontend where precomputed states can stand in for it, else a
    DiarizeError (``infer.frontend_block`` needs one)."""
    from diarize.features import CachedFrontend

    frontend = model.frontend
    if not isinstance(frontend, CachedFrontend):
        raise DiarizeError(
            f"frontend_block needs a frozen frontend (CAM++, or WavLM with freeze: all); "
            f"this model's is {type(frontend).__name__}: use frontend_block=0"
        )
    frontend.check_precomputable()
    return frontend


def local_speakers(
    window: Window,
    probs: np.ndarray,
    attractors: np.ndarray,
    grid: FrameGrid,
    config: InferConfig,
    speaker_encoder=None,
) -> WindowOutput:
    """One window's output: posteriors cut to its whole frames and zeroed on digital
    silence, local speakers split by voice (``config.split_voices``), masks, voice profiles
    and embeddings. Features come with the window (:func:`feature_stream`), or are computed
    from its wave when it has none."""
    spf, wave = grid.samples_per_frame, window.wave
    frames = min(len(probs), len(wave) // spf)
    probs = probs[:frames].copy()
    peak = np.abs(wave[: frames * spf]).reshape(frames, spf).max(axis=1)  # (frames,)
    probs[peak < config.silence_peak] = 0.0
    features = window.features
    if features is None and has_voice(grid):
        features = feature_stream(grid, speaker_encoder)[0](wave)
    if not features:  # frames not a whole number of 10 ms: link by attractors
        return WindowOutput(window.start, probs, attractors, threshold=config.threshold)
    voice = features[0][:frames]  # (frames, N_MELS + 1)
    source = np.arange(probs.shape[1])
    if config.split_voices:
        probs, source = split_voices(probs, voice, config.threshold, config.link)
    active, alone = activity(probs, config.threshold)
    profiles, counts = voice_profiles(voice, active)
    embeddings, parts = None, {}
    if speaker_encoder is not None:
        heard = counts >= config.link.min_voice_frames
        embeddings = embed(speaker_encoder, features[1][:frames], alone, heard)
        if config.link.part_split_below > 0:  # the parts cost a second encoder pass (+9 %)
            starts = part_starts(window.start, frames, grid)
            parts = embed_parts(speaker_encoder, features[1][:frames], alone, starts, grid.frame_shift)  # fmt: skip
    return WindowOutput(window.start, probs, attractors[source], profiles, counts, embeddings,
                        config.threshold, active, alone, **parts)  # fmt: skip


def embed(encoder, frames: np.ndarray, alone: np.ndarray, heard: np.ndarray) -> np.ndarray:
    """(local speakers, embedding) of the ``heard (local speakers,)`` speakers over the
    frames of ``alone (frames, local speakers)`` where each speaks alone; ``frames (frames,
    sub, SPEAKER_MELS + 2)``: the encoder's input, ``sub`` 10 ms frames per model frame.
    Zeros for the speakers not heard."""
    import torch

    device = next(encoder.parameters()).device
    out = np.zeros((alone.shape[1], encoder.config.embedding), dtype=np.float32)
    for k in np.flatnonzero(heard):
        x = frames[alone[:, k]].reshape(-1, frames.shape[2])  # (frames alone x sub, dims)
        out[k] = (
            encoder.embed(torch.from_numpy(np.ascontiguousarray(x)).to(device))
            .float()
            .cpu()
            .numpy()
        )
    return out


def part_starts(start: int, frames: int, grid: FrameGrid) -> np.ndarray:
    """First frames (window-relative, from 0) of the parts of the window of ``frames``
    frames at ``start``: it is cut where the grid's other windows start or stop."""
    every = grid.starts  # sorted: only windows starting within a window of this one count
    lo, hi = bisect.bisect_right(every, start - grid.window), bisect.bisect_left(every, start + frames)  # fmt: skip
    starts = np.array(every[lo:hi], dtype=np.int64)
    bounds = np.concatenate([starts, starts + grid.window]) - start
    inside = bounds[(bounds > 0) & (bounds < frames)]
    return np.unique(np.concatenate([[0], inside])).astype(np.int64)


# frames alone a part needs for its own embedding (fewer: its part_seconds stay 0)
PART_MIN_FRAMES = 5


def embed_parts(encoder, frames: np.ndarray, alone: np.ndarray, starts: np.ndarray,
                frame_shift: float) -> dict[str, np.ndarray]:  # fmt: skip
    """``part_starts``, ``part_sums`` and ``part_seconds`` of :class:`WindowOutput` from the
    speaker encoder: each local speaker's embedding over its frames alone in each part
    (``frames``, ``alone`` as :func:`embed` takes them), times the part's seconds alone."""
    speakers, dim = alone.shape[1], encoder.config.embedding
    sums = np.zeros((speakers, len(starts), dim), dtype=np.float32)
    seconds = np.zeros((speakers, len(starts)), dtype=np.float32)
    edges = [*starts.tolist(), len(alone)]
    for p, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        heard = alone[lo:hi].sum(0) >= PART_MIN_FRAMES  # (local speakers,)
        seconds[heard, p] = alone[lo:hi].sum(0)[heard] * frame_shift
        sums[:, p] = embed(encoder, frames[lo:hi], alone[lo:hi], heard) * seconds[:, p, None]
    return {"part_starts": starts, "part_sums": sums, "part_seconds": seconds}


def split_voices(
    probs: np.ndarray, features: np.ndarray, threshold: float, link: LinkConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Give each voice of a local speaker its own column: probs (frames, local speakers),
    features (frames, N_MELS + 1) -> probs (frames, columns), source (columns,) = the local
    speaker each column comes from. A local speaker whose turns sound like several persons
    (:func:`diarize.features.voice.turn_groups`) becomes one column per voice, each holding
    its posteriors on the frames nearest to that voice's turns and 0 elsewhere; the others
    stay as they are. ``link``: the split constants (default ``LinkConfig()``)."""
    link = link or LinkConfig()
    active, alone = activity(probs, threshold)
    columns, source = [], []
    for k in range(probs.shape[1]):
        group = turn_groups(
            features, active[:, k], alone[:, k], link.split_cost, link.min_turn_frames,
            link.min_voice_frames, link.f0_weight,
        )  # fmt: skip
        for g in range(1 if group is None else int(group.max()) + 1):
            columns.append(probs[:, k] if group is None else np.where(group == g, probs[:, k], 0))
            source.append(k)
    if not columns:
        return probs, np.zeros(0, dtype=np.int64)
    return np.stack(columns, axis=1).astype(probs.dtype), np.array(source, dtype=np.int64)
