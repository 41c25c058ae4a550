"""Stage 3, linking: the windows' local speakers become the recording's global speakers.

Local speakers of all windows are clustered (:func:`cluster_core`, ``LinkConfig.method``:
constrained average-linkage AHC, :func:`constrained_ahc`; centroid linkage followed by a
re-assignment of each local speaker to its nearest cluster, :func:`reassign`, as pyannote
3.x does; or :func:`spectral_clusters` with an eigen-gap speaker count; any of them then
optionally :func:`split_clusters`) on a similarity chosen once per recording
(:func:`choose_similarity`): the cosine of speaker embeddings (the checkpoint's speaker
encoder, or a pretrained model: :mod:`diarize.inference.embed`) when the windows have them
(:class:`EmbeddingSimilarity`), else their voices (:class:`VoiceSimilarity`: average
log-mel spectrum and log F0, centred on the recording's average voice), else their
attractors (:class:`AttractorSimilarity`). Embeddings and voices count only for local
speakers heard alone long enough (``LinkConfig.min_voice_frames``; a pretrained model's
``min_duration``); the others are compared by attractors and join the clusters after them.
Where windows overlap, the agreement of the two speakers' activities on the shared frames
is mixed in (:func:`mix_agreement`). Two local speakers of one window that are active at
the same time never merge (:func:`cannot_link`). The number of global speakers is given,
bounded or set by ``InferConfig.link_threshold`` (:class:`SpeakerCount`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diarize.config import InferConfig, LinkConfig
from diarize.features.voice import N_MELS
from diarize.inference.local import WindowOutput
from diarize.utils import DiarizeError

Node = tuple[int, int]  # (window index, local speaker index)

# InferConfig fields for linking with a pretrained embedding model of each kind
# (diarize.embeddings): applied when one is given at run time
# (Diarizer.from_pretrained(embedding=...), diarize run --embedding), stored with it by
# tools/export_model.py --embedding. They set every knob the bundled model tunes for its
# own encoder (neighbours, Laplacian, cluster splitting), so none of those leaks in. Tuned
# with CAM++ zh-en on data/dev_real{2,3,4,_long} and ten 20-minute meetings
# (bench/long_meetings.py, seed 0), checked on ten others (seed 1) and three 60-minute
# recordings (bench/long_audio.py): README, "Linking: methods x embedding models".
# ResNet and ECAPA take CAM++'s settings, not measured.
_CAMPPLUS_LINKING = {
    "link_threshold": 0.3,
    "link": {
        "method": "spectral",
        "spectral_neighbours": 10,
        "spectral_neighbours_fraction": 0.02,
        "spectral_laplacian": "normalised",
        "split_below": 0.0,
    },
}
PRETRAINED_LINKING: dict[str, dict] = {
    "campplus": _CAMPPLUS_LINKING,
    "resnet": _CAMPPLUS_LINKING,
    "ecapa": _CAMPPLUS_LINKING,
}


@dataclass(frozen=True)
class SpeakerCount:
    """How many global speakers: exactly ``num``, or between ``min`` and ``max`` (any bound
    may be None); checked once, here."""

    num: int | None = None
    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        for name, value in (("num_speakers", self.num), ("min_speakers", self.min),
                            ("max_speakers", self.max)):  # fmt: skip
            if value is not None and value < 1:
                raise DiarizeError(f"{name} must be >= 1, got {value}")
        if self.num is not None and (self.min is not None or self.max is not None):
            raise DiarizeError("give either num_speakers or min/max_speakers, not both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise DiarizeError(
                f"min_speakers ({self.min}) is larger than max_speakers ({self.max})"
            )

    @property
    def cap(self) -> int | None:
        """The most speakers there may be (None: no limit)."""
        return self.num or self.max


# Similarity strategies ------------------------------------------------------------------------


class AttractorSimilarity:
    """Cosine of the EDA attractors: all a window has when no voice could be measured."""

    def __call__(self, windows: list[WindowOutput], nodes: list[Node]) -> np.ndarray:
        """(nodes, nodes) cosine of the nodes' attractors."""
        att = np.stack([windows[w].attractors[k] for w, k in nodes]).astype(np.float64)
        att /= np.maximum(np.linalg.norm(att, axis=1, keepdims=True), 1e-12)  # (nodes, d_model)
        return att @ att.T


class _HeardAlone(AttractorSimilarity):
    """Attractors for all, replaced by :meth:`heard_similarity` between the speakers heard
    alone long enough."""

    def __init__(self, link: LinkConfig, heard: list[int]):
        self.link, self.heard = link, heard  # heard: indices of the nodes heard alone

    def __call__(self, windows: list[WindowOutput], nodes: list[Node]) -> np.ndarray:
        sim = super().__call__(windows, nodes)
        picked = [nodes[n] for n in self.heard]
        sim[np.ix_(self.heard, self.heard)] = self.heard_similarity(windows, picked)
        return sim

    def heard_similarity(self, windows: list[WindowOutput], nodes: list[Node]) -> np.ndarray:
        raise NotImplementedError


class VoiceSimilarity(_HeardAlone):
    """Voice profiles (:func:`voice_similarity`) of the speakers heard alone."""

    def heard_similarity(self, windows: list[WindowOutput], nodes: list[Node]) -> np.ndarray:
        voice = np.stack([windows[w].voice[k] for w, k in nodes])  # (heard, N_MELS + 1)
        counts = np.array([windows[w].voice_frames[k] for w, k in nodes])
        return voice_similarity(voice, counts, self.link.f0_weight, self.link.voice_floor)


class EmbeddingSimilarity(_HeardAlone):
    """Cosine of the speaker-encoder embeddings of the speakers heard alone."""

    def heard_similarity(self, windows: list[WindowOutput], nodes: list[Node]) -> np.ndarray:
        emb = np.stack([windows[w].embeddings[k] for w, k in nodes]).astype(np.float64)
        return emb @ emb.T  # (heard, heard) cosine: the embeddings are unit vectors


def choose_similarity(windows: list[WindowOutput], nodes: list[Node], link: LinkConfig):
    """The strategy for this recording: embeddings when every window of a speaker heard
    alone has them, else voices; attractors when nobody is heard alone long enough."""
    heard = [n for n, (w, k) in enumerate(nodes) if is_heard(windows[w], k, link)]
    if not heard:
        return AttractorSimilarity()
    if all(windows[nodes[n][0]].embeddings is not None for n in heard):
        return EmbeddingSimilarity(link, heard)
    return VoiceSimilarity(link, heard)


def is_heard(window: WindowOutput, k: int, link: LinkConfig) -> bool:
    """Whether local speaker ``k`` of ``window`` counts as heard alone: it has a pretrained
    embedding (``window.embedded``), else a voice measured over enough frames."""
    if window.embedded is not None:
        return bool(window.embedded[k])
    return window.voice_frames is not None and window.voice_frames[k] >= link.min_voice_frames


def voice_similarity(
    voice: np.ndarray,
    counts: np.ndarray,
    f0_weight: float = LinkConfig.f0_weight,
    floor: float = LinkConfig.voice_floor,
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


# Activity agreement and cannot-link -----------------------------------------------------------


def by_window(nodes: list[Node]) -> dict[int, list[int]]:
    """{window index: indices of its nodes}, windows in time order."""
    groups: dict[int, list[int]] = {}
    for n, (w, _) in enumerate(nodes):
        groups.setdefault(w, []).append(n)
    return groups


def mix_agreement(
    sim: np.ndarray, windows: list[WindowOutput], nodes: list[Node], link: LinkConfig
) -> np.ndarray:
    """``sim (nodes, nodes)`` where two windows overlap averaged (weight
    ``link.overlap_weight``) with the agreement of the two speakers' activities on the
    shared frames (:func:`agreement`), when either speaks there; in place, returned."""
    groups = by_window(nodes)
    ws = sorted(groups)
    for i, wi in enumerate(ws):
        for wj in ws[i + 1 :]:
            a, b = windows[wi], windows[wj]
            lo, hi = max(a.start, b.start), min(a.stop, b.stop)
            if hi <= lo:
                break  # windows are in time order: no later one overlaps `a` either
            ka, kb = [nodes[n][1] for n in groups[wi]], [nodes[n][1] for n in groups[wj]]
            shared_a, shared_b = (
                slice(lo - a.start, hi - a.start),
                slice(lo - b.start, hi - b.start),
            )
            agree, evident = agreement(
                a.probs[shared_a, ka], b.probs[shared_b, kb],  # (shared, na), (shared, nb)
                a.active[shared_a, ka], b.active[shared_b, kb], link.min_active_frames,
            )  # fmt: skip
            block, mirror = np.ix_(groups[wi], groups[wj]), np.ix_(groups[wj], groups[wi])
            w = link.overlap_weight
            mixed = np.where(evident, (sim[block] + w * agree) / (1 + w), sim[block])
            sim[block], sim[mirror] = mixed, mixed.T
    return sim


def agreement(pa, pb, active_a, active_b, min_active_frames: int):
    """pa (frames, na), pb (frames, nb) posteriors and their masks -> agreement (na, nb) in
    [-1, 1] (2 x soft Dice - 1) and evident (na, nb): at least ``min_active_frames`` active
    frames between the two."""
    pa, pb = pa.astype(np.float64), pb.astype(np.float64)
    dot = pa.T @ pb  # (na, nb)
    energy = (pa**2).sum(0)[:, None] + (pb**2).sum(0)[None, :]
    dice = 2 * dot / np.maximum(energy, 1e-12)
    active = active_a.sum(0)[:, None] + active_b.sum(0)[None, :]
    return 2 * dice - 1, active >= min_active_frames


def cannot_link(windows: list[WindowOutput], nodes: list[Node]) -> np.ndarray:
    """(nodes, nodes) bool: local speakers of one window that are active together in at
    least one frame are two persons. (Two columns of one window that never speak at the same
    time, e.g. the voices of one split local speaker, may be one.)"""
    cannot = np.zeros((len(nodes), len(nodes)), dtype=bool)
    for w, members in by_window(nodes).items():
        active = windows[w].active[:, [nodes[n][1] for n in members]]
        together = active.T.astype(np.int64) @ active  # (members, members) frames shared
        cannot[np.ix_(members, members)] = together > 0
    np.fill_diagonal(cannot, False)
    return cannot


# Linking --------------------------------------------------------------------------------------


def link(
    windows: list[WindowOutput],
    config: InferConfig | None = None,
    count: SpeakerCount | None = None,
) -> list[np.ndarray]:
    """Global speaker of each local speaker of ``windows`` (in time order): per window an
    int array ``(local speakers,)``, ``-1`` for local speakers active in fewer than
    ``config.link.min_active_frames`` frames. Global speakers are numbered by their first
    active frame. Default: ``InferConfig()``, any number of speakers."""
    config, count = config or InferConfig(), count or SpeakerCount()
    assignment = [np.full(win.probs.shape[1], -1, dtype=np.int64) for win in windows]
    nodes = [
        (w, k)
        for w, win in enumerate(windows)
        for k in range(win.probs.shape[1])
        if win.active[:, k].sum() >= config.link.min_active_frames
    ]
    if not nodes:
        return assignment
    labels = cluster(windows, nodes, config, count)
    order = _first_onset_order(windows, nodes, labels)
    for (w, k), label in zip(nodes, labels, strict=True):
        assignment[w][k] = order[label]
    return assignment


def cluster(
    windows: list[WindowOutput], nodes: list[Node], config: InferConfig, count: SpeakerCount
) -> np.ndarray:
    """Cluster label of each node: the speakers heard alone are clustered (all of them when
    nobody is), then the others join the most similar cluster they may."""
    strategy = choose_similarity(windows, nodes, config.link)
    sim = mix_agreement(strategy(windows, nodes), windows, nodes, config.link)  # (nodes, nodes)
    cannot = cannot_link(windows, nodes)
    weight = np.array([windows[w].active[:, k].sum() for w, k in nodes], dtype=float)
    core = np.array([is_heard(windows[w], k, config.link) for w, k in nodes])
    if not core.any():
        core[:] = True
    labels = np.full(len(nodes), -1)
    both = np.ix_(core, core)
    groups = list(by_window([nodes[n] for n in np.flatnonzero(core)]).values())
    labels[core] = cluster_core(sim[both], cannot[both], weight[core], groups, config, count)
    return _attach(labels, sim, cannot, count.cap)


def cluster_core(
    sim: np.ndarray,
    cannot: np.ndarray,
    weight: np.ndarray,
    groups: list[list[int]],
    config: InferConfig,
    count: SpeakerCount,
) -> np.ndarray:
    """Cluster label per item of ``sim (items, items)`` by ``config.link.method``;
    ``groups``: the items of each window (re-assigned together, :func:`reassign`)."""
    method, threshold, smallest = (
        config.link.method,
        config.link_threshold,
        config.link.min_cluster_size,
    )
    floor = count.num or count.min
    if method == "spectral":
        least = max([count.min or 1, *(len(apart_members(cannot, g)) for g in groups)])
        labels = spectral_clusters(
            sim, cannot, threshold, count.num, least, count.max, config.link.spectral_keep,
            config.link.spectral_neighbours, config.link.spectral_laplacian,
            config.link.spectral_neighbours_fraction,
        )  # fmt: skip
        labels = reassign(labels, sim, cannot, groups, floor, only_broken=True, min_size=smallest)
    else:
        labels = constrained_ahc(
            sim, cannot, threshold, weight, count.num, count.min, count.max, linkage=method
        )
        if method == "centroid" or smallest > 1:
            only_broken = method != "centroid"  # average linkage: only the small clusters move
            labels = reassign(labels, sim, cannot, groups, floor, only_broken, min_size=smallest)
    if config.link.split_below > 0 and not count.num:
        labels = split_clusters(labels, sim, config.link.split_below, count.max)
        labels = reassign(labels, sim, cannot, groups, floor, only_broken=True)
    return labels


# smallest cluster split_clusters tries to cut, and the least share of it either half keeps
SPLIT_MIN_ITEMS, SPLIT_MIN_SHARE = 6, 0.25


def split_clusters(
    labels: np.ndarray, sim: np.ndarray, below: float, max_clusters: int | None = None
) -> np.ndarray:
    """Cut clusters in two, until none may be cut or there are ``max_clusters``: a cluster
    of at least :data:`SPLIT_MIN_ITEMS` items is cut along its Fiedler vector
    (:func:`bipartition`) when each half keeps at least :data:`SPLIT_MIN_SHARE` of its items
    and their centroids have a cosine (:func:`centroid_cosine`, kernel ``sim (n, n)``) below
    ``below``. labels (n,) -> labels (n,); cut-off halves take new labels."""
    labels = labels.copy()
    pending = list(np.unique(labels))
    while pending and len(np.unique(labels)) < (max_clusters or len(labels) + 1):
        members = np.flatnonzero(labels == pending.pop())
        if len(members) < SPLIT_MIN_ITEMS:
            continue
        a, b = bipartition(sim, members)
        if (
            min(len(a), len(b)) >= SPLIT_MIN_SHARE * len(members)
            and centroid_cosine(sim, a, b) < below
        ):
            labels[b] = labels.max() + 1
            pending += [labels[a[0]], labels[b[0]]]
    return labels


def bipartition(sim: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``members`` of a cluster in two: k-means on the unit-length rows of the first
    two eigenvectors of the normalised Laplacian of their similarities (at least 0)."""
    from scipy.linalg import eigh

    affinity = np.maximum(sim[np.ix_(members, members)], 0.0)
    np.fill_diagonal(affinity, 0.0)
    _, vectors = eigh(laplacian_of(affinity, "normalised"), subset_by_index=[0, 1])
    rows = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    side = kmeans(rows, 2)
    return members[side == 0], members[side == 1]


def centroid_cosine(sim: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the mean vectors of item sets ``a`` and ``b``, read from the kernel
    ``sim (n, n)`` of their inner products."""
    within = sim[np.ix_(a, a)].mean() * sim[np.ix_(b, b)].mean()
    return float(sim[np.ix_(a, b)].mean() / np.sqrt(max(within, 1e-12)))


def _first_onset_order(windows, nodes, labels) -> dict[int, int]:
    """{cluster label: global speaker}, numbered by first active frame."""
    first: dict[int, int] = {}
    for (w, k), label in zip(nodes, labels, strict=True):
        onset = windows[w].start + int(np.argmax(windows[w].active[:, k]))
        first[label] = min(first.get(label, onset), onset)
    return {label: g for g, label in enumerate(sorted(first, key=lambda c: (first[c], c)))}


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


def constrained_ahc(
    sim: np.ndarray,
    cannot: np.ndarray,
    threshold: float,
    weight: np.ndarray | None = None,
    num_clusters: int | None = None,
    min_clusters: int | None = None,
    max_clusters: int | None = None,
    linkage: str = "average",
) -> np.ndarray:
    """Agglomerative clustering of ``n`` items with similarity ``sim (n, n)`` (1 on the
    diagonal) and cannot-link pairs ``cannot (n, n)`` -> cluster id per item ``(n,)``.

    Clusters merge, most similar first, while their similarity is >= ``threshold``; below
    it they still merge down to ``num_clusters`` or ``max_clusters``, and never below
    ``num_clusters`` or ``min_clusters``. Clusters holding a cannot-link pair never merge;
    if that leaves more clusters than asked for, the smallest (by ``weight``, default item
    count) are folded into the most similar of the others. The similarity of two clusters
    (``linkage``) is their items' average similarity (``"average"``), or that of their
    centroids (``"centroid"``, :func:`_linkage`; the items' own when they are single).
    """
    n = len(sim)
    weight = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
    total = sim.astype(np.float64).copy()  # sum of item similarities between two clusters
    within = np.diag(total).copy()  # sum of item similarities inside each cluster
    blocked = cannot.copy() | np.eye(n, dtype=bool)
    size, alive = np.ones(n), np.ones(n, dtype=bool)
    start = total if linkage == "average" else _linkage(total, within, size, linkage)
    score = np.where(blocked, -np.inf, start)  # cluster similarity, -inf where merging is barred
    labels = np.arange(n)
    floor = num_clusters or min_clusters or 1
    ceiling = num_clusters or max_clusters or n
    k = n
    while k > floor:
        a, b = np.unravel_index(np.argmax(score), score.shape)
        if score[a, b] == -np.inf or (score[a, b] < threshold and k <= ceiling):
            break
        within[a] += within[b] + 2 * total[a, b]
        total[a] += total[b]
        total[:, a] = total[a]
        blocked[a] |= blocked[b]
        blocked[:, a] = blocked[a]
        size[a] += size[b]
        alive[b] = False
        row = _linkage(total[a], within, size, linkage, a)
        score[a] = np.where(blocked[a] | ~alive, -np.inf, row)
        score[:, a] = score[a]
        score[b], score[:, b] = -np.inf, -np.inf
        labels[labels == b] = a
        k -= 1
    if k > ceiling:
        labels = _fold(labels, _linkage(total, within, size, linkage), weight, ceiling)
    return labels


def _linkage(
    total: np.ndarray, within: np.ndarray, size: np.ndarray, linkage: str, a: int | None = None
) -> np.ndarray:
    """Similarity of cluster ``a`` to every cluster (``total (clusters,)``: the sums of item
    similarities between them), or of all pairs (``a`` None, ``total (clusters, clusters)``).

    Average linkage: ``total / (size_a size_b)``. Centroid linkage, with the similarity read
    as the inner product of unit vectors (a cosine kernel): ``1 - |c_a - c_b|^2 / 2``, where
    ``c`` is a cluster's mean vector, ``|c_a - c_b|^2 = W_a + W_b - 2 S_ab`` and ``W``,
    ``S`` are average similarities inside a cluster and between two; for two single items
    it is their own similarity."""
    if a is None:
        mean, row_within = total / np.outer(size, size), (within / size**2)[:, None]
    else:
        mean, row_within = total / (size[a] * size), within[a] / size[a] ** 2
    if linkage == "average":
        return mean
    return mean - (row_within + within / size**2) / 2 + 1


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


# Re-assignment and spectral clustering -------------------------------------------------------

# most speakers the eigen-gap may find when max_speakers is not given (3D-Speaker's default)
SPECTRAL_MAX_CLUSTERS = 15
SPECTRAL_MIN_KEPT = 6  # fewest neighbours an item keeps in the pruned affinity (3D-Speaker's)


def reassign(
    labels: np.ndarray,
    sim: np.ndarray,
    cannot: np.ndarray,
    groups: list[list[int]],
    floor: int | None = None,
    only_broken: bool = False,
    min_size: int = 1,
) -> np.ndarray:
    """Each item moved to the cluster whose centroid it is nearest (the cosine of the item
    and the cluster's mean vector, from the kernel ``sim (n, n)``), the items of each group
    (one window's local speakers) placed together so that no two cannot-link items share a
    cluster (:func:`assign_group`; where the clusters are too few, new ones are opened).
    Clusters of fewer than ``min_size`` items take none (as pyannote's ``min_cluster_size``;
    unless no cluster is that large). ``only_broken``: only the groups whose labels put a
    cannot-link pair together, or an item in a cluster too small, move. The labels are kept
    as they are if this would leave fewer than ``floor`` clusters."""
    clusters, counts = np.unique(labels, return_counts=True)
    large = clusters[counts >= min_size] if (counts >= min_size).any() else clusters
    member = (labels[None, :] == large[:, None]).astype(np.float64)  # (clusters, items)
    mean = sim @ member.T / member.sum(1)  # (items, clusters): item . centroid
    centre = np.einsum("ci,ij,cj->c", member, sim, member) / member.sum(1) ** 2  # |centroid|^2
    score = mean / np.sqrt(np.maximum(centre, 1e-12))  # (items, clusters) cosine
    out, fresh = labels.copy(), int(labels.max()) + 1
    for group in groups:
        apart = cannot[np.ix_(group, group)]  # (members, members)
        together = apart & (labels[group][:, None] == labels[group][None, :])
        if only_broken and not together.any() and np.isin(labels[group], large).all():
            continue
        picked = assign_group(score[group], apart)  # (members,), >= len(large): new ones
        for item, j in zip(group, picked, strict=True):
            out[item] = large[j] if j < len(large) else fresh + j - len(large)
        fresh = max(fresh, int(out[group].max()) + 1)
    return labels if len(np.unique(out)) < min(floor or 1, len(clusters)) else out


def assign_group(score: np.ndarray, apart: np.ndarray) -> np.ndarray:
    """score (members, clusters), apart (members, members) cannot-link -> cluster index per
    member maximising the summed score with no cannot-link pair in one cluster; an index
    ``>= clusters`` is a new cluster, opened only when the clusters are too few. Members
    all pairwise apart (the usual window): the optimal one-to-one assignment (Hungarian);
    otherwise greedily, best pairs first."""
    from scipy.optimize import linear_sum_assignment

    m, c = score.shape
    score = np.concatenate([score, np.full((m, m), NEW_CLUSTER_SCORE)], axis=1)  # (m, c + m)
    if apart[~np.eye(m, dtype=bool)].all():
        rows, cols = linear_sum_assignment(-score)
        return cols[np.argsort(rows)]
    picked = np.full(m, -1)
    for flat in np.argsort(-score, axis=None, kind="stable"):
        i, j = divmod(int(flat), c + m)
        if picked[i] < 0 and not (picked[apart[i]] == j).any():
            picked[i] = j
    return picked


NEW_CLUSTER_SCORE = -2.0  # below any cosine: a new cluster only when no existing one may do


def apart_members(cannot: np.ndarray, group: list[int]) -> list[int]:
    """A largest-first greedy set of the ``group``'s items pairwise cannot-link (all of
    them in the usual window): at least that many clusters are needed."""
    apart = cannot[np.ix_(group, group)]
    chosen: list[int] = []
    for i in np.argsort(-apart.sum(1), kind="stable"):
        if all(apart[i, j] for j in chosen):
            chosen.append(int(i))
    return [group[i] for i in chosen]


def spectral_clusters(
    sim: np.ndarray,
    cannot: np.ndarray,
    threshold: float,
    num_clusters: int | None = None,
    min_clusters: int | None = None,
    max_clusters: int | None = None,
    keep: float = 1.0,
    neighbours: int = 0,
    laplacian: str = "unnormalised",
    neighbours_fraction: float = 0.0,
) -> np.ndarray:
    """Spectral clustering of ``n`` items, ``sim (n, n)`` -> cluster id per item ``(n,)``.

    The affinity (:func:`pruned_affinity`) keeps the similarities of at least ``threshold``
    between items that may link, and of each item only its ``neighbours`` most similar (at
    least its ``neighbours_fraction`` of them; or its most similar ``keep`` fraction); the
    number of clusters is ``num_clusters``, else the one after which the eigenvalues of its
    Laplacian (:func:`laplacian_of`, ``laplacian``) jump the most (up to
    :data:`SPECTRAL_MAX_CLUSTERS`, or ``max_clusters`` if more, as 3D-Speaker does), brought
    into ``[min_clusters, max_clusters]``; the items are then clustered by k-means on their
    rows of that many eigenvectors (:func:`kmeans`; unit-length rows for the normalised
    Laplacian, as Ng, Jordan and Weiss do).
    Cannot-link pairs may still share a cluster: :func:`reassign` separates them."""
    from scipy.linalg import eigh

    n = len(sim)
    affinity = pruned_affinity(sim, cannot, threshold, keep, neighbours, neighbours_fraction)
    values, vectors = eigh(laplacian_of(affinity, laplacian))  # ascending eigenvalues
    if num_clusters:
        k = num_clusters
    else:
        k = eigengap_count(values, 1, min(n, max(SPECTRAL_MAX_CLUSTERS, max_clusters or 0)))
        k = min(max(k, min_clusters or 1), max_clusters or n)
    k = min(k, n)
    rows = vectors[:, :k]  # (n, k)
    if laplacian == "normalised":
        rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    return kmeans(rows, k)


def pruned_affinity(
    sim: np.ndarray,
    cannot: np.ndarray,
    threshold: float,
    keep: float,
    neighbours: int,
    neighbours_fraction: float = 0.0,
) -> np.ndarray:
    """``sim (n, n)`` -> affinity (n, n): similarities of at least ``threshold`` (and 0)
    between items that may link (``cannot`` pairs are 0), of each item only its
    ``neighbours`` most similar when that is above 0 (at least its ``neighbours_fraction``
    of the items), else its most similar ``keep`` fraction (at least
    :data:`SPECTRAL_MIN_KEPT`; 3D-Speaker's p-pruning), made symmetric again by averaging."""
    n = len(sim)
    affinity = np.where((sim >= threshold) & ~cannot, np.maximum(sim, 0.0), 0.0)
    np.fill_diagonal(affinity, 0.0)
    if neighbours:
        kept = max(neighbours, int(np.ceil(neighbours_fraction * n)))
    else:
        kept = max(SPECTRAL_MIN_KEPT, int(np.ceil(keep * n)))
    if kept < n:  # zero all but each row's `kept` largest
        np.put_along_axis(affinity, np.argsort(-affinity, axis=1)[:, kept:], 0.0, axis=1)
    return (affinity + affinity.T) / 2


def laplacian_of(affinity: np.ndarray, kind: str) -> np.ndarray:
    """affinity (n, n) -> its graph Laplacian (n, n): ``D - A`` ("unnormalised") or
    ``I - D^-1/2 A D^-1/2`` ("normalised"; an item with no neighbour keeps its row of I)."""
    degree = affinity.sum(1)
    if kind == "unnormalised":
        return np.diag(degree) - affinity
    scale = np.where(degree > 0, 1 / np.sqrt(np.maximum(degree, 1e-300)), 0.0)
    return np.eye(len(affinity)) - scale[:, None] * affinity * scale[None, :]


def eigengap_count(values: np.ndarray, low: int, high: int) -> int:
    """The number of clusters ``k`` in ``[low, high]`` after which the ascending Laplacian
    eigenvalues ``values`` jump the most (``values[k] - values[k - 1]``); ``high`` when
    ``high`` is every item (no eigenvalue follows)."""
    ks = np.arange(low, high + 1)
    gaps = np.array([values[k] - values[k - 1] if k < len(values) else -np.inf for k in ks])
    if np.all(gaps == -np.inf):
        return high
    return int(ks[np.argmax(gaps)])


def kmeans(points: np.ndarray, k: int, iterations: int = 100) -> np.ndarray:
    """points (n, dims) -> cluster id per point (n,): Lloyd's k-means from farthest-first
    centres (the first point, then each time the point farthest from all centres so far),
    so the same input always gives the same clusters."""
    centres = [0]
    dist = ((points - points[0]) ** 2).sum(1)
    for _ in range(1, k):
        centres.append(int(np.argmax(dist)))
        dist = np.minimum(dist, ((points - points[centres[-1]]) ** 2).sum(1))
    centre = points[centres].copy()  # (k, dims)
    labels = np.full(len(points), -1)
    for _ in range(iterations):
        new = ((points[:, None, :] - centre[None]) ** 2).sum(2).argmin(1)  # (n,)
        if np.array_equal(new, labels):
            break
        labels = new
        for c in range(k):
            if (labels == c).any():
                centre[c] = points[labels == c].mean(0)
    return labels
