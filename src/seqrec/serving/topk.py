"""Top-k items over blocks of scores, and what a batch of queries leaves out of them.

A large catalogue is scored in blocks of item codes (``seqrec.models.scoring``); the answer is a
running top-k: each block's best ``k`` are merged with the best ``k`` so far. The tie rule is
fixed so that the blocked answer equals the dense one: equal scores are listed by ascending
item code (``torch.topk`` alone leaves their order unspecified).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor


def top_k(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The best ``min(k, C)`` columns of each row of ``scores`` (B, C): values and columns (B, k),
    best first, equal scores by ascending column.

    Among -inf scores (left out) the choice is free: callers drop them.
    """
    k = min(k, scores.shape[1])
    values, columns = scores.topk(k, dim=1)  # (B, k): equal scores in no set order
    kth = values[:, -1:]  # (B, 1)
    crossing = ((scores == kth).sum(1) > (values == kth).sum(1)) & (kth[:, 0] > -torch.inf)
    if crossing.any():  # ties across the k-th place: keep the tied columns that come first
        rows, threshold = scores[crossing], kth[crossing]  # (b, C), (b, 1)
        above, tied = rows > threshold, rows == threshold
        room = k - above.sum(1, keepdim=True)  # (b, 1)
        chosen = above | (tied & (tied.cumsum(1) <= room))  # (b, C), k per row
        columns[crossing] = chosen.nonzero()[:, 1].view(-1, k)
        values[crossing] = rows.gather(1, columns[crossing])
    by_column = columns.argsort(dim=1)
    values, columns = values.gather(1, by_column), columns.gather(1, by_column)
    by_value = values.argsort(dim=1, descending=True, stable=True)
    return values.gather(1, by_value), columns.gather(1, by_value)


def running_top_k(blocks: Iterable[tuple[int, Tensor]], k: int) -> tuple[Tensor, Tensor]:
    """:func:`top_k` of the concatenated ``(start, scores (B, w))`` blocks, in O(B x (w + k)).

    Returns values and item codes (B, <= k). Blocks come in ascending ``start``; the best so far
    are kept in front of each new block's best, so position order among equal scores is code
    order and the merge keeps the tie rule.
    """
    values = codes = None
    for start, scores in blocks:
        block_values, columns = top_k(scores, k)
        block_codes = columns + start
        if values is None:
            values, codes = block_values, block_codes
            continue
        merged, position = top_k(torch.cat([values, block_values], dim=1), k)  # (B, k)
        codes = torch.cat([codes, block_codes], dim=1).gather(1, position)
        values = merged
    if values is None:
        raise ValueError("no score block to take the top k of")
    return values, codes


@dataclass(frozen=True)
class Exclusions:
    """What a batch of queries leaves out, as (row, code) pairs applied block by block.

    ``seen_row``/``seen_code``: history items of the rows that exclude them. ``restricted``: rows
    that asked for given candidates; ``allowed_row`` (an index into ``restricted``) and
    ``allowed_code``: those candidates. Padding (code 0) is always left out.
    """

    seen_row: Tensor
    seen_code: Tensor
    restricted: Tensor
    allowed_row: Tensor
    allowed_code: Tensor

    def apply(self, scores: Tensor, start: int) -> None:
        """-inf in ``scores`` (B, w), the codes ``start .. start + w - 1``, where left out."""
        stop = start + scores.shape[1]
        if start == 0:
            scores[:, 0] = -torch.inf
        inside = (self.seen_code >= start) & (self.seen_code < stop)
        scores[self.seen_row[inside], self.seen_code[inside] - start] = -torch.inf
        if len(self.restricted) == 0:
            return
        allowed = torch.zeros((len(self.restricted), scores.shape[1]), dtype=torch.bool)
        inside = (self.allowed_code >= start) & (self.allowed_code < stop)
        allowed[self.allowed_row[inside], self.allowed_code[inside] - start] = True
        scores[self.restricted] = scores[self.restricted].masked_fill(~allowed, -torch.inf)
