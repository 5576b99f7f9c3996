"""Top-K ranking metrics as pure functions of ranks, and ranks counted from scores.

Every metric takes ``ranks``, a float tensor ``(B, R)``: the 1-based rank of each relevant item of
each user among the candidates, padded with ``inf`` where a user has fewer than ``R`` relevant
items. The number of relevant items of a user is the number of finite entries in its row.

Conventions shared by all metrics:

- **Ties** are resolved before a rank is written (see ``ranks_from_scores``), so the finite ranks
  of one user are distinct integers >= 1; a repeated rank is an error.
- **Gain** is binary: every relevant item counts 1, the discount of rank ``r`` is
  ``1 / log2(r + 1)``.
- **Missing target**: a user with no relevant item is an error, not a silent 0, because a 0 there
  would be averaged in as a miss and quietly lower the reported score.
- Each function returns one value per user ``(B,)`` in the dtype of ``ranks``; averaging is the
  caller's choice (see ``accumulators.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor

_BLOCK = 16384  # columns counted per step: int16 counts cannot overflow, and a block stays in cache


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"cutoff k must be an int >= 1, got {k!r}")


def _check_ranks(ranks: Tensor) -> Tensor:
    """Validate ``ranks`` and return the number of relevant items per user ``(B,)``."""
    if ranks.ndim != 2 or not ranks.is_floating_point():
        raise ValueError(
            f"ranks must be a float tensor (users, relevant items), got {ranks.dtype} "
            f"of shape {tuple(ranks.shape)}"
        )
    finite = torch.isfinite(ranks)
    bad = torch.isnan(ranks) | (finite & (ranks < 1)) | (ranks == -math.inf)
    if bad.any():
        row = int(bad.any(1).nonzero()[0])
        raise ValueError(
            f"ranks must be >= 1 or +inf (padding); row {row} is {ranks[row].tolist()}"
        )
    n_relevant = finite.sum(1)  # (B,)
    if (n_relevant == 0).any():
        rows = (n_relevant == 0).nonzero().flatten()
        raise ValueError(
            f"{len(rows)} user(s) have no relevant item (first: row {int(rows[0])}); "
            "leave them out of the evaluation rather than score them 0"
        )
    ordered = ranks.sort(1).values  # (B, R)
    repeated = (ordered[:, 1:] == ordered[:, :-1]) & torch.isfinite(ordered[:, 1:])
    if repeated.any():
        row = int(repeated.any(1).nonzero()[0])
        raise ValueError(
            f"ranks of one user must be distinct (ties are resolved before ranking); "
            f"row {row} is {ranks[row].tolist()}"
        )
    return n_relevant


def _hits(ranks: Tensor, k: int) -> Tensor:
    """Number of relevant items in the top ``k`` per user ``(B,)``, in the dtype of ``ranks``."""
    return (ranks <= k).sum(1).to(ranks.dtype)


def hit_rate(ranks: Tensor, k: int) -> Tensor:
    """HR@K: 1 if at least one relevant item is ranked within the top ``k``, else 0."""
    _check_ranks(ranks)
    _check_k(k)
    return (ranks <= k).any(1).to(ranks.dtype)


def recall(ranks: Tensor, k: int) -> Tensor:
    """Recall@K: relevant items in the top ``k`` divided by the user's number of relevant items.

    With a single relevant item per user this equals HR@K.
    """
    n_relevant = _check_ranks(ranks)
    _check_k(k)
    return _hits(ranks, k) / n_relevant.to(ranks.dtype)


def precision(ranks: Tensor, k: int) -> Tensor:
    """Precision@K: relevant items in the top ``k`` divided by ``k``, even if fewer are relevant."""
    _check_ranks(ranks)
    _check_k(k)
    return _hits(ranks, k) / k


def average_precision(ranks: Tensor, k: int) -> Tensor:
    """MAP@K per user: sum of Precision@rank over relevant items in the top ``k``,
    divided by ``min(#relevant, k)`` (so a perfect top ``k`` scores 1 even with many relevant).

    Precision at the rank ``r`` of a relevant item is (relevant items ranked <= ``r``) / ``r``.
    """
    n_relevant = _check_ranks(ranks)
    _check_k(k)
    ordered = ranks.sort(1).values  # (B, R), best first, inf padding last
    seen = torch.arange(1, ranks.shape[1] + 1, dtype=ranks.dtype, device=ranks.device)  # (R,)
    at_rank = torch.where(ordered <= k, seen / ordered, 0.0)  # (B, R)
    return at_rank.sum(1) / n_relevant.clamp(max=k).to(ranks.dtype)


def dcg(ranks: Tensor, k: int) -> Tensor:
    """DCG@K: sum of ``1 / log2(rank + 1)`` over relevant items in the top ``k`` (binary gain)."""
    _check_ranks(ranks)
    _check_k(k)
    return _dcg(ranks, k)


def _dcg(ranks: Tensor, k: int) -> Tensor:
    return torch.where(ranks <= k, 1.0 / torch.log2(ranks + 1), 0.0).sum(1)


def ndcg(ranks: Tensor, k: int) -> Tensor:
    """NDCG@K: DCG@K divided by the ideal DCG@K, the DCG of ``min(#relevant, k)`` relevant items
    placed at ranks 1, 2, ... (so the result lies in [0, 1] and is 1 for a perfect ranking).
    """
    n_relevant = _check_ranks(ranks)
    _check_k(k)
    depth = min(ranks.shape[1], k)
    positions = torch.arange(2, depth + 2, dtype=ranks.dtype, device=ranks.device)  # (depth,)
    ideal = torch.cumsum(1.0 / torch.log2(positions), 0)  # (depth,): IDCG for 1..depth relevant
    return _dcg(ranks, k) / ideal[n_relevant.clamp(max=k) - 1]


def mrr(ranks: Tensor, k: int | None = None) -> Tensor:
    """MRR@K: ``1 / rank`` of the best-ranked relevant item, 0 if that rank exceeds ``k``.

    ``k=None`` applies no cutoff (every user gets a non-zero value).
    """
    _check_ranks(ranks)
    best = ranks.amin(1)  # (B,); amin, as min(dim) also builds indices (slow on CPU)
    if k is None:
        return 1.0 / best
    _check_k(k)
    return torch.where(best <= k, 1.0 / best, 0.0)


_METRICS: dict[str, Callable[..., Tensor]] = {
    "hr": hit_rate,
    "recall": recall,
    "precision": precision,
    "map": average_precision,
    "ndcg": ndcg,
    "dcg": dcg,
    "mrr": mrr,
}
_KNOWN = "HR@K, Recall@K, Precision@K, MAP@K, NDCG@K, DCG@K, MRR@K, MRR"
_NAME = re.compile(r"([A-Za-z]+)(?:@(\d+))?")


def parse_metric_name(name: str) -> tuple[Callable[..., Tensor], int | None]:
    """The metric function and cutoff named by e.g. ``"NDCG@10"`` (case-insensitive).

    Only MRR may omit the cutoff (uncut MRR). Raises ValueError naming the known metrics.
    """
    match = _NAME.fullmatch(name)
    if match is None or match.group(1).lower() not in _METRICS:
        raise ValueError(f"unknown metric {name!r}; known metrics: {_KNOWN}")
    base, cutoff = match.group(1), match.group(2)
    if cutoff is None:
        if base.lower() != "mrr":
            raise ValueError(f"metric {name!r} needs a cutoff, e.g. '{base}@10'")
        return mrr, None
    k = int(cutoff)
    if k < 1:
        raise ValueError(f"metric {name!r}: the cutoff must be >= 1")
    return _METRICS[base.lower()], k


def compute(ranks: Tensor, names: Sequence[str]) -> dict[str, Tensor]:
    """Per-user values ``(B,)`` of each named metric, keyed by the name as given."""
    results = {}
    for name in names:
        fn, k = parse_metric_name(name)
        results[name] = fn(ranks, k)
    return results


def _relevant_columns(relevant: Tensor) -> tuple[Tensor, Tensor]:
    """Columns of the relevant items per user, ascending, padded: ``(B, R)`` long and valid mask."""
    rows, cols = relevant.nonzero(as_tuple=True)  # row-major: columns ascend within a row
    n_relevant = torch.bincount(rows, minlength=relevant.shape[0])  # (B,); bool sums are slow
    if (n_relevant == 0).any():
        row = int((n_relevant == 0).nonzero()[0])
        raise ValueError(f"every user needs at least one relevant item; row {row} has none")
    width = int(n_relevant.max())
    starts = torch.cumsum(n_relevant, 0) - n_relevant  # (B,) first entry of each row in `rows`
    slot = torch.arange(rows.numel(), device=relevant.device) - starts[rows]  # (nnz,)
    columns = torch.zeros((relevant.shape[0], width), dtype=torch.long, device=relevant.device)
    columns[rows, slot] = cols  # (B, R); padding points at column 0 and is masked below
    valid = torch.arange(width, device=relevant.device) < n_relevant[:, None]  # (B, R)
    return columns, valid


def _count_at_least(scores: Tensor, threshold: Tensor, competing: Tensor | None) -> Tensor:
    """Per user, ``competing`` columns (all when None) scoring >= ``threshold`` (B, 1): (B,)."""
    count = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
    for start in range(0, scores.shape[1], _BLOCK):
        block = slice(start, start + _BLOCK)
        at_least = scores[:, block] >= threshold  # (B, block)
        if competing is not None:
            at_least &= competing[:, block]
        # bool -> int64 reductions are slow on CPU; an int16 count of <= _BLOCK columns is exact
        count += at_least.sum(1, dtype=torch.int16)
    return count


def _relevant_order(target: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Among each user's relevant items (B, R), in column order: how many are ranked ahead of
    each (higher score, or equal and an earlier column), and how many score >= it (itself too)."""
    higher = target[:, :, None] > target[:, None, :]  # (B, R_i, R_j): item i scores above item j
    equal = target[:, :, None] == target[:, None, :]  # (B, R_i, R_j)
    width = target.shape[1]
    before = torch.arange(width, device=target.device)
    earlier = before[:, None] < before[None, :]  # (R_i, R_j): i has the smaller column
    counts_i = valid[:, :, None]  # (B, R_i, 1): padding entries are nobody
    ahead = ((higher | (equal & earlier)) & counts_i).sum(1)  # (B, R) relevant ranked ahead
    return ahead, ((higher | equal) & counts_i).sum(1)


def _check_score_inputs(scores: Tensor, relevant: Tensor, candidate: Tensor | None) -> None:
    if scores.ndim != 2 or not scores.is_floating_point():
        raise ValueError(
            f"scores must be a float tensor (users, items), got {scores.dtype} "
            f"of shape {tuple(scores.shape)}"
        )
    for label, mask in (("relevant", relevant), ("candidate", candidate)):
        if mask is not None and (mask.dtype != torch.bool or mask.shape != scores.shape):
            raise ValueError(
                f"{label} must be a bool tensor shaped like scores {tuple(scores.shape)}, "
                f"got {mask.dtype} of shape {tuple(mask.shape)}"
            )
    if scores.numel() and scores.amax().isnan():  # amax propagates NaN: one cheap pass
        row = int(torch.isnan(scores).any(1).nonzero()[0])
        raise ValueError(f"scores contain NaN (first in row {row}); a NaN cannot be ranked")


@torch.no_grad()
def ranks_from_scores(scores: Tensor, relevant: Tensor, candidate: Tensor | None = None) -> Tensor:
    """1-based rank of each relevant item among the competing columns, by counting (no sort).

    Args:
        scores: ``(B, C)`` float scores, higher is better; NaN is an error.
        relevant: ``(B, C)`` bool, True for a user's relevant items; every user needs at least one.
        candidate: optional ``(B, C)`` bool; False removes a column from the competition (e.g. items
            of the user's history). Relevant columns always compete, even where False, so a target
            that also appears in the history is still ranked.

    Returns:
        ``(B, R)`` float32 ranks, ``R`` = the most relevant items any user of the batch has; each
        row lists its relevant items in column order, padded with ``inf``. (float32 also runs on
        devices without float64 and is exact for catalogues below 2**24 items.)

    Tie rule: the rank of a relevant item is 1 + the competing non-relevant columns with a score
    >= its score + the relevant columns ranked ahead of it (higher score, or equal score and a
    smaller column index). Ties with non-relevant items are pessimistic, so ties never flatter: a
    model scoring every item equally gets the worst possible ranks. Ties among relevant items are
    broken by column so their ranks stay distinct (``R`` relevant items tied occupy ``R`` ranks).

    Cost: ``R`` passes of comparisons over ``(B, C)``, in column blocks, never ``(B, R, C)``.
    """
    _check_score_inputs(scores, relevant, candidate)
    if scores.shape[0] == 0:
        return torch.empty((0, 0), dtype=torch.float32, device=scores.device)
    columns, valid = _relevant_columns(relevant)  # (B, R), (B, R)
    target = scores.gather(1, columns)  # (B, R)
    ahead, relevant_at_least = _relevant_order(target, valid)  # (B, R), (B, R)
    competing = None if candidate is None else candidate | relevant  # (B, C)
    at_least = torch.stack(
        [_count_at_least(scores, target[:, r : r + 1], competing) for r in range(target.shape[1])],
        1,
    )  # (B, R) competing columns scoring >= each relevant item
    ranks = (1 + at_least - relevant_at_least + ahead).to(torch.float32)
    return ranks.masked_fill(~valid, math.inf)


@torch.no_grad()
def ranks_from_blocks(
    target_scores: Tensor, targets: Tensor, blocks: Iterable[tuple[int, Tensor]]
) -> Tensor:
    """:func:`ranks_from_scores` over consecutive column blocks, never all columns at once.

    Args:
        target_scores: ``(B, T)`` float, the score of each target (the value its own block
            holds at its column).
        targets: ``(B, T)`` long, the columns of each user's relevant items, distinct within a
            row, in any order, 0 = padding (column 0 is never relevant); every user needs one.
        blocks: ``(start, scores (B, w))`` pairs covering columns ``0, 1, ...`` in order. Every
            column competes; a column to leave out (e.g. the user's history) scores ``-inf``.

    Returns:
        What ``ranks_from_scores`` returns for the concatenated blocks and these relevant items:
        ``(B, R)`` float32 ranks in column order, ``inf`` padding, with the same tie rule
        (non-relevant ties pessimistic, relevant ties broken by column). Memory is O(B x w).
    """
    padding = torch.iinfo(targets.dtype).max
    order = targets.masked_fill(targets == 0, padding).argsort(dim=1)  # (B, T) columns ascending
    targets, target_scores = targets.gather(1, order), target_scores.gather(1, order)
    valid = targets > 0  # (B, T), padding last
    n_relevant = valid.sum(1)
    if (n_relevant == 0).any():
        row = int((n_relevant == 0).nonzero()[0])
        raise ValueError(f"every user needs at least one relevant item; row {row} has none")
    width = int(n_relevant.max())
    targets, target_scores, valid = targets[:, :width], target_scores[:, :width], valid[:, :width]
    if target_scores[valid].isnan().any():
        raise ValueError("target scores contain NaN; a NaN cannot be ranked")
    ahead, _ = _relevant_order(target_scores, valid)  # (B, R)
    beaten = torch.zeros_like(targets)  # (B, R): non-relevant columns scoring >= each target
    rows = torch.arange(targets.shape[0], device=targets.device)[:, None].expand_as(targets)
    covered = 0
    for start, scores in blocks:
        if start != covered:
            raise ValueError(f"blocks must be consecutive: expected start {covered}, got {start}")
        covered = start + scores.shape[1]
        if scores.numel() and scores.amax().isnan():
            raise ValueError(f"scores contain NaN (block at column {start}); cannot be ranked")
        inside = valid & (targets >= start) & (targets < covered)  # (B, R)
        competing = torch.ones_like(scores, dtype=torch.bool)  # (B, w)
        competing[rows[inside], targets[inside] - start] = False  # relevant: counted by `ahead`
        for r in range(width):
            beaten[:, r] += _count_at_least(scores, target_scores[:, r : r + 1], competing)
    if int(targets.max()) >= covered:
        raise ValueError(f"a target column lies beyond the {covered} columns of the blocks")
    return (1 + beaten + ahead).to(torch.float32).masked_fill(~valid, math.inf)
