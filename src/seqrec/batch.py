"""The batch every model takes: a small dataclass of tensors, not a dict of strings."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor


@dataclass(frozen=True)
class SequenceBatch:
    """A batch of left-padded histories (newest item in the last column, 0 = padding).

    ``users`` holds user codes where a model or the evaluator needs them; CTR models add a
    target item and a click label. ``seen`` holds, for training batches of models that ask for
    it (``uses_seen_items``), each row's user's distinct training items sorted ascending and
    padded with 0 in front, so negatives can be drawn outside them. ``last_item_only`` marks the
    training rows whose newest item is their only target (the BERT4Rec authors' last-item copy of
    every window).
    """

    item_seq: Tensor  # (B, L) int64
    users: Tensor | None = None  # (B,) int64
    seen: Tensor | None = None  # (B, S) int64, sorted, 0-padded in front
    last_item_only: Tensor | None = None  # (B,) bool: train these rows on their newest item
    target_item: Tensor | None = None  # (B,) int64, CTR models
    label: Tensor | None = None  # (B,) float, CTR models

    def __len__(self) -> int:
        return self.item_seq.shape[0]

    def to(self, device: torch.device | str) -> SequenceBatch:
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if getattr(self, f.name) is not None
        }
        return replace(self, **moved)

    @property
    def padding_mask(self) -> Tensor:
        """True where ``item_seq`` is padding: (B, L) bool."""
        return self.item_seq == 0
