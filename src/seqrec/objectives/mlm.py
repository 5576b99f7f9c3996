"""Masked language modeling: the Cloze task of BERT4Rec (Sun et al., CIKM 2019)."""

from __future__ import annotations

import torch
from torch import Tensor

from seqrec.objectives.base import (
    MaskingInfo,
    MaskingObjective,
    ensure_one_target,
    mask_last_item_rows,
)

REPLACEMENTS = ("mask", "bert")


def sample_cloze_schema(
    real: Tensor,
    probability: float,
    generator: torch.Generator | None,
    max_predictions: int | None = None,
) -> Tensor:
    """Exactly ``min(max_predictions, max(1, round(probability * length)))`` random real items
    per non-empty row.

    A fixed count per row, as in the BERT4Rec authors' data generation, rather than a Bernoulli
    draw per item: every non-empty row gets at least one target and the number of targets per
    batch does not vary. ``max_predictions`` is the authors' ``max_predictions_per_seq``.
    """
    lengths = real.sum(dim=1)  # (B,)
    counts = torch.round(lengths * probability).long().clamp(min=1).minimum(lengths)  # (B,)
    if max_predictions is not None:
        counts = counts.clamp(max=max_predictions)
    noise = torch.rand(real.shape, generator=generator, device=real.device)
    noise = noise.masked_fill(~real, 2.0)  # padding sorts last and is never drawn
    ordered = noise.sort(dim=1).values  # (B, L)
    threshold = ordered.gather(1, (counts - 1).clamp(min=0)[:, None])  # (B, 1)
    return (noise <= threshold) & real & (counts > 0)[:, None]


class MaskedLanguageModeling(MaskingObjective):
    """Random items are hidden and predicted from both sides (bidirectional attention).

    ``mlm_probability`` is the share of each sequence's items to mask (at least one).
    ``last_item_mask_prob`` is the probability that a window is instead masked at its newest item
    only, the paper's fine-tuning samples. ``replacement="mask"`` always shows the mask (the
    authors' code); ``"bert"`` shows the mask for 80% of targets, a random item for 10% and the
    item itself for 10%. ``max_predictions`` caps the targets of a window (the authors'
    ``max_predictions_per_seq``: 30 for Beauty). At prediction time the mask is appended after
    the newest item.
    """

    name = "mlm"
    attention = "bidirectional"

    def __init__(
        self,
        n_items: int,
        hidden_size: int,
        mlm_probability: float = 0.2,
        last_item_mask_prob: float = 0.0,
        replacement: str = "mask",
        eval_on_last_item_seq_only: bool = True,
        padding_idx: int = 0,
        max_predictions: int | None = None,
    ) -> None:
        super().__init__(n_items, hidden_size, eval_on_last_item_seq_only, padding_idx)
        if max_predictions is not None and max_predictions < 1:
            raise ValueError(f"max_predictions must be at least 1, got {max_predictions}")
        if not 0.0 < mlm_probability < 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
        if not 0.0 <= last_item_mask_prob <= 1.0:
            raise ValueError(f"last_item_mask_prob must be in [0, 1], got {last_item_mask_prob}")
        if replacement not in REPLACEMENTS:
            raise ValueError(f"replacement must be one of {REPLACEMENTS}, got {replacement!r}")
        if not eval_on_last_item_seq_only:
            raise ValueError(
                f"{type(self).__name__} evaluates the last item only: with "
                "bidirectional attention every other target would be visible"
            )
        self.mlm_probability = mlm_probability
        self.last_item_mask_prob = last_item_mask_prob
        self.replacement = replacement
        self.max_predictions = max_predictions

    def compute_masked_targets(
        self,
        item_ids: Tensor,
        training: bool,
        generator: torch.Generator | None = None,
        last_item_rows: Tensor | None = None,
    ) -> MaskingInfo:
        """Cloze targets in training; the newest item (last column) otherwise."""
        if not training:
            return self.last_item_info(item_ids)
        real = item_ids != 0
        schema = sample_cloze_schema(real, self.mlm_probability, generator, self.max_predictions)
        prob = self.last_item_mask_prob
        schema = mask_last_item_rows(schema, real, prob, generator, last_item_rows)
        schema = ensure_one_target(schema, real, generator)
        targets = torch.where(schema, item_ids, 0)
        return MaskingInfo(schema, targets, self._hide(item_ids, schema, generator))

    def _hide(self, item_ids: Tensor, schema: Tensor, generator: torch.Generator | None) -> Tensor:
        """Encoder input ids: the mask token at targets, or BERT's 80/10/10 replacement."""
        if self.replacement == "mask":
            return torch.where(schema, self.mask_token, item_ids)
        draw = torch.rand(item_ids.shape, generator=generator, device=item_ids.device)
        random_items = torch.randint(
            1, self.n_items + 1, item_ids.shape, generator=generator, device=item_ids.device
        )
        shown = torch.where(schema & (draw >= 0.8) & (draw < 0.9), random_items, item_ids)
        return torch.where(schema & (draw < 0.8), self.mask_token, shown)
