"""Sampled softmax as a model's output loss: one pool of negatives per batch, log-Q corrected.

A full softmax over a large catalogue costs N x V logits per batch (on Beauty, 54,542 per masked
item); a pool of K shared negatives costs N x K. The proposal is uniform, by popularity
(``count ** alpha``) or the batch's own targets (``in_batch``); the correction
(``losses.sampled_softmax_ce``) keeps the sampled loss an estimate of the full one. The training
counts come from the pipeline through ``prepare_from_training`` and are saved with the weights;
before that, every item counts once (a uniform proposal).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from seqrec.data.corpus import Sequences
from seqrec.losses import proposal_log_q, sample_pool, sampled_softmax_ce

Sampler = Literal["uniform", "popular", "in_batch"]
SAMPLERS = ("uniform", "popular", "in_batch")


class SampledSoftmax(nn.Module):
    """``n_negatives`` shared negatives per batch from ``sampler`` (``in_batch``: the targets)."""

    def __init__(
        self, n_items: int, n_negatives: int, sampler: Sampler = "uniform", alpha: float = 1.0
    ) -> None:
        super().__init__()
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if n_negatives < 1:
            raise ValueError(f"n_negatives must be at least 1, got {n_negatives}")
        self.n_negatives, self.sampler, self.alpha = n_negatives, sampler, alpha
        counts = torch.ones(n_items + 1)
        counts[0] = 0.0
        self.register_buffer("counts", counts)  # training interactions per item code

    def prepare_from_training(self, train: Sequences) -> None:
        """Count every item's training interactions (the popularity and in-batch proposals)."""
        counts = np.bincount(train.items, minlength=len(self.counts)).astype(np.float32)
        counts[0] = 0.0
        self.counts.copy_(torch.from_numpy(counts))

    def negatives(self, targets: Tensor, generator: torch.Generator | None) -> Tensor:
        """The batch's pool of negative codes (K,)."""
        if self.sampler == "in_batch":
            return targets
        weights = proposal_log_q(self.counts, self.sampler, self.alpha).exp()
        return sample_pool(weights, self.n_negatives, generator)

    def forward(
        self,
        hidden: Tensor,
        targets: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Mean sampled-softmax loss of ``hidden`` (N, D) against ``targets`` (N,) codes, with
        the code-indexed output table ``weight`` (V, D) and ``bias`` (V,)."""
        log_q = proposal_log_q(self.counts, self.sampler, self.alpha)
        negatives = self.negatives(targets, generator)
        return sampled_softmax_ce(hidden, weight, bias, targets, negatives, log_q)
