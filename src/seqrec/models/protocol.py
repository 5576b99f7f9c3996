"""What the training, evaluation and serving layers need from a sequential model.

Models are plain ``nn.Module``s; they know nothing of files, the CLI or Lightning. Any module with
these methods can be trained and evaluated, so users can bring their own. A model whose scores
are a dot product may also offer ``score_factors(batch) -> seqrec.models.scoring.ScoreFactors``,
so that evaluation and serving score a large catalogue in blocks of items.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from seqrec.batch import SequenceBatch


@runtime_checkable
class SequentialRecommender(Protocol):
    """Scores items for users given their left-padded history.

    ``n_items`` real items have codes 1..n_items; score column 0 (padding) is never a candidate.
    ``max_len`` is the history length the model reads at prediction time.
    """

    n_items: int
    max_len: int

    def calculate_loss(
        self, batch: SequenceBatch, generator: torch.Generator | None = None
    ) -> Tensor:
        """Training loss of a batch of training windows (scalar)."""
        ...

    def predict(self, batch: SequenceBatch, items: Tensor) -> Tensor:
        """Scores of the given candidate items (B, C) for each user: (B, C)."""
        ...

    def full_sort_predict(self, batch: SequenceBatch) -> Tensor:
        """Scores of every item code 0..n_items: (B, n_items + 1)."""
        ...
