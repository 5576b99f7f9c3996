"""Ranking metrics under the names and call signature of Transformers4Rec's ``ranking_metric``.

``metric = NDCGAt(top_ks=[5, 10]); metric.update(scores, target); metric.compute()`` gives a
tensor ``(len(top_ks),)``: the metric at each cutoff, averaged over users.

Differences from Transformers4Rec, on purpose:

- Ranks are counted with ``ranks_from_scores`` (pessimistic ties) instead of ``torch.topk``, whose
  order among tied scores is unspecified.
- NDCG's ideal DCG uses ``min(#relevant, k)`` relevant items (the textbook definition), not only
  the relevant items that happened to reach the top ``k``.
- A user with no relevant item is an error instead of a silent 0.
``labels_onehot`` reads as in Transformers4Rec: True converts ``(B,)`` item indices to one-hot;
False (default) takes ``target`` as a ``(B, n_items)`` 0/1 matrix (several relevant items per user
allowed). A target of the wrong form for the flag is rejected with an error saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from seqrec.metrics.ranking import (
    average_precision,
    dcg,
    mrr,
    ndcg,
    precision,
    ranks_from_scores,
    recall,
)


def relevant_mask(preds: Tensor, target: Tensor, labels_onehot: bool) -> Tensor:
    """The ``(B, n_items)`` bool mask of relevant items from either form of ``target``."""
    if preds.ndim != 2:
        raise ValueError(f"preds must be (users, items) scores, got shape {tuple(preds.shape)}")
    if not labels_onehot:
        if target.shape != preds.shape:
            raise ValueError(
                f"with labels_onehot=False, target must be a 0/1 matrix shaped like preds "
                f"{tuple(preds.shape)}, got shape {tuple(target.shape)} "
                "(pass labels_onehot=True for (B,) item indices)"
            )
        if ((target != 0) & (target != 1)).any():
            raise ValueError("with labels_onehot=False, target must contain only 0 and 1")
        return target != 0
    if target.shape != preds.shape[:1] or target.is_floating_point() or target.dtype == torch.bool:
        raise ValueError(
            f"with labels_onehot=True, target must be ({preds.shape[0]},) integer item indices, "
            f"got {target.dtype} of shape {tuple(target.shape)} "
            "(pass labels_onehot=False for a (B, n_items) 0/1 matrix)"
        )
    if ((target < 0) | (target >= preds.shape[1])).any():
        raise ValueError(f"target item indices must lie in [0, {preds.shape[1]})")
    relevant = torch.zeros(preds.shape, dtype=torch.bool, device=preds.device)
    return relevant.scatter_(1, target[:, None], True)  # (B, n_items)


class _RankingAt(Metric):
    """Per-user values at every cutoff, concatenated across batches and processes, then averaged."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    metric_fn: ClassVar[Callable[[Tensor, int], Tensor]]

    def __init__(
        self, top_ks: Sequence[int] | None = None, labels_onehot: bool = False, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)
        self.top_ks = tuple(top_ks) if top_ks is not None else (2, 5)
        if not self.top_ks or any(isinstance(k, bool) or int(k) != k or k < 1 for k in self.top_ks):
            raise ValueError(f"top_ks must be a non-empty list of ints >= 1, got {top_ks!r}")
        self.top_ks = tuple(int(k) for k in self.top_ks)
        self.labels_onehot = labels_onehot
        self.add_state("metric_values", default=[], dist_reduce_fx="cat")

    def update(self, preds: Tensor, target: Tensor) -> None:
        ranks = ranks_from_scores(preds, relevant_mask(preds, target, self.labels_onehot))
        metric_fn = type(self).metric_fn
        values = torch.stack([metric_fn(ranks, k) for k in self.top_ks], 1)  # (B, len(top_ks))
        self.metric_values.append(values)

    def compute(self) -> Tensor:
        if isinstance(self.metric_values, list) and not self.metric_values:
            raise ValueError(f"{type(self).__name__} has no users yet: call update first")
        return dim_zero_cat(self.metric_values).mean(0)  # (len(top_ks),)


class PrecisionAt(_RankingAt):
    """Precision@K for each K in ``top_ks``."""

    metric_fn = staticmethod(precision)


class RecallAt(_RankingAt):
    """Recall@K for each K in ``top_ks``."""

    metric_fn = staticmethod(recall)


class AvgPrecisionAt(_RankingAt):
    """MAP@K for each K in ``top_ks``."""

    metric_fn = staticmethod(average_precision)


class DCGAt(_RankingAt):
    """DCG@K (binary gain, log2 discount) for each K in ``top_ks``."""

    metric_fn = staticmethod(dcg)


class NDCGAt(_RankingAt):
    """NDCG@K for each K in ``top_ks``."""

    metric_fn = staticmethod(ndcg)


class MeanReciprocalRankAt(_RankingAt):
    """MRR@K for each K in ``top_ks``."""

    metric_fn = staticmethod(mrr)


# Transformers4Rec's own spelling of the class, so that code ported from it runs unchanged
MeanRecipricolRankAt = MeanReciprocalRankAt
