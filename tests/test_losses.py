"""Permutation-invariant BCE (Hungarian) and attractor existence loss."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.nn import functional as F

from diarize.losses import attractor_existence_loss, pit_bce_loss


def random_case(
    speakers: int, frames: int = 20, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """logits, labels (1, frames, speakers)."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, frames, speakers, generator=gen) * 2
    labels = (torch.rand(1, frames, speakers, generator=gen) > 0.5).float()
    return logits, labels


def brute_force_sum(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Smallest summed BCE over every permutation of labels (frames, speakers)."""
    speakers = logits.shape[-1]
    return min(
        F.binary_cross_entropy_with_logits(logits, labels[:, list(p)], reduction="sum").item()
        for p in itertools.permutations(range(speakers))
    )


@pytest.mark.parametrize("speakers", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hungarian_equals_brute_force(speakers, seed):
    logits, labels = random_case(speakers, seed=seed)
    loss, _ = pit_bce_loss(logits, labels, torch.tensor([20]), torch.tensor([speakers]))
    expected = brute_force_sum(logits[0], labels[0]) / (20 * speakers)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_batch_loss_is_mean_over_valid_cells():
    cases = [random_case(s, frames=20, seed=s) for s in (1, 2, 3, 4)]
    frame_lengths = torch.tensor([20, 13, 7, 20])
    num_speakers = torch.tensor([1, 2, 3, 4])
    logits = torch.cat([F.pad(lo, (0, 4 - lo.shape[2])) for lo, _ in cases])  # (batch, frames, 4)
    labels = torch.cat([F.pad(la, (0, 4 - la.shape[2])) for _, la in cases])
    loss, _ = pit_bce_loss(logits, labels, frame_lengths, num_speakers)
    total = sum(
        brute_force_sum(lo[0, :t, :n], la[0, :t, :n])
        for (lo, la), t, n in zip(cases, frame_lengths.tolist(), num_speakers.tolist(), strict=True)
    )
    cells = sum(t * n for t, n in zip(frame_lengths.tolist(), num_speakers.tolist(), strict=True))
    assert loss.item() == pytest.approx(total / cells, rel=1e-5)


def test_padding_frames_and_speaker_columns_do_not_change_loss():
    logits, labels = random_case(3, frames=15)
    loss, perm = pit_bce_loss(logits, labels, torch.tensor([15]), torch.tensor([3]))
    gen = torch.Generator().manual_seed(5)
    big_logits = torch.randn(1, 25, 5, generator=gen) * 5  # 10 padded frames, 2 padded speakers
    big_labels = (torch.rand(1, 25, 5, generator=gen) > 0.5).float()
    big_logits[:, :15, :3] = logits
    big_labels[:, :15, :3] = labels
    big_logits[:, 20:] = float("inf")  # whatever padding holds is ignored
    big_loss, big_perm = pit_bce_loss(big_logits, big_labels, torch.tensor([15]), torch.tensor([3]))
    assert big_loss.item() == pytest.approx(loss.item(), rel=1e-6)
    assert big_perm[0, :3].tolist() == perm[0].tolist()
    assert big_perm[0, 3:].tolist() == [3, 4]  # identity beyond num_speakers


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
def test_permutation_recovers_shuffled_labels(perm):
    gen = torch.Generator().manual_seed(0)
    truth = (torch.rand(1, 50, 3, generator=gen) > 0.5).float()  # (batch, frames, speakers)
    logits = (truth * 2 - 1) * 4  # confident and right, in the model's order
    labels = truth[:, :, list(perm)]  # the reference lists speakers in another order
    loss, found = pit_bce_loss(logits, labels, torch.tensor([50]), torch.tensor([3]))
    aligned = labels.gather(2, found[:, None].expand_as(labels))
    assert torch.equal(aligned, truth)
    assert loss.item() == pytest.approx(F.softplus(torch.tensor(-4.0)).item(), rel=1e-5)


def test_gradient_flows_and_zero_speakers_work():
    logits = torch.randn(2, 10, 2, requires_grad=True)
    labels = torch.zeros(2, 10, 2)
    loss, perm = pit_bce_loss(logits, labels, torch.tensor([10, 10]), torch.tensor([0, 2]))
    loss.backward()
    assert logits.grad[0].abs().sum() == 0  # the silent item has no speaker cell
    assert logits.grad[1].abs().sum() > 0
    assert perm.shape == (2, 2)
    empty = torch.zeros(1, 10, 0, requires_grad=True)
    loss, perm = pit_bce_loss(empty, torch.zeros(1, 10, 0), torch.tensor([10]), torch.tensor([0]))
    assert loss.item() == 0.0 and perm.shape == (1, 0)


def test_labels_columns_are_fitted_to_logits():
    logits, labels = random_case(2, frames=10)
    wide = F.pad(labels, (0, 3))  # labels padded to more speaker columns than logits
    loss, _ = pit_bce_loss(logits, labels, torch.tensor([10]), torch.tensor([2]))
    wide_loss, _ = pit_bce_loss(logits, wide, torch.tensor([10]), torch.tensor([2]))
    assert wide_loss.item() == loss.item()
    with pytest.raises(ValueError, match="num_speakers"):
        pit_bce_loss(logits, labels, torch.tensor([10]), torch.tensor([3]))
    with pytest.raises(ValueError, match="same batch and frames"):
        pit_bce_loss(logits, labels[:, :5], torch.tensor([10]), torch.tensor([2]))


def test_existence_loss_by_hand():
    # item 0: 2 speakers -> targets 1, 1, 0 (3 attractors); item 1: 0 speakers -> target 0, rest ignored
    logits = torch.tensor([[0.0, math.log(3), -math.log(3)], [math.log(3), 50.0, -50.0]])
    loss = attractor_existence_loss(logits, torch.tensor([2, 0]))
    item0 = (math.log(2) + math.log(4 / 3) + math.log(4 / 3)) / 3  # -log(1/2), -log(3/4), -log(3/4)
    item1 = math.log(4)  # -log(1 - 3/4)
    assert loss.item() == pytest.approx((item0 + item1) / 2, rel=1e-6)


def test_existence_loss_needs_one_more_attractor():
    with pytest.raises(ValueError, match="max\\(num_speakers\\) \\+ 1 = 3"):
        attractor_existence_loss(torch.zeros(1, 2), torch.tensor([2]))
