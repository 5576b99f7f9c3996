"""GRU4RecF: parallel recurrent networks over item ids and item features.

Hidasi, Quadrana, Karatzoglou & Tikk, "Parallel Recurrent Neural Network Architectures for
Feature-rich Session-based Recommendations", RecSys 2016, with RecBole's method names
(``forward(item_seq, item_seq_len)``, ``calculate_loss``, ``predict``, ``full_sort_predict``).
The item features of each position come from ``seqrec.nn.features.FeatureEmbedding`` (the fields
named in ``item_features``, their tables saved with the model). ``fusion`` picks one of the
paper's three ways to use them:

- ``input_concat``: one GRU over [item embedding ; feature vector];
- ``output_concat`` (default, RecBole's choice): one GRU over item embeddings and one over feature
  vectors, their outputs concatenated and projected to the embedding size;
- ``weighted_sum``: the same two GRUs, each output projected to the embedding size and the two
  summed with two learned scalar weights (with the item table shared by both, this equals the
  paper's weighted sum of the two subnets' item scores).

The networks are trained together (the paper's simultaneous training; its alternating, residual
and interleaved schedules are not offered). Scores, losses (``ce``, ``bpr-max``, ``top1-max``), the
shared negative pool and the left-padded training windows are GRU4Rec's (``seqrec.models.gru4rec``,
whose docstring lists where that differs from the official code). Where this differs from
RecBole's GRU4RecF: every fusion, not only ``output_concat``; any number of item fields of every
kind (token, token_seq, float, float_seq; RecBole pools token_seq by ``pooling_mode`` too), with
the fields' vectors projected to ``feature_size`` instead of fed to the GRU concatenated; the
dropout applies to the feature vectors as well; the GRUs start from GRU4Rec's initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import Sequences
from seqrec.losses import MAX_LOGITS
from seqrec.models.gru4rec import (
    ItemOutput,
    Loss,
    check_left_padded,
    check_recurrent_config,
    training_targets,
)
from seqrec.models.scoring import ScoreFactors
from seqrec.nn.features import FeatureEmbedding, select_fields
from seqrec.nn.gru import LeftPaddedGRU
from seqrec.nn.transformer import dropout

FUSIONS = ("input_concat", "output_concat", "weighted_sum")


@dataclass(frozen=True)
class GRU4RecFConfig:
    """GRU4RecF hyper-parameters; ``dataclasses.asdict`` gives a JSON-ready dict.

    ``item_features`` names the item fields to use (empty: every field the data has);
    ``item_feature_spec`` is filled from the data (the fields' kinds and sizes). ``feature_size``
    is the width of the feature vector, ``feature_combine`` and ``feature_pooling`` as in
    ``seqrec.nn.features``. The other fields are GRU4Rec's.
    """

    n_items: int
    item_feature_spec: tuple[dict[str, Any], ...] = ()
    item_features: tuple[str, ...] = ()
    fusion: Literal["input_concat", "output_concat", "weighted_sum"] = "output_concat"
    max_len: int = 50
    embedding_size: int = 64
    hidden_size: int = 128
    n_layers: int = 1
    feature_size: int = 64
    feature_combine: Literal["concat", "sum"] = "concat"
    feature_pooling: Literal["mean", "sum"] = "mean"
    dropout_embed: float = 0.3
    dropout_hidden: float = 0.0
    loss: Loss = "ce"
    n_sample: int = 2048
    sample_alpha: float = 0.5
    bpreg: float = 1.0
    elu_param: float = 0.5
    max_logits: int = MAX_LOGITS

    def __post_init__(self) -> None:
        # JSON gives lists; keep tuples so a rebuilt config equals the original
        object.__setattr__(self, "item_feature_spec", tuple(map(dict, self.item_feature_spec)))
        object.__setattr__(self, "item_features", tuple(self.item_features))
        check_recurrent_config(self, "GRU4RecFConfig")
        if self.fusion not in FUSIONS:
            raise ValueError(f"GRU4RecFConfig.fusion: {self.fusion!r}, expected one of {FUSIONS}")
        if not self.item_feature_spec:
            raise ValueError(
                "GRU4RecF needs item features, and this data has none: give the data an item "
                "feature file (data.item_features.path) or name feature columns "
                "(data.item_features.fields)"
            )
        names = self.item_features or tuple(e["name"] for e in self.item_feature_spec)
        select_fields(self.item_feature_spec, names, "GRU4RecFConfig.item_features")


class GRU4RecF(nn.Module):
    """An item GRU and a feature GRU (or one GRU over both), trained together."""

    name: ClassVar[str] = "gru4recf"

    def __init__(self, config: GRU4RecFConfig) -> None:
        super().__init__()
        self.config = config
        self.n_items, self.max_len = config.n_items, config.max_len
        self.train_seq_len = config.max_len + 1
        e, h, f = config.embedding_size, config.hidden_size, config.feature_size
        names = config.item_features or tuple(s["name"] for s in config.item_feature_spec)
        spec = select_fields(config.item_feature_spec, names, "GRU4RecFConfig.item_features")
        self.output = ItemOutput(config.n_items, e, config)
        self.features = FeatureEmbedding(
            spec, config.n_items + 1, f, combine=config.feature_combine,
            pooling=config.feature_pooling,
        )  # fmt: skip
        n, p = config.n_layers, config.dropout_hidden
        if config.fusion == "input_concat":
            self.item_gru = LeftPaddedGRU(e + f, h, n, p)
            self.dense = nn.Linear(h, e)
        else:
            self.item_gru = LeftPaddedGRU(e, h, n, p)
            self.feature_gru = LeftPaddedGRU(f, h, n, p)
        if config.fusion == "output_concat":
            self.dense = nn.Linear(2 * h, e)
        elif config.fusion == "weighted_sum":
            self.item_dense, self.feature_dense = nn.Linear(h, e), nn.Linear(h, e)
            self.fusion_weights = nn.Parameter(torch.ones(2))

    @property
    def item_embedding(self) -> nn.Embedding:
        """The item table (RecBole's name), shared by inputs and outputs."""
        return self.output.items

    def prepare_from_training(self, train: Sequences) -> None:
        """Training counts for the popularity sampler of ``bpr-max`` / ``top1-max``."""
        self.output.prepare_from_training(train)

    def gru_outputs(self, item_seq: Tensor) -> tuple[Tensor, ...]:
        """The GRU outputs (B, L, H) of the fusion: one tensor for input_concat, else two."""
        p, training = self.config.dropout_embed, self.training
        padding = item_seq == 0
        items = dropout(self.item_embedding(item_seq), p, training)  # (B, L, E)
        features = dropout(self.features(item_seq), p, training)  # (B, L, F)
        if self.config.fusion == "input_concat":
            outputs = (self.item_gru(torch.cat([items, features], dim=-1), padding),)
        else:
            outputs = (self.item_gru(items, padding), self.feature_gru(features, padding))
        return tuple(dropout(o, self.config.dropout_hidden, training) for o in outputs)

    def fuse(self, outputs: tuple[Tensor, ...]) -> Tensor:
        """Sequence output (..., embedding_size) of the GRU outputs (..., H) of ``gru_outputs``."""
        if self.config.fusion == "input_concat":
            return self.dense(outputs[0])
        if self.config.fusion == "output_concat":
            return self.dense(torch.cat(outputs, dim=-1))
        w = self.fusion_weights
        return w[0] * self.item_dense(outputs[0]) + w[1] * self.feature_dense(outputs[1])

    def encode(self, item_seq: Tensor) -> Tensor:
        """Sequence output (B, L, embedding_size) at every column; column i has seen 0..i."""
        return self.fuse(self.gru_outputs(item_seq))

    def forward(self, item_seq: Tensor, item_seq_len: Tensor | None = None) -> Tensor:
        """Sequence output (B, embedding_size) at the newest item of left-padded ``item_seq``."""
        check_left_padded(item_seq, item_seq_len)
        return self.fuse(tuple(o[:, -1] for o in self.gru_outputs(item_seq)))

    def calculate_loss(
        self, batch: SequenceBatch, generator: torch.Generator | None = None
    ) -> Tensor:
        """Next-item loss at every position of training windows of ``train_seq_len`` items."""
        inputs, following, positions = training_targets(
            batch.item_seq, self.train_seq_len, "GRU4RecF"
        )
        hidden = self.fuse(tuple(o[positions] for o in self.gru_outputs(inputs)))  # (N, E)
        return self.output.loss(hidden, following[positions], generator)

    def predict(self, batch: SequenceBatch, items: Tensor) -> Tensor:
        """Scores (B, C) of candidate ``items`` (B, C) as the next item of each history."""
        return self.output.candidates(self(batch.item_seq), items)

    def full_sort_predict(self, batch: SequenceBatch) -> Tensor:
        """Scores (B, n_items + 1) of every item code as the next item; column 0 is -inf."""
        return self.output.full(self(batch.item_seq))

    def score_factors(self, batch: SequenceBatch) -> ScoreFactors:
        """:meth:`full_sort_predict` as (sequence output, item table, bias): scored in blocks."""
        return ScoreFactors(self(batch.item_seq), self.output.items.weight, self.output.bias)
