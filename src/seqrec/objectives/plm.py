"""Permutation language modeling with span masks, as in XLNet (Yang et al., NeurIPS 2019).

Spans of consecutive items are chosen as targets the way XLNet's data pipeline does: repeatedly
draw a span length ``s`` in ``[1, max_span_length]``, reserve a context of ``int(s /
plm_probability)`` items and mask ``s`` consecutive items at a random offset inside it. A random
factorisation order over the targets then decides what each position may attend to.

The encoder has one stream: targets read the mask embedding instead of their item, so no target's
content reaches any position, and the factorisation order only decides which targets share
what they have gathered from the context (target ``i`` sees target ``j`` when ``j`` comes first).
Non-targets see each other in both directions and never see a target.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor

from seqrec.objectives.base import (
    MaskingInfo,
    MaskingObjective,
    ensure_one_target,
    mask_last_item_rows,
    random_position,
)


def span_schema(
    real: Tensor, plm_probability: float, max_span_length: int, generator: torch.Generator | None
) -> Tensor:
    """XLNet's span targets (B, L) over the real items of left-padded rows, all rows at once."""
    batch, width = real.shape
    lengths = real.sum(dim=1, keepdim=True)  # (B, 1)
    n_segments = math.ceil(width / max(int(1 / plm_probability), 1))
    spans = torch.randint(
        1, max_span_length + 1, (batch, n_segments), generator=generator, device=real.device
    )  # (B, S)
    contexts = (spans.double() / plm_probability).long().clamp(min=1)  # (B, S)
    begins = contexts.cumsum(dim=1) - contexts  # where each segment's context starts
    room = (contexts - spans + 1).clamp(min=1)
    offsets = (torch.rand(spans.shape, generator=generator, device=real.device) * room).long()
    starts = begins + offsets.minimum(room - 1)  # relative to the row's first real item
    used = starts < lengths  # (B, S) spans that start inside the row
    first = width - lengths  # (B, 1) first real column under left padding
    # +1 where a span starts, -1 where it ends: a cumulative sum marks the spans
    edges = torch.zeros(batch, width + 1, dtype=torch.long, device=real.device)
    edges.scatter_add_(1, (first + starts).clamp(max=width), used.long())
    edges.scatter_add_(1, (first + starts + spans).clamp(max=width), -used.long())
    return (edges.cumsum(dim=1)[:, :width] > 0) & real


def keep_one_context_item(
    schema: Tensor, real: Tensor, generator: torch.Generator | None
) -> Tensor:
    """Unmask one random target in rows of two or more items whose every item is a target."""
    full = (schema == real).all(dim=1) & (real.sum(dim=1) >= 2)  # (B,)
    pick = torch.zeros_like(schema)
    pick[torch.arange(len(schema), device=schema.device), random_position(schema, generator)] = True
    return schema & ~(pick & full[:, None])


def permutation_attention(schema: Tensor, order: Tensor) -> Tensor:
    """(B, L, L) bool, True = query ``i`` may attend key ``j``, for targets ``schema`` (B, L).

    Every position sees the non-targets; a target also sees the targets that come before it in
    the factorisation ``order`` (B, L). (Each position seeing itself and padding being hidden is
    the encoder's job.)
    """
    non_targets = ~schema[:, None, :]  # (B, 1, L)
    earlier = order[:, None, :] < order[:, :, None]  # (B, L, L): key j before query i
    return non_targets | (schema[:, :, None] & schema[:, None, :] & earlier)


class PermutationLanguageModeling(MaskingObjective):
    """Span targets, hidden by the mask embedding, predicted under a permutation attention mask.

    ``plm_probability`` is the share of items to mask, ``max_span_length`` the longest span,
    ``permute_all`` makes every item a target (but one kept as context in rows of two or more).
    ``last_item_mask_prob`` as in masked language modeling. At prediction time the mask is
    appended after the newest item and no history position sees it.
    """

    name = "plm"
    attention = "permutation"

    def __init__(
        self,
        n_items: int,
        hidden_size: int,
        plm_probability: float = 1 / 6,
        max_span_length: int = 5,
        permute_all: bool = False,
        last_item_mask_prob: float = 0.0,
        eval_on_last_item_seq_only: bool = True,
    ) -> None:
        super().__init__(n_items, hidden_size, eval_on_last_item_seq_only)
        if not 0.0 < plm_probability < 1.0:
            raise ValueError(f"plm_probability must be in (0, 1), got {plm_probability}")
        if max_span_length < 1:
            raise ValueError(f"max_span_length must be at least 1, got {max_span_length}")
        if not 0.0 <= last_item_mask_prob <= 1.0:
            raise ValueError(f"last_item_mask_prob must be in [0, 1], got {last_item_mask_prob}")
        if not eval_on_last_item_seq_only:
            raise ValueError(
                "PermutationLanguageModeling evaluates the last item only: every "
                "other target would be visible to the history around it"
            )
        self.plm_probability = plm_probability
        self.max_span_length = max_span_length
        self.permute_all = permute_all
        self.last_item_mask_prob = last_item_mask_prob

    def compute_masked_targets(
        self, item_ids: Tensor, training: bool, generator: torch.Generator | None = None
    ) -> MaskingInfo:
        """Span targets and their permutation attention mask; the newest item outside training."""
        if not training:
            info = self.last_item_info(item_ids)
            order = torch.zeros_like(item_ids, dtype=torch.float)
            return replace(info, attention_mask=permutation_attention(info.schema, order))
        real = item_ids != 0
        if self.permute_all:
            schema = real
        else:
            schema = span_schema(real, self.plm_probability, self.max_span_length, generator)
        schema = mask_last_item_rows(schema, real, self.last_item_mask_prob, generator)
        schema = keep_one_context_item(ensure_one_target(schema, real, generator), real, generator)
        order = torch.rand(item_ids.shape, generator=generator, device=item_ids.device)
        return MaskingInfo(
            schema,
            torch.where(schema, item_ids, 0),
            torch.where(schema, self.mask_token, item_ids),
            permutation_attention(schema, order),
        )
