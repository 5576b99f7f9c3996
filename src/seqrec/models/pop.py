"""Popularity baseline: every user gets the items seen most often in training.

The floor every sequential model must clear. It reads no history, so ``max_len`` is 1; the
evaluator still removes each user's own history from full-ranking candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import Sequences
from seqrec.models.scoring import ScoreFactors


@dataclass(frozen=True)
class PopConfig:
    n_items: int


class Pop(nn.Module):
    """Scores each item by its number of training interactions (a buffer, no parameters).

    As a model of the registry (``model.name: pop``) it goes through the same data, split and
    evaluation as every other model: the pipeline calls :meth:`prepare_from_training` with the
    training split, and there is nothing to train.
    """

    max_len = 1
    train_seq_len = 1

    def __init__(self, config: PopConfig) -> None:
        super().__init__()
        self.config = config
        self.n_items = config.n_items
        self.register_buffer("counts", torch.zeros(config.n_items + 1))

    @classmethod
    def fit(cls, train: Sequences, n_items: int) -> Pop:
        model = cls(PopConfig(n_items))
        model.prepare_from_training(train)
        return model

    def prepare_from_training(self, train: Sequences) -> None:
        """Count every item's interactions in the training split."""
        counts = np.bincount(train.items, minlength=self.n_items + 1).astype(np.float32)
        counts[0] = 0.0
        self.counts.copy_(torch.from_numpy(counts))

    def calculate_loss(
        self, batch: SequenceBatch, generator: torch.Generator | None = None
    ) -> Tensor:
        raise TypeError("the popularity baseline is fitted from counts, not trained")

    def full_sort_predict(self, batch: SequenceBatch) -> Tensor:
        return self.counts.expand(len(batch), -1)  # (B, n_items + 1)

    def predict(self, batch: SequenceBatch, items: Tensor) -> Tensor:
        return self.counts[items]  # (B, C)

    def score_factors(self, batch: SequenceBatch) -> ScoreFactors:
        """The counts as a one-column table and a query of ones (1 x count is exact)."""
        ones = torch.ones(len(batch), 1, device=self.counts.device)  # (B, 1)
        return ScoreFactors(ones, self.counts[:, None], None)
