"""A model's output layer as factors, so a large catalogue can be scored one item block at a time.

``full_sort_predict`` returns a (B, n_items + 1) matrix: at a million items and 256 users that is
1 GiB of float32 before any ranking starts. The dot-product models (SASRec, BERT4Rec, GRU4Rec,
GRU4RecF and the popularity baseline) score item ``c`` as ``query @ weight[c] + bias[c]``, so they
expose those factors through ``score_factors(batch)`` and evaluation and serving score
``[start, stop)`` blocks of item codes, holding O(B x block) scores at a time. A model without
``score_factors`` (the CTR models, or a user's own) is scored densely with ``full_sort_predict``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from seqrec.batch import SequenceBatch

# Above this many scores (B x (n_items + 1)) at once, a model with factors is scored in blocks
# of items (128 MiB of float32).
MAX_SCORES = 2**25


@dataclass(frozen=True)
class ScoreFactors:
    """Scores ``F.linear(query, weight, bias)`` with column 0 (padding) at -inf.

    ``query`` (B, D); ``weight`` (n_items + 1, D) and ``bias`` (n_items + 1,) or None are indexed
    by item code. A model's ``full_sort_predict(batch)`` equals ``factors.block(0, n_items + 1)``
    at every item code 1..n_items (the model contract tests check it). Blocks of 128 codes or
    more gave the dense product's numbers bit for bit on the CPU BLAS measured; very narrow
    blocks (and ``of`` for a single row) may take another BLAS kernel and differ in the last bit.
    """

    query: Tensor
    weight: Tensor
    bias: Tensor | None

    @property
    def n_codes(self) -> int:
        return self.weight.shape[0]

    def block(self, start: int, stop: int) -> Tensor:
        """Scores (B, stop - start) of the item codes ``start .. stop - 1``."""
        bias = None if self.bias is None else self.bias[start:stop]
        scores = F.linear(self.query, self.weight[start:stop], bias)  # (B, stop - start)
        if start == 0:
            scores[:, 0] = float("-inf")
        return scores

    def of(self, codes: Tensor) -> Tensor:
        """Scores (B, T) of each row's own item ``codes`` (B, T); code 0 scores -inf.

        The codes of the batch are scored together as one block of distinct codes (the same
        matrix product as :meth:`block`, not a per-row one), then each row picks its own.
        """
        distinct, inverse = codes.unique(return_inverse=True)  # (U,), (B, T)
        bias = None if self.bias is None else self.bias[distinct]
        scores = F.linear(self.query, self.weight[distinct], bias)  # (B, U)
        picked = scores.gather(1, inverse.view(codes.shape[0], -1))  # (B, T)
        return picked.masked_fill(codes == 0, float("-inf"))

    def blocks(self, width: int) -> Iterator[tuple[int, Tensor]]:
        """``(start, scores (B, <= width))`` for consecutive blocks covering every code."""
        for start in range(0, self.n_codes, width):
            yield start, self.block(start, min(start + width, self.n_codes))


def block_width(n_rows: int, n_codes: int, max_scores: int = MAX_SCORES) -> int | None:
    """Codes per block so that ``n_rows`` x block <= ``max_scores``; None when all codes fit."""
    width = max(1, max_scores // max(n_rows, 1))
    return None if width >= n_codes else width


def score_factors(model: object, batch: SequenceBatch) -> ScoreFactors | None:
    """The model's output factors for ``batch``, or None if it can only score densely."""
    factors = getattr(model, "score_factors", None)
    return None if factors is None else factors(batch)
