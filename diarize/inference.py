"""Inference on recordings of any length: windows, speaker linking, stitching, post-processing.

EEND-EDA is trained on short chunks (``TrainConfig.chunk_frames``) and decodes its own
speakers in each chunk, in its own order. A long recording is therefore diarized in four steps:

1. **Windows** (:func:`window_starts`, :func:`slide`): overlapping windows of the training
   chunk length (hop: half a window) cut from audio streamed block by block, so memory does
   not grow with the recording beyond the per-window outputs, which are small.
2. **Forward** (:func:`infer_windows`): windows in batches through ``model.infer``; each keeps
   its posteriors ``probs (frames, local speakers)``, ``attractors (local speakers, d_model)``
   and a voice profile per local speaker. A local speaker whose turns sound like several
   persons (the model decodes fewer speakers than a window may hold) is split into one
   column per voice first (:func:`split_voices`).
3. **Linking** (:func:`link`): the windows' local speakers become global ones by constrained
   agglomerative clustering (average linkage). Two local speakers are compared, over the
   frames where each speaks alone, by the cosine of their speaker embeddings
   (:mod:`diarize.models.speaker`) when the checkpoint carries a speaker encoder, else by
   their voices (:mod:`diarize.features.voice`: average log-mel spectrum and log F0, centred
   on the recording's average voice); by the cosine of their attractors when either has too
   few such frames. Where windows overlap, the agreement of the two speakers' activities on
   the shared frames is mixed in. Two local speakers of one window that are active at the
   same time never merge (cannot-link). The number of global speakers is given
   (``num_speakers``), bounded (``min_speakers``/``max_speakers``) or set by
   ``InferConfig.link_threshold``.
4. **Stitching and post-processing** (:func:`stitch`, :func:`postprocess`): posteriors are
   averaged over the windows covering each frame (weighted towards the window whose centre
   is nearest), thresholded, median-filtered, cleaned of short turns and pauses, and turned
   into an overlap-aware ``Annotation``; an exclusive version (one speaker at a time) serves
   ASR alignment.

Frame ``i`` of a recording stands for ``[i * frame_shift, (i + 1) * frame_shift)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyannote.core import Annotation
from scipy.ndimage import median_filter

from diarize.audio import SAMPLE_RATE, audio_info, iter_blocks
from diarize.config import InferConfig, TrainConfig
from diarize.data.labels import labels_to_annotation
from diarize.features.voice import (
    N_MELS,
    speaker_frames,
    turn_groups,
    voice_frames,
    voice_profiles,
)
from diarize.utils import DiarizeError

# Frames whose peak amplitude stays below this (-80 dBFS: digital or dithered silence) are
# nobody's speech, whatever the network says about them.
SILENCE_PEAK = 1e-4
# A local speaker active (posterior > threshold) in fewer frames of its window is ignored.
MIN_ACTIVE_FRAMES = 2
# Linking constants, chosen (with InferConfig.link_threshold = 0.3) on three draws of
# bench/long_audio.py (seeds 1-3, held-out persons) and on sim_dev2 (README, "Long
# recordings"). Weight of the activity agreement on shared frames against the voice (or
# attractor) similarity:
OVERLAP_WEIGHT = 2.0
# A local speaker needs this many frames alone in its window for its voice to count (fewer:
# it joins the most similar cluster after the others are clustered):
MIN_VOICE_FRAMES = 20
# log F0 against the 40 log-mel bands, and the floor that keeps one speaker's profiles
# similar when the recording holds nobody else to contrast them with (`voice_similarity`):
F0_WEIGHT = 30.0
VOICE_FLOOR = 20.0
# Splitting a local speaker into voices (`split_voices`): turns with at least
# MIN_TURN_FRAMES frames alone are grouped while merging costs less than SPLIT_COST (Ward's
# criterion over the same profile vectors, in frames x squared distance); a voice needs
# MIN_VOICE_FRAMES frames alone to stand on its own.
SPLIT_COST = 600.0
MIN_TURN_FRAMES = 5


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

    @property
    def stop(self) -> int:
        return self.start + len(self.probs)


@dataclass(frozen=True)
class Result:
    """Diarization of one recording."""

    uri: str
    annotation: Annotation  # overlap-aware turns
    exclusive: Annotation  # one speaker at a time (the most probable active one)
    probs: np.ndarray  # (frames, speakers) stitched posteriors, columns in ``labels`` order
    labels: list[str]  # global speaker names
    frame_shift: float  # seconds per frame
    duration: float  # seconds of audio


# 1. Windows -------------------------------------------------------------------------------


def window_frames(config: InferConfig, frame_shift: float, chunk_frames: int) -> tuple[int, int]:
    """(window, hop) in frames: ``config.window``/``hop`` seconds, 0 meaning the training
    chunk and half of it."""
    if config.window < 0 or config.hop < 0:
        raise DiarizeError(
            f"window and hop must be >= 0 seconds, got {config.window} and {config.hop}"
        )
    window = round(config.window / frame_shift) if config.window else chunk_frames
    if window < 1:
        raise DiarizeError(f"window {config.window} s is shorter than one frame ({frame_shift} s)")
    hop = round(config.hop / frame_shift) if config.hop else max(1, window // 2)
    if not 1 <= hop <= window:
        raise DiarizeError(
            f"hop ({config.hop} s = {hop} frames) must be between one frame and the window ({window} frames)"
        )
    return window, hop


def window_starts(num_frames: int, window: int, hop: int) -> list[int]:
    """First frame of each window: every ``hop`` frames, the last one ending exactly at
    ``num_frames``; a recording shorter than a window is one (shorter) window."""
    if window < 1 or not 1 <= hop <= window:
        raise ValueError(f"need 1 <= hop <= window, got window={window}, hop={hop}")
    if num_frames <= window:
        return [0]
    last = num_frames - window
    starts = list(range(0, last, hop))
    return starts + [last]


def slide(blocks: Iterable[np.ndarray], starts: list[int], length: int) -> Iterator[np.ndarray]:
    """Cut windows ``[start, start + length)`` (samples; the end clipped to the audio) out of
    consecutive audio blocks, holding only the samples still needed. ``starts`` increase."""
    blocks = iter(blocks)
    buffer, offset = np.zeros(0, dtype=np.float32), 0  # buffer[0] is sample `offset`
    for start in starts:
        drop = min(max(0, start - offset), len(buffer))
        buffer, offset = buffer[drop:], offset + drop
        while offset + len(buffer) < start + length:
            block = next(blocks, None)
            if block is None:
                break
            buffer = np.concatenate([buffer, block])
        skip = max(0, start - offset)  # only when starts jump past the audio
        yield buffer[skip : start + length - offset].copy()


# 2. Forward ---------------------------------------------------------------------------------


def infer_windows(
    model,
    windows: Iterable[tuple[int, np.ndarray]],
    samples_per_frame: int,
    batch_size: int,
    device: str = "cpu",
    max_speakers: int | None = None,
    progress: Callable[[int], None] | None = None,
    threshold: float = 0.5,
    sample_rate: int = SAMPLE_RATE,
    split: bool = True,
    speaker_encoder=None,
) -> list[WindowOutput]:
    """Run ``(start frame, wave (samples,))`` windows through ``model.infer`` in batches.
    Frames of (near-)digital silence get zero posteriors; each local speaker gets a voice
    profile over the frames where it alone is above ``threshold``, after being split into
    one column per voice (:func:`split_voices`) if ``split``, and an embedding from
    ``speaker_encoder`` (:mod:`diarize.models.speaker`) if given. ``progress(n)`` after each
    batch."""
    if batch_size < 1:
        raise DiarizeError(f"batch size must be >= 1, got {batch_size}")
    outputs: list[WindowOutput] = []
    batch: list[tuple[int, np.ndarray]] = []
    settings = (samples_per_frame, device, max_speakers, threshold, sample_rate, split)
    for item in windows:
        batch.append(item)
        if len(batch) == batch_size:
            outputs += _infer_batch(model, batch, *settings, speaker_encoder)
            batch = []
            if progress:
                progress(batch_size)
    if batch:
        outputs += _infer_batch(model, batch, *settings, speaker_encoder)
        if progress:
            progress(len(batch))
    return outputs


def _infer_batch(
    model,
    batch,
    samples_per_frame,
    device,
    max_speakers,
    threshold,
    sample_rate,
    split,
    speaker_encoder,
) -> list[WindowOutput]:
    import torch

    lengths = [len(wave) for _, wave in batch]
    wave = np.zeros((len(batch), max(lengths)), dtype=np.float32)  # (batch, samples)
    for i, (_, w) in enumerate(batch):
        wave[i, : len(w)] = w
    with torch.inference_mode():
        out = model.infer(
            torch.from_numpy(wave).to(device),
            torch.tensor(lengths, dtype=torch.long, device=device),
            max_speakers=max_speakers,
        )
    results = []
    for (start, w), (probs, attractors) in zip(batch, out, strict=True):
        probs = probs.float().cpu().numpy()  # (frames, local speakers)
        frames = min(len(probs), len(w) // samples_per_frame)
        probs = probs[:frames].copy()
        peak = (
            np.abs(w[: frames * samples_per_frame]).reshape(frames, samples_per_frame).max(axis=1)
        )
        probs[peak < SILENCE_PEAK] = 0.0
        attractors = attractors.float().cpu().numpy()
        try:
            features = voice_frames(w, samples_per_frame, sample_rate)[:frames]
        except ValueError:  # frames not a whole number of 10 ms: link by attractors
            results.append(WindowOutput(start, probs, attractors))
            continue
        source = np.arange(probs.shape[1])
        if split:
            probs, source = split_voices(probs, features, threshold)
        voice, counts = voice_profiles(features, probs > threshold)
        embeddings = None
        if speaker_encoder is not None:
            active = probs > threshold
            embeddings = _embed(speaker_encoder, w, active, counts, samples_per_frame, sample_rate)
        results.append(WindowOutput(start, probs, attractors[source], voice, counts, embeddings))
    return results


def _embed(
    encoder,
    wave: np.ndarray,
    active: np.ndarray,
    counts: np.ndarray,
    samples_per_frame: int,
    sample_rate: int,
) -> np.ndarray:
    """(local speakers, embedding) of the speakers heard alone >= MIN_VOICE_FRAMES frames of
    ``active (frames, local speakers)`` in ``wave``; zeros for the others."""
    import torch

    frames = speaker_frames(wave[: len(active) * samples_per_frame], sample_rate)
    sub = len(frames) // max(len(active), 1)  # 10 ms frames per model frame (a whole number)
    alone = active & (active.sum(1, keepdims=True) == 1)
    device = next(encoder.parameters()).device
    out = np.zeros((active.shape[1], encoder.config.embedding), dtype=np.float32)
    for k in np.flatnonzero(counts >= MIN_VOICE_FRAMES):
        rows = (np.flatnonzero(alone[:, k])[:, None] * sub + np.arange(sub)).ravel()
        x = torch.from_numpy(frames[rows]).to(device)
        out[k] = encoder.embed(x).float().cpu().numpy()
    return out


def split_voices(
    probs: np.ndarray, features: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Give each voice of a local speaker its own column: probs (frames, local speakers),
    features (frames, N_MELS + 1) -> probs (frames, columns), source (columns,) = the local
    speaker each column comes from. A local speaker whose turns sound like several persons
    (:func:`turn_groups`) becomes one column per voice, each holding its posteriors on the
    frames nearest to that voice's turns and 0 elsewhere; the others stay as they are."""
    active = probs > threshold
    alone = active & (active.sum(1, keepdims=True) == 1)
    columns, source = [], []
    for k in range(probs.shape[1]):
        group = turn_groups(
            features, active[:, k], alone[:, k], SPLIT_COST, MIN_TURN_FRAMES,
            MIN_VOICE_FRAMES, F0_WEIGHT,
        )  # fmt: skip
        for g in range(1 if group is None else int(group.max()) + 1):
            columns.append(probs[:, k] if group is None else np.where(group == g, probs[:, k], 0))
            source.append(k)
    if not columns:
        return probs, np.zeros(0, dtype=np.int64)
    return np.stack(columns, axis=1).astype(probs.dtype), np.array(source, dtype=np.int64)


# 3. Linking ---------------------------------------------------------------------------------


def link(
    windows: list[WindowOutput],
    threshold: float = 0.5,
    link_threshold: float = 0.5,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    min_active_frames: int = MIN_ACTIVE_FRAMES,
) -> list[np.ndarray]:
    """Global speaker of each local speaker of ``windows`` (in time order): per window an
    int array ``(local speakers,)``, ``-1`` for local speakers with fewer than
    ``min_active_frames`` frames above ``threshold``. Global speakers are numbered by their
    first active frame."""
    check_speaker_counts(num_speakers, min_speakers, max_speakers)
    nodes = [
        (w, k)
        for w, win in enumerate(windows)
        for k in range(win.probs.shape[1])
        if (win.probs[:, k] > threshold).sum() >= min_active_frames
    ]
    assignment = [np.full(win.probs.shape[1], -1, dtype=np.int64) for win in windows]
    if not nodes:
        return assignment
    sim = similarity(windows, nodes, threshold, min_active_frames)  # (nodes, nodes)
    cannot = _cannot_link(windows, nodes, threshold)
    weight = np.array([(windows[w].probs[:, k] > threshold).sum() for w, k in nodes], dtype=float)
    # Speakers heard alone are clustered (all of them when nobody is); the others then join
    # the most similar cluster they may.
    core = np.array([_heard(windows[w], k) for w, k in nodes])
    if not core.any():
        core[:] = True
    labels = np.full(len(nodes), -1)
    both = np.ix_(core, core)
    labels[core] = constrained_ahc(
        sim[both], cannot[both], link_threshold, weight[core], num_speakers, min_speakers,
        max_speakers,
    )  # fmt: skip
    labels = _attach(labels, sim, cannot, num_speakers or max_speakers)
    first = {}
    for (w, k), label in zip(nodes, labels, strict=True):
        onset = windows[w].start + int(np.argmax(windows[w].probs[:, k] > threshold))
        first[label] = min(first.get(label, onset), onset)
    order = {label: g for g, label in enumerate(sorted(first, key=lambda c: (first[c], c)))}
    for (w, k), label in zip(nodes, labels, strict=True):
        assignment[w][k] = order[label]
    return assignment


def _cannot_link(
    windows: list[WindowOutput], nodes: list[tuple[int, int]], threshold: float
) -> np.ndarray:
    """(nodes, nodes) bool: local speakers of one window that are active together in at
    least one frame are two persons. (Two columns of one window that never speak at the same
    time, e.g. the voices :func:`split_voices` found in one local speaker, may be one.)"""
    cannot = np.zeros((len(nodes), len(nodes)), dtype=bool)
    by_window: dict[int, list[int]] = {}
    for n, (w, _) in enumerate(nodes):
        by_window.setdefault(w, []).append(n)
    for w, members in by_window.items():
        active = windows[w].probs[:, [nodes[n][1] for n in members]] > threshold
        together = active.T.astype(np.int64) @ active  # (members, members) frames shared
        cannot[np.ix_(members, members)] = together > 0
    np.fill_diagonal(cannot, False)
    return cannot


def _heard(window: WindowOutput, k: int) -> bool:
    """Whether local speaker ``k`` of ``window`` has a voice profile to compare."""
    return window.voice_frames is not None and window.voice_frames[k] >= MIN_VOICE_FRAMES


def _attach(
    labels: np.ndarray, sim: np.ndarray, cannot: np.ndarray, ceiling: int | None = None
) -> np.ndarray:
    """Give each unlabelled item (-1) the cluster of highest average similarity among those
    holding no item it cannot link with, or a new cluster of its own if there is none (or,
    once there are ``ceiling`` clusters, the most similar cluster after all). Items are
    attached in index order, each seeing the ones attached before it."""
    labels = labels.copy()
    for i in np.flatnonzero(labels < 0):
        clusters = np.unique(labels[labels >= 0])
        score = np.array([sim[i, labels == c].mean() for c in clusters])
        allowed = np.array([not cannot[i, labels == c].any() for c in clusters])
        if allowed.any():
            labels[i] = clusters[np.argmax(np.where(allowed, score, -np.inf))]
        elif ceiling is not None and len(clusters) >= ceiling:
            labels[i] = clusters[np.argmax(score)]
        else:
            labels[i] = labels.max() + 1
    return labels


def check_speaker_counts(num: int | None, lo: int | None, hi: int | None) -> None:
    for name, value in (("num_speakers", num), ("min_speakers", lo), ("max_speakers", hi)):
        if value is not None and value < 1:
            raise DiarizeError(f"{name} must be >= 1, got {value}")
    if num is not None and (lo is not None or hi is not None):
        raise DiarizeError("give either num_speakers or min/max_speakers, not both")
    if lo is not None and hi is not None and lo > hi:
        raise DiarizeError(f"min_speakers ({lo}) is larger than max_speakers ({hi})")


def similarity(
    windows: list[WindowOutput],
    nodes: list[tuple[int, int]],
    threshold: float,
    min_active_frames: int,
) -> np.ndarray:
    """(nodes, nodes) similarity of local speakers ``(window, index)``: the cosine of their
    speaker embeddings where the windows have them, else that of their voices
    (:func:`voice_similarity`), for the speakers heard alone long enough (:func:`_heard`);
    the cosine of their attractors for the others; for two windows that overlap, averaged (weight :data:`OVERLAP_WEIGHT`) with the agreement of
    their activities on the shared frames, in [-1, 1] (2 x soft Dice - 1), when either
    speaks there."""
    att = np.stack([windows[w].attractors[k] for w, k in nodes]).astype(
        np.float64
    )  # (nodes, d_model)
    att /= np.maximum(np.linalg.norm(att, axis=1, keepdims=True), 1e-12)
    sim = att @ att.T
    heard = [n for n, (w, k) in enumerate(nodes) if _heard(windows[w], k)]
    if heard and all(windows[nodes[n][0]].embeddings is not None for n in heard):
        emb = np.stack([windows[nodes[n][0]].embeddings[nodes[n][1]] for n in heard])
        sim[np.ix_(heard, heard)] = emb.astype(np.float64) @ emb.T  # cosine
    elif heard:
        voice = np.stack([windows[nodes[n][0]].voice[nodes[n][1]] for n in heard])
        counts = np.array([windows[nodes[n][0]].voice_frames[nodes[n][1]] for n in heard])
        sim[np.ix_(heard, heard)] = voice_similarity(voice, counts)  # voice: (heard, N_MELS + 1)
    by_window: dict[int, list[int]] = {}
    for n, (w, _) in enumerate(nodes):
        by_window.setdefault(w, []).append(n)
    ws = sorted(by_window)
    for i, wi in enumerate(ws):
        for wj in ws[i + 1 :]:
            a, b = windows[wi], windows[wj]
            lo, hi = max(a.start, b.start), min(a.stop, b.stop)
            if hi <= lo:
                break  # windows are in time order: no later one overlaps `a` either
            pa = a.probs[
                lo - a.start : hi - a.start, [nodes[n][1] for n in by_window[wi]]
            ]  # (shared, na)
            pb = b.probs[
                lo - b.start : hi - b.start, [nodes[n][1] for n in by_window[wj]]
            ]  # (shared, nb)
            agree, evident = _agreement(pa, pb, threshold, min_active_frames)
            block, mirror = (
                np.ix_(by_window[wi], by_window[wj]),
                np.ix_(by_window[wj], by_window[wi]),
            )
            mixed = np.where(
                evident, (sim[block] + OVERLAP_WEIGHT * agree) / (1 + OVERLAP_WEIGHT), sim[block]
            )
            sim[block], sim[mirror] = mixed, mixed.T
    return sim


def voice_similarity(
    voice: np.ndarray, counts: np.ndarray, f0_weight: float = F0_WEIGHT, floor: float = VOICE_FLOOR
) -> np.ndarray:
    """voice (n, N_MELS + 1) profiles (log-mel, log F0 or NaN) over ``counts (n,)`` frames ->
    similarity (n, n) in [-1, 1].

    Each profile becomes a vector ``a`` = its log-mel minus the recording's average one, and
    ``f0_weight`` x its log F0 minus the average log F0 (0 when unvoiced); averages are
    weighted by ``counts``. The similarity ``1 - |a - b|^2 / (|a|^2 + |b|^2 + floor)`` is
    close to 1 for two profiles of one voice, near -1 for voices on opposite sides of the
    average, and near 1 again when the profiles differ by less than the floor (a recording of
    one voice has no average to contrast it with: only noise is left after centring)."""
    weight = counts.astype(np.float64)
    mel = voice[:, :N_MELS].astype(np.float64)
    mel = mel - (weight[:, None] * mel).sum(0) / weight.sum()
    f0 = voice[:, N_MELS].astype(np.float64)
    voiced = ~np.isnan(f0)
    pitch = np.zeros(len(f0))
    if voiced.any():
        pitch[voiced] = f0[voiced] - (weight[voiced] * f0[voiced]).sum() / weight[voiced].sum()
    a = np.concatenate([mel, f0_weight * pitch[:, None]], axis=1)  # (n, N_MELS + 1)
    norm = (a**2).sum(1)
    dist = norm[:, None] + norm[None, :] - 2 * a @ a.T  # |a - b|^2
    return 1 - np.maximum(dist, 0) / (norm[:, None] + norm[None, :] + floor)


def _agreement(pa: np.ndarray, pb: np.ndarray, threshold: float, min_active_frames: int):
    """pa (frames, na), pb (frames, nb) -> agreement (na, nb) in [-1, 1], evident (na, nb)."""
    pa, pb = pa.astype(np.float64), pb.astype(np.float64)
    dot = pa.T @ pb  # (na, nb)
    energy = (pa**2).sum(0)[:, None] + (pb**2).sum(0)[None, :]
    dice = 2 * dot / np.maximum(energy, 1e-12)
    active = (pa > threshold).sum(0)[:, None] + (pb > threshold).sum(0)[None, :]
    return 2 * dice - 1, active >= min_active_frames


def constrained_ahc(
    sim: np.ndarray,
    cannot: np.ndarray,
    threshold: float,
    weight: np.ndarray | None = None,
    num_clusters: int | None = None,
    min_clusters: int | None = None,
    max_clusters: int | None = None,
) -> np.ndarray:
    """Average-linkage agglomerative clustering of ``n`` items with similarity ``sim (n, n)``
    and cannot-link pairs ``cannot (n, n)`` -> cluster id per item ``(n,)``.

    Clusters merge, most similar first, while their average similarity is >= ``threshold``;
    below it they still merge down to ``num_clusters`` or ``max_clusters``, and never below
    ``num_clusters`` or ``min_clusters``. Clusters holding a cannot-link pair never merge;
    if that leaves more clusters than asked for, the smallest (by ``weight``, default item
    count) are folded into the most similar of the others.
    """
    n = len(sim)
    weight = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
    total = sim.astype(np.float64).copy()  # sum of item similarities between two clusters
    blocked = cannot.copy() | np.eye(n, dtype=bool)
    size, alive = np.ones(n), np.ones(n, dtype=bool)
    score = np.where(blocked, -np.inf, total)  # average similarity, -inf where merging is barred
    labels = np.arange(n)
    floor = num_clusters or min_clusters or 1
    ceiling = num_clusters or max_clusters or n
    k = n
    while k > floor:
        a, b = np.unravel_index(np.argmax(score), score.shape)
        if score[a, b] == -np.inf or (score[a, b] < threshold and k <= ceiling):
            break
        total[a] += total[b]
        total[:, a] = total[a]
        blocked[a] |= blocked[b]
        blocked[:, a] = blocked[a]
        size[a] += size[b]
        alive[b] = False
        score[a] = np.where(blocked[a] | ~alive, -np.inf, total[a] / (size[a] * size))
        score[:, a] = score[a]
        score[b], score[:, b] = -np.inf, -np.inf
        labels[labels == b] = a
        k -= 1
    if k > ceiling:
        labels = _fold(labels, total / np.outer(size, size), weight, ceiling)
    return labels


def _fold(labels: np.ndarray, score: np.ndarray, weight: np.ndarray, keep: int) -> np.ndarray:
    """Merge every cluster but the ``keep`` heaviest into its most similar kept cluster."""
    clusters = np.unique(labels)
    mass = np.array([weight[labels == c].sum() for c in clusters])
    kept = clusters[np.argsort(-mass, kind="stable")[:keep]]
    out = labels.copy()
    for c in clusters:
        if c not in kept:
            out[labels == c] = kept[np.argmax(score[c, kept])]
    return out


# 4. Stitching and post-processing ------------------------------------------------------------


def stitch(
    windows: list[WindowOutput], assignment: list[np.ndarray], num_frames: int
) -> np.ndarray:
    """Posteriors of the global speakers ``(num_frames, speakers)``: each window's local
    columns moved to their global speaker (max when several land on one), then averaged over
    the windows covering each frame, weighted by how central the frame is in each window
    (weight 1 at the centre falling linearly towards the edges, where the network saw the
    least context). Where two windows disagree on who speaks, the one that saw the frame in
    its middle prevails instead of both being halved below the threshold."""
    speakers = max((int(a.max()) + 1 for a in assignment if len(a)), default=0)
    total = np.zeros((num_frames, speakers), dtype=np.float64)
    weight = np.zeros(num_frames, dtype=np.float64)
    for win, glob in zip(windows, assignment, strict=True):
        frames = max(0, min(len(win.probs), num_frames - win.start))
        local = np.zeros((frames, speakers))  # (frames, speakers)
        for k, g in enumerate(glob):
            if g >= 0:
                local[:, g] = np.maximum(local[:, g], win.probs[:frames, k])
        centre = (len(win.probs) - 1) / 2
        w = 1 - np.abs(np.arange(frames) - centre) / (centre + 1)  # (frames,) in (0, 1]
        total[win.start : win.start + frames] += w[:, None] * local
        weight[win.start : win.start + frames] += w
    return (total / np.maximum(weight, 1e-12)[:, None]).astype(np.float32)


def postprocess(probs: np.ndarray, config: InferConfig, frame_shift: float) -> np.ndarray:
    """probs (frames, speakers) -> activity (frames, speakers) bool: threshold, median filter
    over ``config.median`` frames, pauses shorter than ``min_duration_off`` filled, then turns
    shorter than ``min_duration_on`` removed (both rounded to frames)."""
    if config.median < 1:
        raise DiarizeError(f"median filter width must be >= 1 frame, got {config.median}")
    active = probs > config.threshold
    if config.median > 1 and len(active):
        active = median_filter(active, size=(config.median, 1), mode="nearest")
    min_off = round(config.min_duration_off / frame_shift)
    min_on = round(config.min_duration_on / frame_shift)
    for s in range(active.shape[1]):
        active[:, s] = _clean(active[:, s], min_on, min_off)
    return active


def _clean(x: np.ndarray, min_on: int, min_off: int) -> np.ndarray:
    """Fill interior pauses shorter than ``min_off`` frames, then drop turns shorter than ``min_on``."""
    x = x.copy()
    runs = _runs(x)
    for (_, end), (start, _) in zip(runs, runs[1:], strict=False):
        if start - end < min_off:
            x[end:start] = True
    for start, end in _runs(x):
        if end - start < min_on:
            x[start:end] = False
    return x


def _runs(x: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], x.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()
    return list(zip(starts, ends, strict=True))


def exclusive(probs: np.ndarray, active: np.ndarray) -> np.ndarray:
    """One speaker at a time: in each frame with any active speaker, only the active
    speaker of highest posterior stays. probs, active (frames, speakers) -> (frames, speakers)."""
    out = np.zeros_like(active)
    if active.size:
        best = np.where(active, probs, -np.inf).argmax(axis=1)  # (frames,)
        frames = np.flatnonzero(active.any(axis=1))
        out[frames, best[frames]] = True
    return out


# Whole recordings ----------------------------------------------------------------------------


def diarize_file(
    model,
    path: str | Path,
    config: InferConfig,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    device: str = "cpu",
    *,
    uri: str | None = None,
    chunk_frames: int = TrainConfig.chunk_frames,
    sample_rate: int = SAMPLE_RATE,
    progress: Callable[[int, int], None] | None = None,
    speaker_encoder=None,
) -> Result:
    """Diarize one audio file of any length with ``model`` (``frame_shift``, ``num_frames``,
    ``infer``), streaming it window by window. ``chunk_frames``: the training chunk, the
    default window. ``progress(done, total)`` counts windows. ``speaker_encoder``
    (:func:`diarize.checkpoint.load_speaker_encoder`): link speakers by its embeddings."""
    check_speaker_counts(num_speakers, min_speakers, max_speakers)
    info = audio_info(path)
    frame_shift = float(model.frame_shift)
    spf = round(frame_shift * sample_rate)  # samples per frame
    total_samples = -(-info.num_samples * sample_rate // info.sample_rate)
    num_frames = model.num_frames(total_samples)
    window, hop = window_frames(config, frame_shift, chunk_frames)
    starts = window_starts(num_frames, window, hop) if num_frames else []
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        progress(done[0], len(starts))

    blocks = iter_blocks(path, hop * spf / sample_rate, sample_rate)
    waves = slide(blocks, [s * spf for s in starts], window * spf)
    cap = num_speakers or max_speakers
    outputs = infer_windows(
        model,
        zip(starts, waves, strict=True),
        spf,
        config.batch_size,
        device,
        cap,
        tick if progress else None,
        config.threshold,
        sample_rate,
        config.split_voices,
        speaker_encoder,
    )
    counts = (num_speakers, min_speakers, max_speakers)
    return finish(
        outputs, num_frames, frame_shift, config, uri or Path(path).stem, counts, info.duration
    )


def finish(
    outputs: list[WindowOutput],
    num_frames: int,
    frame_shift: float,
    config: InferConfig,
    uri: str,
    counts: tuple[int | None, int | None, int | None] = (None, None, None),
    duration: float = 0.0,
) -> Result:
    """Link, stitch and post-process the windows of one recording; ``counts`` is
    ``(num_speakers, min_speakers, max_speakers)``."""
    assignment = link(outputs, config.threshold, config.link_threshold, *counts)
    probs = stitch(outputs, assignment, num_frames)  # (frames, speakers)
    labels = [f"SPEAKER_{g:02d}" for g in range(probs.shape[1])]
    active = postprocess(probs, config, frame_shift)
    return Result(
        uri=uri,
        annotation=labels_to_annotation(active, frame_shift, uri, labels),
        exclusive=labels_to_annotation(exclusive(probs, active), frame_shift, uri, labels),
        probs=probs,
        labels=labels,
        frame_shift=frame_shift,
        duration=duration,
    )


def talk_time(annotation: Annotation) -> dict[str, float]:
    """Seconds of speech per speaker (overlapping speech counts for each speaker)."""
    return {
        str(label): float(annotation.label_duration(label)) for label in sorted(annotation.labels())
    }
