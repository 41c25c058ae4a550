"""Training losses: permutation-invariant BCE on speaker activities, attractor existence BCE.

The best speaker permutation is found with the Hungarian algorithm on the per-pair BCE cost
matrix, so any number of speakers costs O(speakers^3), not O(speakers!).
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch.nn import functional as F


def pit_bce_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    frame_lengths: torch.Tensor,
    num_speakers: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Permutation-invariant binary cross-entropy.

    logits (batch, frames, speakers), labels (batch, frames, speakers') in {0, 1},
    frame_lengths (batch,), num_speakers (batch,) -> (loss, permutations (batch, speakers)).

    Only cells with ``frame < frame_lengths[b]`` and ``speaker < num_speakers[b]`` count.
    Labels with fewer columns than ``logits`` are zero-padded, extra columns dropped (they must
    lie beyond every item's ``num_speakers``). ``loss`` is the mean BCE over all valid
    (frame, speaker) cells of the batch (0 when there are none). ``permutations[b, s]`` is the
    label column matched to output ``s`` (identity beyond ``num_speakers[b]``), so
    ``labels.gather(2, permutations[:, None].expand_as(logits))`` aligns labels with logits.
    """
    labels = _fit_labels(logits, labels, frame_lengths, num_speakers)
    valid = _valid_cells(logits, frame_lengths, num_speakers)  # (batch, frames, speakers)
    permutations = best_permutations(logits, labels, valid, num_speakers)
    aligned = labels.gather(2, permutations[:, None].expand_as(logits))
    bce = F.binary_cross_entropy_with_logits(logits, aligned, reduction="none")
    loss = torch.where(valid, bce, 0.0).sum() / valid.sum().clamp_min(1)
    return loss, permutations


def best_permutations(
    logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor, num_speakers: torch.Tensor
) -> torch.Tensor:
    """logits, labels, valid (batch, frames, speakers) -> permutations (batch, speakers) with
    the smallest total BCE for each item (Hungarian algorithm, no gradient)."""
    cost = pairwise_bce(logits.detach(), labels, valid).cpu()  # (batch, speakers, speakers)
    batch, speakers = logits.shape[0], logits.shape[2]
    permutations = torch.arange(speakers).repeat(batch, 1)  # (batch, speakers)
    for item, n in enumerate(num_speakers.tolist()):
        rows, cols = linear_sum_assignment(cost[item, :n, :n].double().numpy())
        permutations[item, rows] = torch.as_tensor(cols, dtype=torch.long)
    return permutations.to(logits.device)


def pairwise_bce(logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """logits, labels, valid (batch, frames, speakers) -> cost (batch, speakers, speakers):
    ``cost[b, i, j]`` = summed BCE of output ``i`` against label column ``j`` over valid frames.

    Uses ``BCE(x, y) = softplus(x) - x * y``.
    """
    frame_valid = valid.any(dim=2, keepdim=True)  # (batch, frames, 1)
    logits = torch.where(frame_valid, logits.float(), 0.0)
    labels = torch.where(frame_valid, labels.float(), 0.0)
    base = torch.where(frame_valid, F.softplus(logits), 0.0).sum(dim=1)  # (batch, speakers)
    cross = torch.einsum("bti,btj->bij", logits, labels)  # (batch, speakers, speakers)
    return base[:, :, None] - cross


def attractor_existence_loss(
    existence_logits: torch.Tensor, num_speakers: torch.Tensor
) -> torch.Tensor:
    """existence_logits (batch, speakers + 1), num_speakers (batch,) -> scalar loss.

    Targets are 1 for the first ``num_speakers[b]`` attractors and 0 for the next one; later
    attractors are ignored. The BCE is averaged over each item's ``num_speakers[b] + 1``
    attractors, then over the batch (as in EEND-EDA).
    """
    num_speakers = num_speakers.to(existence_logits.device).long()
    if num_speakers.numel() and int(num_speakers.max()) + 1 > existence_logits.shape[1]:
        raise ValueError(
            f"existence_logits has {existence_logits.shape[1]} attractors; "
            f"needs max(num_speakers) + 1 = {int(num_speakers.max()) + 1}"
        )
    index = torch.arange(existence_logits.shape[1], device=existence_logits.device)
    targets = (index < num_speakers[:, None]).to(existence_logits.dtype)  # (batch, attractors)
    valid = (index <= num_speakers[:, None]).to(existence_logits.dtype)
    bce = F.binary_cross_entropy_with_logits(existence_logits, targets, reduction="none")
    per_item = (bce * valid).sum(dim=1) / valid.sum(dim=1)  # (batch,)
    return per_item.mean()


def _valid_cells(
    logits: torch.Tensor, frame_lengths: torch.Tensor, num_speakers: torch.Tensor
) -> torch.Tensor:
    """(batch, frames, speakers) boolean mask of the cells that count."""
    frames = torch.arange(logits.shape[1], device=logits.device)
    speakers = torch.arange(logits.shape[2], device=logits.device)
    frame_ok = frames < frame_lengths.to(logits.device)[:, None]  # (batch, frames)
    speaker_ok = speakers < num_speakers.to(logits.device)[:, None]  # (batch, speakers)
    return frame_ok[:, :, None] & speaker_ok[:, None, :]


def _fit_labels(
    logits: torch.Tensor,
    labels: torch.Tensor,
    frame_lengths: torch.Tensor,
    num_speakers: torch.Tensor,
) -> torch.Tensor:
    """Check shapes; return labels (batch, frames, speakers) as float, columns padded/cut to logits'."""
    if logits.dim() != 3 or labels.dim() != 3 or labels.shape[:2] != logits.shape[:2]:
        raise ValueError(
            f"logits and labels must be (batch, frames, speakers) with the same batch and frames, "
            f"got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    if frame_lengths.shape != (logits.shape[0],) or num_speakers.shape != (logits.shape[0],):
        raise ValueError(
            f"frame_lengths and num_speakers must be (batch,) = ({logits.shape[0]},), "
            f"got {tuple(frame_lengths.shape)} and {tuple(num_speakers.shape)}"
        )
    speakers = logits.shape[2]
    if num_speakers.numel() and int(num_speakers.max()) > min(speakers, labels.shape[2]):
        raise ValueError(
            f"num_speakers up to {int(num_speakers.max())} but logits have {speakers} "
            f"and labels {labels.shape[2]} speaker columns"
        )
    labels = labels[:, :, :speakers].to(logits.dtype)
    return F.pad(labels, (0, speakers - labels.shape[2]))
