"""Click-through metrics: AUC, GAUC and LogLoss as pure functions, an accumulator, and
bootstrap confidence intervals over users.

Inputs are 1-D, one entry per impression (a scored (user, item) pair): ``scores`` (any real
values, higher = more likely clicked; NaN is an error), ``labels`` (1 = clicked, 0 = not) and,
for GAUC, ``groups`` (the user of each impression).

- **AUC** (pooled): the probability that a clicked impression scores above a non-clicked one,
  over all pairs of the data; **ties count half**. Computed from average ranks (Mann-Whitney
  U), one sort, O(n log n).
- **GAUC**: each user's AUC over that user's impressions, averaged with weights = the user's
  number of impressions (the DIN paper's definition). Users whose impressions are all clicked or
  all non-clicked have no AUC: they are skipped and counted (``GroupAUC.skipped``). RecBole's
  GAUC weighs users by their number of clicked impressions instead; with one click per user,
  as in the sampled protocols, the two agree only when every user has the same number of
  impressions.
- **LogLoss**: the mean over impressions of ``-[y log p + (1 - y) log(1 - p)]``, with ``p``
  clipped to ``[1e-15, 1 - 1e-15]`` in float64 (as RecBole and scikit-learn do); ``probs`` must
  be probabilities.

``ctr_summary`` gives each metric's value with a percentile bootstrap interval that resamples
users, the unit of ``seqrec.metrics.stats``, and draws exactly the resamples ``summarise`` draws
for the same number of users and seed, so ranking and CTR intervals of one evaluation share
them. Pooled AUC is recomputed for every resample from per-resample user weights (one pass over
the sorted impressions per resample, no re-sorting).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from seqrec.metrics.stats import _check_settings, _chunks

CTR_METRICS = ("AUC", "GAUC", "LogLoss")
EPS = 1e-15
_WEIGHT_ELEMENTS = 1 << 22  # (resamples x impressions) per step of the pooled-AUC bootstrap


def is_ctr_metric(name: str) -> bool:
    """True for ``AUC``, ``GAUC`` and ``LogLoss`` (case-insensitive)."""
    return name.lower() in {m.lower() for m in CTR_METRICS}


def canonical_name(name: str) -> str:
    """``auc`` -> ``AUC``; an unknown name is an error listing the CTR metrics."""
    for known in CTR_METRICS:
        if name.lower() == known.lower():
            return known
    raise ValueError(f"unknown CTR metric {name!r}; known: {', '.join(CTR_METRICS)}")


def _check(scores: Tensor, labels: Tensor, groups: Tensor | None = None) -> None:
    if scores.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(
            f"scores and labels must be 1-D of one length, got {tuple(scores.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if groups is not None and groups.shape != scores.shape:
        raise ValueError(f"groups must be shaped like scores {tuple(scores.shape)}")
    if bool(torch.isnan(scores).any()):
        raise ValueError("scores contain NaN; a NaN cannot be ranked")
    if bool(((labels != 0) & (labels != 1)).any()):
        raise ValueError("labels must be 0 or 1")


def _tie_blocks(*keys: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Sort by ``keys`` (the first key is the primary one) and return the order, the tie block
    of each sorted entry and the first sorted position of each block (equal keys = one block)."""
    order = torch.argsort(keys[-1], stable=True)
    for key in reversed(keys[:-1]):
        order = order[torch.argsort(key[order], stable=True)]
    new = torch.zeros(len(order), dtype=torch.bool, device=order.device)
    if len(order):
        new[0] = True
    for key in keys:
        ordered = key[order]
        new[1:] |= ordered[1:] != ordered[:-1]
    block = torch.cumsum(new.long(), 0) - 1  # (n,)
    return order, block, new.nonzero().flatten()


def auc(scores: Tensor, labels: Tensor) -> Tensor:
    """Pooled AUC (float64 scalar); ties count half. Needs clicked and non-clicked impressions."""
    _check(scores, labels)
    y = labels.to(torch.float64)
    n_pos = float(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs at least one clicked and one non-clicked impression")
    order, block, starts = _tie_blocks(scores)
    ends = torch.cat([starts[1:], starts.new_tensor([len(order)])])
    mid_rank = (starts + 1 + ends).to(torch.float64) / 2  # average 1-based rank of each block
    rank_sum = (mid_rank[block] * y[order]).sum()
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@dataclass(frozen=True)
class GroupAUC:
    """Per-user AUC: ``auc[i]`` of user ``groups[i]`` (NaN where skipped), its impressions and
    clicks; ``valid`` marks users with both classes."""

    groups: Tensor
    auc: Tensor
    impressions: Tensor
    clicks: Tensor

    @property
    def valid(self) -> Tensor:
        return (self.clicks > 0) & (self.clicks < self.impressions)

    @property
    def skipped(self) -> int:
        return int((~self.valid).sum())

    def weighted_mean(self) -> Tensor:
        valid = self.valid
        if not bool(valid.any()):
            raise ValueError("GAUC: no user has both clicked and non-clicked impressions")
        weights = self.impressions[valid].to(torch.float64)
        return (weights * self.auc[valid]).sum() / weights.sum()


def group_auc(scores: Tensor, labels: Tensor, groups: Tensor) -> GroupAUC:
    """Every user's AUC (ties count half), from one sort by (user, score)."""
    _check(scores, labels, groups)
    users, group = torch.unique(groups, return_inverse=True)  # group: (n,) in 0..G-1
    n_groups = len(users)
    order, block, starts = _tie_blocks(group, scores)
    sorted_group = group[order]
    y = labels.to(torch.float64)[order]
    impressions = torch.bincount(group, minlength=n_groups)  # (G,)
    clicks = torch.zeros(n_groups, dtype=torch.float64).index_add_(0, sorted_group, y)
    group_start = torch.cumsum(impressions, 0) - impressions  # (G,) first sorted position
    ends = torch.cat([starts[1:], starts.new_tensor([len(order)])])
    block_group = sorted_group[starts]
    mid_rank = (starts + 1 + ends).to(torch.float64) / 2 - group_start[block_group]
    rank_sum = torch.zeros(n_groups, dtype=torch.float64).index_add_(
        0, sorted_group, mid_rank[block] * y
    )
    negatives = impressions - clicks
    values = (rank_sum - clicks * (clicks + 1) / 2) / (clicks * negatives)
    values = values.masked_fill((clicks == 0) | (negatives == 0), float("nan"))
    return GroupAUC(users, values, impressions, clicks.long())


def gauc(scores: Tensor, labels: Tensor, groups: Tensor) -> Tensor:
    """GAUC (float64 scalar): per-user AUC weighted by impressions, one-class users skipped."""
    return group_auc(scores, labels, groups).weighted_mean()


def log_loss(probs: Tensor, labels: Tensor) -> Tensor:
    """Mean binary cross-entropy (float64 scalar) of click probabilities."""
    _check(probs, labels)
    if bool(((probs < 0) | (probs > 1)).any()):
        raise ValueError("LogLoss needs probabilities in [0, 1]; got scores outside it")
    return _log_losses(probs, labels).mean()


def _log_losses(probs: Tensor, labels: Tensor) -> Tensor:
    p = probs.to(torch.float64).clamp(EPS, 1 - EPS)
    y = labels.to(torch.float64)
    return -(y * torch.log(p) + (1 - y) * torch.log1p(-p))


def compute(scores: Tensor, labels: Tensor, groups: Tensor, names: Sequence[str]) -> dict:
    """Each named CTR metric of the impressions, keyed by its canonical name."""
    fns = {"AUC": lambda: auc(scores, labels), "GAUC": lambda: gauc(scores, labels, groups),
           "LogLoss": lambda: log_loss(scores, labels)}  # fmt: skip
    return {canonical_name(n): fns[canonical_name(n)]() for n in names}


class CTRMetrics(Metric):
    """AUC / GAUC / LogLoss over every impression seen, across batches and processes.

    ``update(scores, labels, groups)`` appends 1-D impressions; the states are concatenated
    (``dist_reduce_fx="cat"``), so under data parallelism every process computes the metrics
    of all impressions, and the result does not depend on the batching.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    def __init__(self, names: Sequence[str], **kwargs: object) -> None:
        super().__init__(**kwargs)
        if isinstance(names, str) or not names:
            raise ValueError(f"names must be a non-empty list of CTR metric names, got {names!r}")
        self.names = tuple(canonical_name(n) for n in names)
        for state in ("scores", "labels", "groups"):
            self.add_state(state, default=[], dist_reduce_fx="cat")

    def update(self, scores: Tensor, labels: Tensor, groups: Tensor) -> None:
        _check(scores, labels, groups)
        self.scores.append(scores.detach())
        self.labels.append(labels.detach())
        self.groups.append(groups.detach())

    def impressions(self) -> tuple[Tensor, Tensor, Tensor]:
        """All (scores, labels, groups) seen so far (synchronised across processes)."""
        if isinstance(self.scores, list) and not self.scores:
            raise ValueError("CTRMetrics has no impressions yet: call update first")
        return dim_zero_cat(self.scores), dim_zero_cat(self.labels), dim_zero_cat(self.groups)

    def compute(self) -> dict[str, Tensor]:
        return compute(*self.impressions(), self.names)


# ---------------------------------------------------------------- bootstrap over users


def _resample_counts(n_users: int, n_resamples: int, seed: int):
    """Chunks (size, n_users) of draw counts: the resamples of ``stats.summarise``."""
    rng = np.random.default_rng(seed)
    for size in _chunks(n_resamples, n_users):
        draws = rng.integers(0, n_users, size=(size, n_users))
        draws += n_users * np.arange(size)[:, None]
        counts = np.bincount(draws.ravel(), minlength=size * n_users)
        yield counts.reshape(size, n_users).astype(np.float64)


def _pooled_auc_resampled(
    counts: np.ndarray, user: np.ndarray, labels: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """Pooled AUC of each resample (R,): impressions weighted by their user's draw count.

    ``user`` and ``labels`` are in score order, ``starts`` the first position of each tie
    block. For a clicked impression in block ``[s, e)``, twice its count of non-clicked weight
    below it (ties half) is ``W(s) + W(e)``, with ``W(q)`` the non-clicked weight before sorted
    position ``q``: integer arithmetic throughout, so the result is exact.
    """
    positives = np.flatnonzero(labels == 1)
    negatives = np.flatnonzero(labels == 0)
    ends = np.append(starts[1:], len(labels))
    block = np.searchsorted(starts, positives, side="right") - 1  # block of each click
    before_start = np.searchsorted(negatives, starts[block])  # non-clicks before its block
    before_end = np.searchsorted(negatives, ends[block])  # ... before the end of its block
    out = np.empty(len(counts))
    step = max(1, _WEIGHT_ELEMENTS // max(len(negatives), 1))
    for first in range(0, len(counts), step):
        c = counts[first : first + step].astype(np.int64)  # (r, U)
        below = np.zeros((len(c), len(negatives) + 1), dtype=np.int64)
        np.cumsum(c[:, user[negatives]], axis=1, out=below[:, 1:])  # (r, n_neg + 1)
        w_pos = c[:, user[positives]]  # (r, P)
        twice = (w_pos * (below[:, before_start] + below[:, before_end])).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[first : first + step] = twice / (2.0 * w_pos.sum(1) * below[:, -1])
    return out


@dataclass(frozen=True)
class CTRResamples:
    """Each metric's value on the impressions (``points``) and on every user resample
    (``resampled[name]``, (R,)), with the number of users and GAUC's skipped users."""

    points: dict[str, float]
    resampled: dict[str, np.ndarray]
    n_users: int
    skipped: int

    def summary(self, confidence: float) -> dict[str, dict[str, float]]:
        """``mean`` (the metric itself), ``ci_low``, ``ci_high``, ``n`` (users); GAUC adds
        ``skipped``."""
        tail = (1.0 - confidence) / 2.0
        out = {}
        for name, point in self.points.items():
            low, high = np.nanquantile(self.resampled[name], [tail, 1.0 - tail])
            out[name] = {"mean": float(point), "ci_low": float(low), "ci_high": float(high),
                         "n": self.n_users}  # fmt: skip
            if name == "GAUC":
                out[name]["skipped"] = self.skipped
        return out


def ctr_resamples(
    scores: Tensor,
    labels: Tensor,
    groups: Tensor,
    names: Sequence[str],
    n_resamples: int = 1000,
    seed: int = 0,
) -> CTRResamples:
    """The named metrics on the impressions and on ``n_resamples`` bootstrap resamples of the
    users (``groups``, in ascending order), the resamples ``summarise`` draws for as many users
    and the same seed."""
    names = [canonical_name(n) for n in names]
    per_user = group_auc(scores, labels, groups)
    user = torch.searchsorted(per_user.groups, groups).numpy()  # (n,) user index 0..U-1
    n_users = len(per_user.groups)
    y = labels.to(torch.float64).numpy()
    impressions = per_user.impressions.numpy().astype(np.float64)
    columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # ratio metrics: numerator, weight
    if "GAUC" in names:
        valid = per_user.valid.numpy()
        weight = np.where(valid, impressions, 0.0)
        columns["GAUC"] = (np.where(valid, per_user.auc.numpy(), 0.0) * weight, weight)
    if "LogLoss" in names:
        log_loss(scores, labels)  # checks that the scores are probabilities
        losses = np.bincount(user, weights=_log_losses(scores, labels).numpy(), minlength=n_users)
        columns["LogLoss"] = (losses, impressions)
    order, _, starts = (t.numpy() for t in _tie_blocks(scores))
    resampled: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for counts in _resample_counts(n_users, n_resamples, seed):
        for name, (numerator, weight) in columns.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                value = np.einsum("ru,u->r", counts, numerator) / np.einsum(
                    "ru,u->r", counts, weight
                )
            resampled[name].append(value)
        if "AUC" in names:
            resampled["AUC"].append(_pooled_auc_resampled(counts, user[order], y[order], starts))
    points = {name: float(value) for name, value in compute(scores, labels, groups, names).items()}
    return CTRResamples(
        points, {name: np.concatenate(parts) for name, parts in resampled.items()}, n_users,
        per_user.skipped,
    )  # fmt: skip


def ctr_summary(
    scores: Tensor,
    labels: Tensor,
    groups: Tensor,
    names: Sequence[str],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """For each named metric: ``mean`` (the metric itself), ``ci_low``, ``ci_high`` and ``n``
    (users); GAUC adds ``skipped`` users. Users are ``groups`` in ascending order."""
    _check_settings(n_resamples, confidence)
    return ctr_resamples(scores, labels, groups, names, n_resamples, seed).summary(confidence)


def ctr_seeds_summary(
    impressions: Sequence[tuple[Tensor, Tensor, Tensor]],
    names: Sequence[str],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """The CTR metrics of one model trained with several seeds, scored on the same impressions:
    ``mean`` is the mean over seeds of each seed's metric, and the interval comes from the same
    user resamples, each resample's value averaged over the seeds (as the ranking metrics'
    interval of the seed-averaged per-user values)."""
    _check_settings(n_resamples, confidence)
    parts = [ctr_resamples(*shown, names, n_resamples, seed) for shown in impressions]
    first = parts[0]
    if any(part.n_users != first.n_users for part in parts):
        raise ValueError("the seeds' impressions belong to different users")
    averaged = CTRResamples(
        {name: float(np.mean([part.points[name] for part in parts])) for name in first.points},
        {name: np.mean([part.resampled[name] for part in parts], axis=0) for name in first.points},
        first.n_users, first.skipped,
    )  # fmt: skip
    return averaged.summary(confidence)
