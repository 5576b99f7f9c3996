"""Accumulate per-user ranking metrics over batches (and processes) with torchmetrics."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from seqrec.metrics.ranking import compute, parse_metric_name


class RankingMetrics(Metric):
    """Means of named ranking metrics (e.g. ``["HR@10", "NDCG@10", "MRR"]``) over all users seen.

    ``update(ranks)`` takes the ``(B, R)`` ranks of ``ranking.py`` and keeps every user's value
    (list states reduced by concatenation, so DDP processes gather all users before averaging).
    Because the mean is taken once over the concatenated users, the result does not depend on how
    users were split into batches. ``per_user()`` gives the values themselves, for bootstrap CIs.
    Values keep the dtype of the ranks passed to ``update``.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, names: Sequence[str], **kwargs: object) -> None:
        super().__init__(**kwargs)
        if isinstance(names, str) or not names:
            raise ValueError(f"names must be a non-empty list of metric names, got {names!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"metric names must be unique, got {list(names)}")
        for name in names:
            parse_metric_name(name)  # fail at construction, not after an epoch of evaluation
        self.names = tuple(names)
        for index in range(len(self.names)):
            self.add_state(f"values_{index}", default=[], dist_reduce_fx="cat")

    def update(self, ranks: Tensor) -> None:
        values = compute(ranks, self.names)
        for index, name in enumerate(self.names):
            getattr(self, f"values_{index}").append(values[name])

    def compute(self) -> dict[str, Tensor]:
        return {name: values.mean() for name, values in self._values().items()}

    def per_user(self) -> dict[str, Tensor]:
        """Every user's value of each metric (synchronised across processes), in update order."""
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn,
            should_sync=self._to_sync,
            should_unsync=self._should_unsync,
        ):
            return {name: values.clone() for name, values in self._values().items()}

    def _values(self) -> dict[str, Tensor]:
        states = [getattr(self, f"values_{index}") for index in range(len(self.names))]
        if isinstance(states[0], list) and not states[0]:
            raise ValueError("RankingMetrics has no users yet: call update(ranks) first")
        return {name: dim_zero_cat(state) for name, state in zip(self.names, states, strict=True)}
