"""Causal language modeling: every item predicts the one after it (SASRec's objective)."""

from __future__ import annotations

import torch
from torch import Tensor

from seqrec.objectives.base import MaskingInfo, MaskingObjective


class CausalLanguageModeling(MaskingObjective):
    """Column ``i`` predicts the item in column ``i + 1`` under causal attention.

    Training windows are one column wider than the encoder (``target_offset = 1``): the encoder
    reads the first ``max_len`` columns and the last column is only a target, so the input never
    contains the item it must predict. ``train_on_last_item_seq_only`` keeps the newest item as
    the only target of each window. Nothing is replaced by a mask embedding (causal attention
    already hides every later column), so this objective has no parameters.
    """

    name = "clm"
    attention = "causal"
    target_offset = 1
    hides_inputs = False

    def __init__(
        self,
        n_items: int,
        hidden_size: int,
        train_on_last_item_seq_only: bool = False,
        eval_on_last_item_seq_only: bool = True,
        padding_idx: int = 0,
    ) -> None:
        super().__init__(n_items, hidden_size, eval_on_last_item_seq_only, padding_idx)
        self.train_on_last_item_seq_only = train_on_last_item_seq_only

    def compute_masked_targets(
        self,
        item_ids: Tensor,
        training: bool,
        generator: torch.Generator | None = None,
        last_item_rows: Tensor | None = None,
    ) -> MaskingInfo:
        """Next-item targets; with ``*_on_last_item_seq_only`` only the newest item is a target,
        and so in the training rows where ``last_item_rows`` (B,) is True.

        The causal targets need no randomness; ``generator`` is accepted for the common surface.
        """
        info = self.predict_all(item_ids)
        last_only = (
            self.train_on_last_item_seq_only if training else self.eval_on_last_item_seq_only
        )
        if not last_only and (not training or last_item_rows is None):
            return info
        schema = torch.zeros_like(info.schema)
        # the newest item (last column) is predicted by the column before it
        schema[:, -2] = info.schema[:, -2]
        if not last_only:
            schema = torch.where(last_item_rows[:, None], schema, info.schema)
        return MaskingInfo(schema, torch.where(schema, info.targets, 0), item_ids)

    def apply_mask_to_inputs(self, inputs: Tensor, schema: Tensor) -> Tensor:
        """Inputs unchanged: under causal attention no column sees the item it predicts."""
        return inputs
