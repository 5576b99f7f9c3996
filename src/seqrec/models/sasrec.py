"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

A causal transformer over the item sequence; every position predicts the next item, and the
score of an item is the dot product of the hidden state with that item's embedding (the table is
shared with the input). The encoder is the post-LN block shared with BERT4Rec (the original code
normalises before attention instead).

Losses (``SASRecConfig.loss``):

- ``bce``: binary cross-entropy with ``n_negatives`` uniformly sampled negatives per position
  (the original uses one);
- ``ce``: softmax over the whole catalogue, "SASRec+" (Klenitskiy & Vasilev, RecSys 2023),
  chunked over targets when catalogue x targets exceeds ``max_logits``;
- ``gbce``: gSASRec's generalised BCE (Petrov & Macdonald, RecSys 2023) with ``n_negatives``
  sampled negatives and calibration ``gbce_t``.

Training windows are ``max_len + 1`` items (``train_seq_len``): the encoder reads the first
``max_len`` and each column's target is the item in the next column. To predict, the encoder reads
the newest ``max_len`` items and the last column scores the next item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec.batch import SequenceBatch
from seqrec.losses import MAX_LOGITS, full_softmax_ce, gbce, gbce_beta, uniform_negatives
from seqrec.nn.features import item_feature_layer
from seqrec.nn.transformer import ACTIVATIONS, TransformerEncoder
from seqrec.objectives import MaskingObjective, build_objective, objectives_for

LOSSES = ("bce", "ce", "gbce")


@dataclass(frozen=True)
class SASRecConfig:
    """SASRec hyper-parameters; ``dataclasses.asdict`` gives a JSON-ready dict.

    ``n_negatives`` is used by ``bce`` and ``gbce`` (gSASRec used 256 with ``gbce_t`` 0.75).
    ``objective`` is ``"clm"``; ``objective_params`` may set ``train_on_last_item_seq_only``.
    ``item_features`` names item fields whose vectors (``seqrec.nn.features``) are added to the
    item embeddings; ``item_feature_spec`` is filled from the data.
    """

    n_items: int
    max_len: int = 50
    hidden_size: int = 64
    n_layers: int = 2
    n_heads: int = 2
    inner_size: int = 256
    hidden_dropout: float = 0.2
    attn_dropout: float = 0.2
    activation: Literal["gelu", "relu"] = "gelu"
    layer_norm_eps: float = 1e-12
    init_std: float = 0.02
    loss: Literal["bce", "ce", "gbce"] = "bce"
    n_negatives: int = 1
    gbce_t: float = 0.75
    objective: Literal["clm"] = "clm"
    objective_params: dict[str, Any] = field(default_factory=dict)
    max_logits: int = MAX_LOGITS
    item_features: tuple[str, ...] = ()
    item_feature_spec: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "item_features", tuple(self.item_features))
        object.__setattr__(self, "item_feature_spec", tuple(map(dict, self.item_feature_spec)))
        checks = {
            "n_items": self.n_items >= 2,
            "max_len": self.max_len >= 1,
            "n_layers": self.n_layers >= 1,
            "hidden_dropout": 0.0 <= self.hidden_dropout < 1.0,
            "attn_dropout": 0.0 <= self.attn_dropout < 1.0,
            "activation": self.activation in ACTIVATIONS,
            "init_std": self.init_std > 0,
            "loss": self.loss in LOSSES,
            "n_negatives": 1 <= self.n_negatives < self.n_items,
            "gbce_t": 0.0 <= self.gbce_t <= 1.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"SASRecConfig.{name}: invalid value {getattr(self, name)!r}")


class SASRec(nn.Module):
    """Causal transformer; scores are dot products with the item embedding table."""

    name: ClassVar[str] = "sasrec"
    supported_attention: ClassVar[frozenset[str]] = frozenset({"causal"})
    accepted_objectives: ClassVar[tuple[str, ...]] = objectives_for(supported_attention)

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        self.config = config
        self.n_items = config.n_items
        self.max_len = config.max_len
        # no mask token: codes 0..n_items only
        features = item_feature_layer(
            config.item_feature_spec, config.item_features, config.n_items, config.hidden_size,
            "SASRecConfig.item_features",
        )  # fmt: skip
        self.encoder = TransformerEncoder(
            config.n_items + 1,
            config.max_len,
            config.hidden_size,
            config.n_layers,
            config.n_heads,
            config.inner_size,
            config.hidden_dropout,
            config.attn_dropout,
            config.activation,
            config.layer_norm_eps,
            features=features,
        )
        self.objective: MaskingObjective = build_objective(
            config.objective,
            n_items=config.n_items,
            hidden_size=config.hidden_size,
            model_name="SASRec",
            supported_attention=self.supported_attention,
            **config.objective_params,
        )
        self.train_seq_len: int = self.objective.train_width(config.max_len)
        self.beta = gbce_beta(config.n_negatives, config.n_items, config.gbce_t)
        self.encoder.reset_parameters(config.init_std)

    def forward(self, item_seq: Tensor) -> Tensor:
        """Hidden states (B, L, D) under causal attention: column i sees columns <= i."""
        return self.encoder(self.encoder.embed(item_seq), item_seq == 0, "causal")

    def calculate_loss(
        self, batch: SequenceBatch, generator: torch.Generator | None = None
    ) -> Tensor:
        """Next-item loss over every position of training windows of ``train_seq_len`` items."""
        width = batch.item_seq.shape[1]
        if width > self.train_seq_len:
            raise ValueError(
                f"SASRec trains on windows of at most train_seq_len="
                f"{self.train_seq_len} columns, got {width}"
            )
        return self.objective.training_loss(self.encoder, self, batch.item_seq, generator)

    def score_items(self, hidden: Tensor) -> Tensor:
        """Scores (N, n_items + 1) of hidden states (N, D); padding (column 0) scores -inf."""
        scores = F.linear(hidden, self.encoder.item_embedding.weight)
        scores[:, 0] = float("-inf")
        return scores

    def target_loss(
        self, hidden: Tensor, targets: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """The configured loss of hidden states (N, D) against targets (N,)."""
        table = self.encoder.item_embedding.weight  # (n_items + 1, D)
        if self.config.loss == "ce":
            return full_softmax_ce(hidden, table[1:], None, targets - 1, self.config.max_logits)
        negatives = uniform_negatives(targets, self.n_items, self.config.n_negatives, generator)
        positive = (hidden * table[targets]).sum(-1)  # (N,)
        negative = (table[negatives] @ hidden.unsqueeze(-1)).squeeze(-1)  # (N, k)
        return gbce(positive, negative, self.beta if self.config.loss == "gbce" else 1.0)

    def predict(self, batch: SequenceBatch, items: Tensor) -> Tensor:
        """Scores (B, C) of candidate ``items`` (B, C) as the next item of each history."""
        hidden = self.objective.next_item_states(self.encoder, batch.item_seq)  # (B, D)
        scores = (self.encoder.item_embedding(items) @ hidden.unsqueeze(-1)).squeeze(-1)
        return scores.masked_fill(items == 0, float("-inf"))

    def full_sort_predict(self, batch: SequenceBatch) -> Tensor:
        """Scores (B, n_items + 1) of every item code as the next item; column 0 is -inf."""
        return self.score_items(self.objective.next_item_states(self.encoder, batch.item_seq))
