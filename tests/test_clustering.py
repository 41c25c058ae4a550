"""Clustering of local speakers (LinkConfig.method): average and centroid linkage,
re-assignment to the nearest centroid per window, spectral clustering with an eigen-gap
count; each on hand-built similarity matrices with the clusters worked out by hand, and
every method keeping cannot-link pairs apart."""

from __future__ import annotations

import numpy as np
import pytest

from diarize.config import InferConfig, LinkConfig
from diarize.inference import SpeakerCount, WindowOutput, constrained_ahc, link
from diarize.inference.linking import (
    assign_group,
    cluster_core,
    eigengap_count,
    kmeans,
    laplacian_of,
    reassign,
    spectral_clusters,
    split_clusters,
)
from diarize.utils import DiarizeError

METHODS = ("average", "centroid", "spectral")


def partition(labels) -> set[frozenset[int]]:
    """The clusters as sets of item indices (label values do not matter)."""
    return {frozenset(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)}


def blocks(sizes: list[int], within: float, between: float) -> np.ndarray:
    """(n, n) similarity: ``within`` inside each block, ``between`` across, 1 on the diagonal."""
    owner = np.repeat(np.arange(len(sizes)), sizes)
    sim = np.where(owner[:, None] == owner[None, :], within, between)
    np.fill_diagonal(sim, 1.0)
    return sim


NONE = np.zeros((3, 3), dtype=bool)
# a and b are close (0.6), c is 0.4 from both. Average linkage of {a, b} and c: 0.4. Centroid
# linkage: the mean of a and b has |m|^2 = (1 + 0.6) / 2 = 0.8, c . m = 0.4, so
# |c - m|^2 = 1 + 0.8 - 0.8 = 1 and the centroids' similarity is 1 - 1 / 2 = 0.5.
CHAIN = np.array([[1.0, 0.6, 0.4], [0.6, 1.0, 0.4], [0.4, 0.4, 1.0]])


def test_centroid_linkage_joins_what_average_linkage_keeps_apart():
    assert partition(constrained_ahc(CHAIN, NONE, 0.45)) == {frozenset({0, 1}), frozenset({2})}
    assert partition(constrained_ahc(CHAIN, NONE, 0.45, linkage="centroid")) == {
        frozenset({0, 1, 2})
    }
    # above 0.5 the centroids stay apart too; below 0.4 average linkage joins them as well
    assert len(set(constrained_ahc(CHAIN, NONE, 0.55, linkage="centroid"))) == 2
    assert len(set(constrained_ahc(CHAIN, NONE, 0.35))) == 1


def test_centroid_linkage_keeps_cannot_link_pairs_apart():
    cannot = NONE.copy()
    cannot[0, 2] = cannot[2, 0] = True
    labels = constrained_ahc(CHAIN, cannot, -1.0, linkage="centroid")  # would merge all
    assert partition(labels) == {frozenset({0, 1}), frozenset({2})}
    assert len(set(constrained_ahc(CHAIN, cannot, -1.0, linkage="centroid", num_clusters=2))) == 2


def test_centroid_linkage_of_unit_vectors_is_the_distance_of_their_means():
    # four unit vectors in two tight pairs: merged pairs, then their means 0.8 apart
    x = np.array([[1.0, 0.0], [0.96, 0.28], [0.0, 1.0], [0.28, 0.96]])
    sim = x @ x.T
    labels = constrained_ahc(sim, np.zeros((4, 4), bool), 0.5, linkage="centroid")
    assert partition(labels) == {frozenset({0, 1}), frozenset({2, 3})}
    ma, mb = x[:2].mean(0), x[2:].mean(0)
    between = 1 - ((ma - mb) ** 2).sum() / 2  # the pairs' centroid similarity: 0.26 < 0.5
    assert between < 0.5
    both = constrained_ahc(sim, np.zeros((4, 4), bool), between - 1e-9, linkage="centroid")
    assert len(set(both)) == 1


def test_reassign_moves_an_item_to_the_nearer_centroid():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.1, 0.995], [0.0, 1.0]])
    sim = x @ x.T
    labels = np.array([0, 0, 0, 1])  # item 2 (nearly the second direction) in the first cluster
    groups = [[0], [1], [2], [3]]  # each item a window of its own
    out = reassign(labels, sim, np.zeros((4, 4), bool), groups)
    assert out.tolist() == [0, 0, 1, 1]
    # only_broken: no cannot-link pair is broken, so nothing moves
    kept = reassign(labels, sim, np.zeros((4, 4), bool), groups, only_broken=True)
    assert kept.tolist() == [0, 0, 0, 1]


def test_reassign_places_one_window_jointly_and_never_joins_a_cannot_link_pair():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.9, 0.436], [0.8, 0.6]])
    sim = x @ x.T
    cannot = np.zeros((5, 5), dtype=bool)
    cannot[3, 4] = cannot[4, 3] = True  # items 3 and 4: two speakers of one window
    labels = np.array([0, 0, 1, 0, 1])
    out = reassign(labels, sim, cannot, [[0], [1], [2], [3, 4]])
    # both 3 and 4 are nearer the first cluster; 3 is the nearer of the two (0.9 > 0.8) and
    # the pair scores more as (first, second) than as (second, first)
    assert out.tolist() == [0, 0, 1, 0, 1]
    assert out[3] != out[4]


def test_reassign_keeps_the_labels_when_a_cluster_count_would_be_lost():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = np.array([0, 1, 1, 2])  # cluster 1 holds one item of each direction
    groups = [[0], [1], [2], [3]]
    sim = x @ x.T
    # cluster 1's centroid is at 45 degrees (cosine 0.71 with each member), the others at 0
    assert reassign(labels, sim, np.zeros((4, 4), bool), groups).tolist() == [0, 0, 2, 2]
    kept = reassign(labels, sim, np.zeros((4, 4), bool), groups, floor=3)
    assert kept.tolist() == [0, 1, 1, 2]


def test_reassign_opens_a_cluster_rather_than_join_a_cannot_link_pair():
    sim = np.ones((3, 3))  # three speakers of one window that sound alike
    labels = np.array([0, 0, 1])  # a cannot-link pair together, two clusters for three
    out = reassign(labels, sim, ~np.eye(3, dtype=bool), [[0, 1, 2]])
    assert len(set(out.tolist())) == 3


def test_assign_group_is_optimal_for_a_window_and_greedy_otherwise():
    apart = ~np.eye(2, dtype=bool)
    # greedy would take (0, 0) = 0.9 and leave 0.1 for item 1: 1.0 < 0.8 + 0.85
    assert assign_group(np.array([[0.9, 0.8], [0.85, 0.1]]), apart).tolist() == [1, 0]
    partly = np.zeros((3, 3), dtype=bool)
    partly[0, 1] = partly[1, 0] = True  # only 0 and 1 are apart; 2 may share with either
    score = np.array([[0.9, 0.2], [0.8, 0.3], [0.7, 0.1]])
    assert assign_group(score, partly).tolist() == [0, 1, 0]
    # three members apart and two clusters: one of them opens a third
    assert sorted(assign_group(np.ones((3, 2)), ~np.eye(3, dtype=bool)).tolist())[:2] == [0, 1]
    assert max(assign_group(np.ones((3, 2)), ~np.eye(3, dtype=bool))) >= 2


def test_eigengap_count_and_kmeans():
    assert eigengap_count(np.array([0.0, 0.0, 0.0, 5.0, 6.0]), 1, 4) == 3
    assert eigengap_count(np.array([0.0, 0.0, 0.0, 5.0, 6.0]), 4, 4) == 4
    assert eigengap_count(np.array([0.0, 1.0]), 2, 2) == 2  # every item its own: no gap after
    points = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0], [0.0, 0.1]])
    labels = kmeans(points, 2)
    assert partition(labels) == {frozenset({0, 1, 4}), frozenset({2, 3})}
    assert kmeans(points, 2).tolist() == labels.tolist()  # deterministic


@pytest.mark.parametrize("laplacian", ["unnormalised", "normalised"])
@pytest.mark.parametrize("threshold", [0.5, 0.0])
def test_spectral_finds_the_blocks_and_their_number(threshold, laplacian):
    sim = blocks([3, 2, 4], within=0.9, between=0.1)
    none = np.zeros((9, 9), dtype=bool)
    labels = spectral_clusters(sim, none, threshold, laplacian=laplacian)
    expected = {frozenset({0, 1, 2}), frozenset({3, 4}), frozenset({5, 6, 7, 8})}
    assert partition(labels) == expected
    two = spectral_clusters(sim, none, threshold, num_clusters=2, laplacian=laplacian)
    assert len(set(two)) == 2
    assert all(len(set(two[list(b)])) == 1 for b in expected)  # no block is cut
    # bounds clip the eigen-gap's count: at most 2, at least 4 clusters
    most2 = spectral_clusters(sim, none, threshold, max_clusters=2, laplacian=laplacian)
    least4 = spectral_clusters(sim, none, threshold, min_clusters=4, laplacian=laplacian)
    assert len(set(most2)) == 2 and len(set(least4)) == 4


def test_laplacians_of_an_affinity():
    rng = np.random.default_rng(0)
    affinity = rng.uniform(0, 1, (6, 6))
    affinity = (affinity + affinity.T) / 2
    np.fill_diagonal(affinity, 0.0)
    affinity[5, :] = affinity[:, 5] = 0.0  # item 5 has no neighbour
    plain = laplacian_of(affinity, "unnormalised")
    assert np.allclose(plain.sum(1), 0.0)  # D - A: rows sum to 0
    normal = laplacian_of(affinity, "normalised")
    assert np.allclose(normal, normal.T)
    root = np.sqrt(affinity.sum(1))  # I - D^-1/2 A D^-1/2 sends D^1/2 1 to 0
    assert np.allclose(normal @ root, 0.0)
    assert np.allclose(normal[5], np.eye(6)[5])  # the isolated item keeps its row of I
    values = np.linalg.eigvalsh(normal)
    assert values.min() > -1e-9 and values.max() < 2 + 1e-9  # its spectrum lies in [0, 2]
    with pytest.raises(DiarizeError, match="spectral_laplacian must be one of"):
        LinkConfig(spectral_laplacian="random-walk")


def test_spectral_prunes_each_row_to_its_nearest_items():
    # two blocks that also like each other (0.6): on the whole affinity the eigen-gap sees
    # one cluster; each item keeping only its 7 nearest (its own block) sees both
    sim = blocks([8, 8], within=0.9, between=0.6)
    none = np.zeros((16, 16), dtype=bool)
    assert len(set(spectral_clusters(sim, none, 0.0, keep=1.0))) == 1
    halves = {frozenset(range(8)), frozenset(range(8, 16))}
    assert partition(spectral_clusters(sim, none, 0.0, keep=0.4)) == halves  # ceil(6.4) = 7


def test_spectral_neighbours_keep_a_count_whatever_the_number_of_items():
    # two blocks that like each other, of 8 and of 40 items: the whole affinity (keep 1)
    # sees one cluster; 7 neighbours per item, in place of the fraction, find both blocks at
    # either size
    none16, none80 = np.zeros((16, 16), dtype=bool), np.zeros((80, 80), dtype=bool)
    small, large = blocks([8, 8], 0.9, 0.6), blocks([40, 40], 0.9, 0.6)
    for sim, none, n in ((small, none16, 8), (large, none80, 40)):
        assert len(set(spectral_clusters(sim, none, 0.0, keep=1.0))) == 1
        halves = {frozenset(range(n)), frozenset(range(n, 2 * n))}
        assert partition(spectral_clusters(sim, none, 0.0, keep=1.0, neighbours=7)) == halves
    config = InferConfig(
        link=LinkConfig(method="spectral", spectral_keep=1.0, spectral_neighbours=7)
    )
    groups = [[i] for i in range(80)]
    linked = cluster_core(large, none80, np.ones(80), groups, config, SpeakerCount())
    assert len(set(linked.tolist())) == 2
    with pytest.raises(DiarizeError, match="spectral_neighbours must be >= 0"):
        LinkConfig(spectral_neighbours=-1)


def test_spectral_neighbours_fraction_keeps_long_recordings_connected():
    # 2 neighbours leave 80 noisy items in many small groups; at least 10 % of them (8) as
    # neighbours join each block up again, whatever the count given
    rng = np.random.default_rng(0)
    sim = blocks([40, 40], 0.9, 0.6) + rng.normal(0, 0.02, (80, 80))
    sim, none = (sim + sim.T) / 2, np.zeros((80, 80), dtype=bool)
    assert len(set(spectral_clusters(sim, none, 0.0, neighbours=2))) > 2
    halves = {frozenset(range(40)), frozenset(range(40, 80))}
    for laplacian in ("unnormalised", "normalised"):
        kept = spectral_clusters(sim, none, 0.0, neighbours=2, laplacian=laplacian,
                                 neighbours_fraction=0.1)  # fmt: skip
        assert partition(kept) == halves
    with pytest.raises(DiarizeError, match="spectral_neighbours_fraction must be at most 1"):
        LinkConfig(spectral_neighbours_fraction=1.5)


def test_min_cluster_size_dissolves_small_clusters_into_the_nearest_large_one():
    x = np.array([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3 + [[0.8, 0.6]])
    sim = x @ x.T
    labels = np.array([0, 0, 0, 1, 1, 1, 2])  # item 6 alone, nearer the first cluster
    groups = [[i] for i in range(7)]
    none = np.zeros((7, 7), dtype=bool)
    assert reassign(labels, sim, none, groups, only_broken=True).tolist() == labels.tolist()
    small = reassign(labels, sim, none, groups, only_broken=True, min_size=2)
    assert small.tolist() == [0, 0, 0, 1, 1, 1, 0]
    cannot = none.copy()
    cannot[0, 6] = cannot[6, 0] = True  # item 6 speaks with item 0 in one window
    apart = reassign(labels, sim, cannot, [[0, 6], [1], [2], [3], [4], [5]], only_broken=True, min_size=2)  # fmt: skip
    assert apart.tolist() == [0, 0, 0, 1, 1, 1, 1]
    # through the config: average linkage at a threshold that leaves item 6 alone
    config = InferConfig(link_threshold=0.9, link=LinkConfig(min_cluster_size=2))
    linked = cluster_core(sim, none, np.ones(7), groups, config, SpeakerCount())
    assert partition(linked) == {frozenset({0, 1, 2, 6}), frozenset({3, 4, 5})}
    with pytest.raises(DiarizeError, match="min_cluster_size must be >= 1"):
        LinkConfig(min_cluster_size=0)


def test_spectral_clustering_keeps_cannot_link_pairs_apart():
    sim = blocks([3, 3], within=0.9, between=0.1)
    cannot = np.zeros((6, 6), dtype=bool)
    cannot[0, 1] = cannot[1, 0] = True  # two speakers of one window that sound alike
    groups = [[0, 1], [2], [3], [4], [5]]
    config = InferConfig(link_threshold=0.5, link=LinkConfig(method="spectral"))
    labels = cluster_core(sim, cannot, np.ones(6), groups, config, SpeakerCount())
    assert labels[0] != labels[1]
    assert labels[2] in (labels[0], labels[1])  # the rest of the first block stays with one
    assert len({labels[3], labels[4], labels[5]}) == 1 and labels[3] not in labels[:3]


@pytest.mark.parametrize("method", METHODS)
def test_each_method_keeps_cannot_link_pairs_apart_in_link(method):
    vector = np.ones(8)  # two speakers with identical attractors, always together
    probs = np.full((50, 2), 0.9, dtype=np.float32)
    windows = [WindowOutput(s, probs, np.stack([vector, vector])) for s in (0, 25, 50)]
    config = InferConfig(link_threshold=-1.0, link=LinkConfig(method=method))
    for glob in link(windows, config):
        assert sorted(glob) == [0, 1]


@pytest.mark.parametrize("method", METHODS)
def test_each_method_recovers_speakers_across_permuted_windows(method):
    rng = np.random.default_rng(3)
    frames, speakers, window, hop = 1000, 3, 200, 100
    truth = np.zeros((frames, speakers), dtype=np.float32)
    for s in range(speakers):  # speaker s talks 4 s out of every 12, shifted by s x 4 s
        for t in range(40 * s, frames, 120):
            truth[t : t + 40, s] = 1
    vectors = rng.standard_normal((speakers, 16))
    windows, owners = [], []
    for start in range(0, frames - window + 1, hop):
        part = truth[start : start + window]
        present = rng.permutation(np.flatnonzero(part.sum(0) >= 3))
        probs = 0.05 + 0.9 * part[:, present]
        att = vectors[present] + 0.1 * rng.standard_normal((len(present), 16))
        windows.append(WindowOutput(start, probs.astype(np.float32), att))
        owners.append(present)
    config = InferConfig(link_threshold=0.5, link=LinkConfig(method=method))
    assignment = link(windows, config)
    seen: dict[int, set[int]] = {}
    for glob, own in zip(assignment, owners, strict=True):
        for g, o in zip(glob, own, strict=True):
            seen.setdefault(int(o), set()).add(int(g))
    assert all(len(g) == 1 for g in seen.values()) and len(seen) == speakers
    assert len({g for gs in seen.values() for g in gs}) == speakers


def test_link_method_is_checked_with_one_line():
    with pytest.raises(DiarizeError, match="link.method must be one of average, centroid"):
        LinkConfig(method="ward")


def _voices(sizes: list[int], angle: float, seed: int = 0) -> np.ndarray:
    """Unit vectors around directions ``angle`` radians apart, one per size, in 8-d."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, size in enumerate(sizes):
        centre = np.zeros(8)
        centre[0], centre[1] = np.cos(i * angle), np.sin(i * angle)
        rows.append(centre + rng.normal(0, 0.15, (size, 8)))
    x = np.concatenate(rows)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_split_clusters_cuts_a_cluster_of_two_voices_only():
    x = _voices([10, 12], angle=np.pi / 2)  # two voices about 90 degrees apart
    sim, merged = x @ x.T, np.zeros(22, dtype=int)
    halves = {frozenset(range(10)), frozenset(range(10, 22))}
    assert partition(split_clusters(merged, sim, below=0.5)) == halves
    assert partition(split_clusters(merged, sim, below=0.0)) == {frozenset(range(22))}
    assert len(set(split_clusters(merged, sim, below=0.5, max_clusters=1))) == 1
    one = _voices([22], angle=0.0, seed=1)  # one voice: its halves stay alike
    assert len(set(split_clusters(merged, one @ one.T, below=0.6))) == 1
    three = _voices([8, 8, 8], angle=2 * np.pi / 3)  # cut again while a half is two voices
    blocks3 = {frozenset(range(8)), frozenset(range(8, 16)), frozenset(range(16, 24))}
    assert partition(split_clusters(np.zeros(24, dtype=int), three @ three.T, 0.5)) == blocks3
    with pytest.raises(DiarizeError, match="split_below must be >= 0"):
        LinkConfig(split_below=-0.1)


def test_split_below_in_linking_leaves_a_given_count_alone():
    x = _voices([10, 12], angle=np.pi / 2)
    sim, none, groups = x @ x.T, np.zeros((22, 22), dtype=bool), [[i] for i in range(22)]
    merged = InferConfig(link_threshold=-1.0, link=LinkConfig(method="average"))  # all merge
    split = InferConfig(link_threshold=-1.0, link=LinkConfig(method="average", split_below=0.5))
    assert len(set(cluster_core(sim, none, np.ones(22), groups, merged, SpeakerCount()))) == 1
    assert len(set(cluster_core(sim, none, np.ones(22), groups, split, SpeakerCount()))) == 2
    given = cluster_core(sim, none, np.ones(22), groups, split, SpeakerCount(num=1))
    assert len(set(given)) == 1
