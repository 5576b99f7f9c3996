"""What every masking objective shares, and the one path from item ids to a training loss.

An objective (in the Transformers4Rec sense) decides which positions a sequence encoder predicts,
what it predicts there and what it may see: ``compute_masked_targets`` returns a
:class:`MaskingInfo`; the encoder reads ``info.input_ids``, whose mask tokens
``apply_mask_to_inputs`` replaces by the objective's trainable mask embedding; hidden states are
gathered at ``info.schema`` and only then scored (:meth:`MaskingObjective.hidden_at` is the one
place an objective turns a ``MaskingInfo`` into hidden states; permutation language modeling
replaces it by XLNet's two streams). Objectives keep no state between calls: everything a call
decides is in the returned ``MaskingInfo``.

Item codes: 0 padding, 1..n_items items, ``n_items + 1`` the mask token. Sequences are
left-padded, newest item in the last column.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Protocol

import torch
from torch import Tensor, nn

from seqrec.nn.transformer import Attention

ATTENTION_KINDS = ("causal", "bidirectional", "permutation")


@dataclass(frozen=True)
class MaskingInfo:
    """One batch's masking decisions, aligned with the item ids it was computed from.

    ``targets[b, i]`` is what the encoder's output at column ``i`` must predict. At prediction
    time the last column holds the mask token, which then stands for the unknown next item.
    """

    schema: Tensor  # (B, L) bool: True where the encoder's output is scored
    targets: Tensor  # (B, L) int64: the item to predict where schema is True, 0 elsewhere
    input_ids: Tensor  # (B, L) int64: what the encoder reads (mask token where inputs are hidden)
    # (B, L, L) bool, True = may attend; None = the objective's attention kind. Under two-stream
    # attention (permutation LM) these are the content stream's permissions.
    attention_mask: Tensor | None = None


class SequenceEncoder(Protocol):
    """What an objective needs from an encoder (``seqrec.nn.TransformerEncoder`` fits)."""

    max_len: int

    def embed(self, item_ids: Tensor) -> Tensor: ...

    def __call__(
        self,
        inputs: Tensor,
        padding: Tensor,
        attention: Attention,
        query_positions: Tensor | None = None,
    ) -> Tensor: ...

    def two_stream(
        self,
        inputs: Tensor,
        padding: Tensor,
        attention: Tensor,
        query_positions: Tensor,
        query_input: Tensor,
    ) -> Tensor:
        """XLNet's query-stream states (N, D) at ``query_positions``; permutation LM needs it."""
        ...


class ItemScorer(Protocol):
    """What an objective needs from a model's output layer."""

    def score_items(self, hidden: Tensor) -> Tensor:
        """Scores (N, n_items + 1) of every item code for hidden states (N, D)."""
        ...

    def target_loss(
        self, hidden: Tensor, targets: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        """Scalar loss of hidden states (N, D) gathered at target positions against targets (N,)."""
        ...


class MaskingObjective(nn.Module, ABC):
    """Base of the masking objectives; subclasses set ``name``, ``attention`` and masking.

    ``target_offset`` is 1 when the target of a column lies in the next column (causal LM): the
    training window is then one column wider than the encoder and its last column is only read as
    a target. ``hides_inputs`` says whether the objective owns a mask embedding.

    ``padding_idx`` is accepted under Transformers4Rec's name; the encoders here left-pad with
    item 0, so 0 is the only value they support.
    """

    name: ClassVar[str]
    attention: ClassVar[str]  # one of ATTENTION_KINDS
    target_offset: ClassVar[int] = 0
    hides_inputs: ClassVar[bool] = True

    def __init__(
        self,
        n_items: int,
        hidden_size: int,
        eval_on_last_item_seq_only: bool = True,
        padding_idx: int = 0,
    ):
        super().__init__()
        if padding_idx != 0:
            raise ValueError(
                f"{type(self).__name__}: padding_idx {padding_idx!r} is not supported; the "
                "encoders left-pad with item 0, so padding_idx must be 0"
            )
        self.padding_idx = padding_idx
        self.n_items = n_items
        self.mask_token = n_items + 1
        self.eval_on_last_item_seq_only = eval_on_last_item_seq_only
        if self.hides_inputs:
            self.masked_item_embedding = nn.Parameter(torch.empty(hidden_size))
            nn.init.trunc_normal_(self.masked_item_embedding, std=0.02, a=-0.04, b=0.04)

    @classmethod
    def check_compatible(cls, model_name: str, supported: frozenset[str]) -> None:
        """Raise if a model whose encoder supports ``supported`` attention cannot use this."""
        if cls.attention not in supported:
            raise ValueError(
                f"objective {cls.name!r} needs {cls.attention} attention, which {model_name} does "
                f"not support ({model_name} supports: {', '.join(sorted(supported))})"
            )

    @abstractmethod
    def compute_masked_targets(
        self,
        item_ids: Tensor,
        training: bool,
        generator: torch.Generator | None = None,
        last_item_rows: Tensor | None = None,
    ) -> MaskingInfo:
        """Targets and encoder inputs for ``item_ids`` (B, L); all randomness from ``generator``.

        Outside training, the newest item (last column) is the target when
        ``eval_on_last_item_seq_only``; otherwise every position given by :meth:`predict_all`.
        In training, the rows where ``last_item_rows`` (B,) is True have their newest item as
        their only target (the BERT4Rec authors' last-item copy of every window).
        """

    def apply_mask_to_inputs(self, inputs: Tensor, schema: Tensor) -> Tensor:
        """Replace item embeddings ``inputs`` (B, L, D) by the mask embedding where ``schema``."""
        mask = self.masked_item_embedding.to(inputs.dtype)
        return torch.where(schema.unsqueeze(-1), mask, inputs)

    def predict_all(self, item_ids: Tensor) -> MaskingInfo:
        """Next-item targets at every position: column ``i`` predicts the item in column ``i + 1``.

        Only an encoder that cannot see column ``i + 1`` from column ``i`` (causal attention) can
        be evaluated this way, so bidirectional objectives evaluate the last item only.
        """
        following = torch.cat([item_ids[:, 1:], torch.zeros_like(item_ids[:, :1])], dim=1)
        schema = (item_ids != 0) & (following != 0)  # (B, L)
        return MaskingInfo(schema, torch.where(schema, following, 0), item_ids)

    def last_item_info(self, item_ids: Tensor) -> MaskingInfo:
        """The newest item (last column) as the only target, hidden from the encoder."""
        schema = torch.zeros_like(item_ids, dtype=torch.bool)
        schema[:, -1] = item_ids[:, -1] != 0
        inputs = torch.where(schema, self.mask_token, item_ids) if self.hides_inputs else item_ids
        return MaskingInfo(schema, torch.where(schema, item_ids, 0), inputs)

    def train_width(self, max_len: int) -> int:
        """Width of the training windows an encoder of ``max_len`` positions needs."""
        return max_len + self.target_offset

    def inference_ids(self, item_seq: Tensor, max_len: int) -> Tensor:
        """History ``item_seq`` (B, L) with the mask token appended after the newest item.

        The oldest columns are dropped so that the encoder reads at most ``max_len`` columns, and
        the column that predicts the next item is the last one it reads, the same column that
        training used for its last-item targets.
        """
        keep = max_len + self.target_offset - 1
        history = item_seq[:, max(item_seq.shape[1] - keep, 0) :]
        mask = torch.full_like(item_seq[:, :1], self.mask_token)
        return torch.cat([history, mask], dim=1)  # (B, <= keep + 1)

    def encode(
        self,
        encoder: SequenceEncoder,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        query_positions: Tensor | None = None,
    ) -> Tensor:
        """Hidden states (B, L - target_offset, D) of ``input_ids`` with mask tokens hidden.

        With ``query_positions`` (B, L) bool, only the states there: (N, D), row-major.
        """
        width = input_ids.shape[1] - self.target_offset
        ids = input_ids[:, :width]
        inputs = self.apply_mask_to_inputs(encoder.embed(ids), ids == self.mask_token)
        attention = self.attention if attention_mask is None else attention_mask[:, :width, :width]
        if query_positions is None:
            return encoder(inputs, ids == 0, attention)
        return encoder(inputs, ids == 0, attention, query_positions[:, :width])

    def hidden_at(self, encoder: SequenceEncoder, info: MaskingInfo, positions: Tensor) -> Tensor:
        """Hidden states (N, D) that predict the True ``positions`` (B, L) of ``info``, row-major.

        One stream here: the encoder reads ``info.input_ids`` with mask tokens hidden.
        """
        return self.encode(encoder, info.input_ids, info.attention_mask, positions)

    def target_states(self, encoder: SequenceEncoder, info: MaskingInfo) -> tuple[Tensor, Tensor]:
        """Hidden states gathered at the target positions (N, D) and their targets (N,).

        The encoder's last block runs its queries at the targets only; no other state is built.
        """
        width = info.input_ids.shape[1] - self.target_offset
        schema = info.schema[:, :width]  # (B, L')
        hidden = self.hidden_at(encoder, info, schema)  # (N, D)
        return hidden, info.targets[:, :width][schema]  # (N, D), (N,)

    def training_loss(
        self,
        encoder: SequenceEncoder,
        scorer: ItemScorer,
        item_ids: Tensor,
        generator: torch.Generator | None = None,
        last_item_rows: Tensor | None = None,
    ) -> Tensor:
        """Encode masked inputs, gather target positions, score them: the loss of one batch."""
        info = self.compute_masked_targets(item_ids, True, generator, last_item_rows)
        hidden, targets = self.target_states(encoder, info)
        return scorer.target_loss(hidden, targets, generator)

    def next_item_states(self, encoder: SequenceEncoder, item_seq: Tensor) -> Tensor:
        """Hidden state (B, D) that predicts the item after the newest one of ``item_seq``."""
        ids = self.inference_ids(item_seq, encoder.max_len)
        info = self.compute_masked_targets(ids, training=False)
        last = torch.zeros_like(ids, dtype=torch.bool)
        last[:, ids.shape[1] - 1 - self.target_offset] = True  # the last column the encoder reads
        return self.hidden_at(encoder, info, last)  # (B, D)


def random_position(allowed: Tensor, generator: torch.Generator | None) -> Tensor:
    """One uniformly drawn column per row among ``allowed`` (B, L) columns: (B,) int64.

    Rows with no allowed column get an arbitrary column; callers only use rows that have one.
    """
    noise = torch.rand(allowed.shape, generator=generator, device=allowed.device)
    return noise.masked_fill(~allowed, -1.0).argmax(dim=1)


def ensure_one_target(schema: Tensor, real: Tensor, generator: torch.Generator | None) -> Tensor:
    """``schema`` with one random real item added to every non-empty row that has no target."""
    needs = real.any(dim=1) & ~schema.any(dim=1)  # (B,)
    pick = torch.zeros_like(schema)
    pick[torch.arange(len(schema), device=schema.device), random_position(real, generator)] = True
    return schema | (pick & needs[:, None])


def mask_last_item_rows(
    schema: Tensor,
    real: Tensor,
    prob: float,
    generator: torch.Generator | None,
    forced: Tensor | None = None,
) -> Tensor:
    """Replace, with probability ``prob`` per row and always where ``forced`` (B,), a row's
    targets by its newest item only.

    These are BERT4Rec's fine-tuning samples: they train exactly the position that prediction
    reads (the last column), as the authors' data generation does with one extra copy of each
    window whose last item alone is masked (``forced`` marks such copies).
    """
    if prob <= 0.0 and forced is None:
        return schema
    rows = torch.zeros(schema.shape[0], dtype=torch.bool, device=schema.device)
    if prob > 0.0:
        rows = torch.rand(schema.shape[0], generator=generator, device=schema.device) < prob
    if forced is not None:
        rows = rows | forced
    last_only = torch.zeros_like(schema)
    last_only[:, -1] = real[:, -1]
    return torch.where(rows[:, None], last_only, schema)
