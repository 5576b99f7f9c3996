"""Click-through samples for DIN and DIEN, built inside ``calculate_loss`` from a training batch.

Two kinds of batch (``CTRSamples.from_batch``):

- **Training windows** (the default, ``SequenceBatch.item_seq`` of ``max_len + 1`` columns): the
  first ``max_len`` columns are the history, the last column is the clicked item (label 1), and
  ``n_negatives`` sampled items the window does not contain are non-clicked (label 0). The CTR
  models set ``train_on_prefixes``, so windows end at every ``training.window_step``-th item down
  to the shortest; with step 1 every prefix of every training sequence is a sample, with a
  history of its newest ``max_len`` items, exactly RecBole's per-prefix samples.
- **Labelled impressions** (``target_item`` and ``label`` set: the training windows of data
  with ``data.click_labels``, a rating threshold or a ``label`` column): ``item_seq`` is the
  history, ``target_item`` the shown item with its label; ``n_negatives`` is not used.

For DIEN's auxiliary loss every history position also gets one sampled item other than the
one clicked there (``noclick``). All draws come from the given generator and are vectorised.
Samplers: ``uniform`` over the catalogue, exact (no rejection loop), or ``popular``, by training
interaction counts, with rejection of excluded items (rows still unlucky after a few rounds fall
back to uniform).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import Sequences

SAMPLERS = ("uniform", "popular")
POPULAR_ROUNDS = 8  # rejection rounds of the popularity sampler before the uniform fallback


def training_counts(train: Sequences, n_items: int) -> Tensor:
    """Interactions per item code in the training split (n_items + 1,) float; padding 0."""
    counts = np.bincount(train.items, minlength=n_items + 1)[: n_items + 1].astype(np.float32)
    counts[0] = 0.0
    return torch.from_numpy(counts)


def sampling_weights(sampler: str, counts: Tensor) -> Tensor | None:
    """None for ``uniform``; the stored training counts for ``popular`` (an error if unset)."""
    if sampler == "uniform":
        return None
    if float(counts.sum()) <= 0:
        raise ValueError(
            "sampler 'popular' needs item counts: call prepare_from_training(train) first"
        )
    return counts


def uniform_excluding(
    exclude: Tensor, k: int, n_items: int, generator: torch.Generator | None = None
) -> Tensor:
    """``k`` draws (N, k), uniform over the items 1..n_items that are not in the row of
    ``exclude`` (N, E) (0 entries and repeats are ignored). Exact: the ``r``-th allowed item is
    ``r`` plus the number of excluded items before it, found by one ``searchsorted``.
    """
    ordered = exclude.sort(dim=1).values  # (N, E)
    repeat = torch.zeros_like(ordered, dtype=torch.bool)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    valid = (ordered > 0) & ~repeat
    big = n_items + 1
    ordered = torch.where(valid, ordered, big).sort(dim=1).values  # valid first, ascending
    rank = torch.arange(ordered.shape[1], device=exclude.device)  # (E,)
    before = torch.where(ordered < big, ordered - 1 - rank, big)  # allowed items below each one
    allowed = n_items - valid.sum(1, keepdim=True)  # (N, 1)
    if bool((allowed < 1).any()):
        raise ValueError("a row excludes every item: nothing left to sample as non-clicked")
    u = torch.rand((exclude.shape[0], k), generator=generator, device=exclude.device)
    r = (u * allowed).long().clamp(max=allowed - 1)  # (N, k) in 0..allowed-1
    return r + 1 + torch.searchsorted(before.contiguous(), r, right=True)


def sample_non_clicked(
    exclude: Tensor,
    k: int,
    n_items: int,
    generator: torch.Generator | None = None,
    weights: Tensor | None = None,
) -> Tensor:
    """``k`` items per row (N, k) outside the row's ``exclude`` (N, E); by ``weights``
    (n_items + 1,) when given (popularity), else uniform.

    Weighted draws are rejected and redrawn where they hit an excluded item; the few rows still
    unlucky after ``POPULAR_ROUNDS`` rounds are drawn exactly, from their own weights with the
    excluded items zeroed.
    """
    if weights is None:
        return uniform_excluding(exclude, k, n_items, generator)
    n = exclude.shape[0]
    draws = (torch.multinomial(weights[1:], n * k, True, generator=generator) + 1).view(n, k)
    for _ in range(POPULAR_ROUNDS):
        clash = (draws[:, :, None] == exclude[:, None, :]).any(-1)  # (N, k)
        if not bool(clash.any()):
            return draws
        again = torch.multinomial(weights[1:], n * k, True, generator=generator) + 1
        draws = torch.where(clash, again.view(n, k), draws)
    rows = (draws[:, :, None] == exclude[:, None, :]).any(-1).any(-1).nonzero().flatten()
    if len(rows):
        own = weights.expand(len(rows), -1).clone()  # (R, n_items + 1), excluded items at 0
        own.scatter_(1, exclude[rows], 0.0)
        own[:, 0] = 0.0
        if bool((own.sum(1) <= 0).any()):
            raise ValueError("a row excludes every item it could draw as non-clicked")
        draws[rows] = torch.multinomial(own, k, True, generator=generator)
    return draws


@dataclass(frozen=True)
class CTRSamples:
    """One row per sample history: ``candidates`` (B, C) with click ``labels`` (B, C).

    ``history`` (B, L) is left-padded with ``lengths`` (B,) real items; ``noclick`` (B, L) holds
    the sampled non-clicked item of each history position (0 at padding) or None.
    """

    history: Tensor
    lengths: Tensor
    candidates: Tensor
    labels: Tensor
    noclick: Tensor | None

    @classmethod
    def from_batch(
        cls,
        batch: SequenceBatch,
        n_items: int,
        n_negatives: int,
        generator: torch.Generator | None = None,
        weights: Tensor | None = None,
        with_noclick: bool = True,
    ) -> tuple[CTRSamples, Tensor]:
        """The samples and the rows of ``batch`` they came from (rows without a clicked target
        or without history are no samples). Windows unless the batch has ``target_item`` and
        ``label``."""
        labelled = batch.target_item is not None and batch.label is not None
        if labelled:
            history, target = batch.item_seq, batch.target_item
        else:
            history, target = batch.item_seq[:, :-1], batch.item_seq[:, -1]
        lengths = (history > 0).sum(1)
        rows = ((target > 0) & (lengths > 0)).nonzero().flatten()
        if len(rows) == 0:
            raise ValueError(
                "the batch holds no sample: every row needs a target item and some history"
            )
        history, target, lengths = history[rows], target[rows], lengths[rows]
        if labelled:
            candidates = target[:, None]  # (B, 1)
            labels = batch.label[rows].to(torch.float32)[:, None]
        else:
            window = batch.item_seq[rows]
            negatives = sample_non_clicked(window, n_negatives, n_items, generator, weights)
            candidates = torch.cat([target[:, None], negatives], 1)  # (B, 1 + k)
            labels = torch.zeros(candidates.shape, device=candidates.device)
            labels[:, 0] = 1.0
        noclick = None
        if with_noclick:
            flat = sample_non_clicked(history.reshape(-1, 1), 1, n_items, generator, weights)
            noclick = flat.view_as(history).masked_fill(history == 0, 0)  # (B, L)
        return cls(history, lengths, candidates, labels, noclick), rows
