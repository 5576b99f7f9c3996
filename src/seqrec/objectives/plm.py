"""Permutation language modeling as in XLNet (Yang et al., NeurIPS 2019), with span targets.

Spans of consecutive items are chosen as targets the way XLNet's data pipeline does: repeatedly
draw a span length ``s`` in ``[1, max_span_length]``, reserve a context of ``int(s /
plm_probability)`` items and mask ``s`` consecutive items at a random offset inside it. A random
factorisation order over the targets then decides what each position may see, as in XLNet's
partial prediction: the non-targets come first in the order, the targets follow in random order.

Two-stream attention (the encoder's :meth:`~seqrec.nn.TransformerEncoder.two_stream`, with the
same weights for both streams):

- the **content stream** reads every item's own embedding (targets included: nothing is replaced
  by a mask). A non-target sees all non-targets; a target sees the non-targets and the targets at
  or before it in the order, itself included.
- the **query stream** exists at the targets only and starts from the mask embedding plus its
  column's position. It reads the content stream under the same permissions minus its own column,
  so a target's prediction uses the content of every earlier target in the order but never its
  own item. The targets are predicted from the query stream.

At prediction time the mask token is appended after the newest item and is the only target: its
query stream sees the content of the whole history, whose content stream is bidirectional among
itself and never sees that column. Training windows masked at their newest item only
(``last_item_mask_prob``) train exactly this column.

Differences from XLNet: learned absolute positions (counted back from the newest item) instead of
relative positional attention and no segment recurrence (memory); the order is drawn per window.
Transformers4Rec's ``PermutationLanguageModeling`` with its XLNet backbone also replaces the
targets' inputs by the mask embedding; here the content stream keeps them, as XLNet does.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor

from seqrec.objectives.base import (
    MaskingInfo,
    MaskingObjective,
    SequenceEncoder,
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


def permutation_attention(schema: Tensor, rank: Tensor) -> Tensor:
    """Content-stream permissions (B, L, L) bool, True = query ``i`` may attend key ``j``.

    ``schema`` (B, L) marks the targets and ``rank`` (B, L) their place in the factorisation
    order (distinct among a row's targets; ignored elsewhere). Every position sees the
    non-targets; a target also sees the targets ranked at or before it, itself included. The
    query stream uses the same permissions without the diagonal (the encoder removes it).
    Padding is hidden by the encoder.
    """
    non_targets = ~schema[:, None, :]  # (B, 1, L)
    not_later = rank[:, None, :] <= rank[:, :, None]  # (B, L, L): key j not after query i
    return non_targets | (schema[:, :, None] & schema[:, None, :] & not_later)


def random_rank(item_ids: Tensor, generator: torch.Generator | None) -> Tensor:
    """A uniformly random permutation of the columns of each row: (B, L) int64, all distinct."""
    noise = torch.rand(item_ids.shape, generator=generator, device=item_ids.device)
    return noise.argsort(dim=1).argsort(dim=1)


class PermutationLanguageModeling(MaskingObjective):
    """Span targets predicted by XLNet's query stream under a random factorisation order.

    ``plm_probability`` is the share of items to mask, ``max_span_length`` the longest span,
    ``permute_all`` makes every item a target (but one kept as context in rows of two or more).
    ``last_item_mask_prob`` as in masked language modeling. The mask embedding is where every
    query stream starts. Needs an encoder with ``two_stream`` (see the module docstring).
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
        padding_idx: int = 0,
    ) -> None:
        super().__init__(n_items, hidden_size, eval_on_last_item_seq_only, padding_idx)
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
        self,
        item_ids: Tensor,
        training: bool,
        generator: torch.Generator | None = None,
        last_item_rows: Tensor | None = None,
    ) -> MaskingInfo:
        """Span targets, the items themselves as inputs, and content-stream permissions.

        Outside training the newest item (last column) is the only target and is read as the
        mask token (its content is never seen by any stream that is read).
        """
        if not training:
            info = self.last_item_info(item_ids)
            rank = torch.zeros_like(item_ids)  # one target: the order does not matter
            return replace(info, attention_mask=permutation_attention(info.schema, rank))
        real = item_ids != 0
        if self.permute_all:
            schema = real
        else:
            schema = span_schema(real, self.plm_probability, self.max_span_length, generator)
        prob = self.last_item_mask_prob
        schema = mask_last_item_rows(schema, real, prob, generator, last_item_rows)
        schema = keep_one_context_item(ensure_one_target(schema, real, generator), real, generator)
        rank = random_rank(item_ids, generator)
        targets = torch.where(schema, item_ids, 0)
        return MaskingInfo(schema, targets, item_ids, permutation_attention(schema, rank))

    def hidden_at(self, encoder: SequenceEncoder, info: MaskingInfo, positions: Tensor) -> Tensor:
        """Query-stream states (N, D) at ``positions``: XLNet's two streams through the encoder."""
        if info.attention_mask is None:
            raise ValueError("PermutationLanguageModeling needs the content-stream permissions")
        ids = info.input_ids
        inputs = self.apply_mask_to_inputs(encoder.embed(ids), ids == self.mask_token)
        return encoder.two_stream(
            inputs, ids == 0, info.attention_mask, positions, self.masked_item_embedding
        )
