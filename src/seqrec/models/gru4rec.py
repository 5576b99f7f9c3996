"""GRU4Rec: session-based recommendations with recurrent neural networks.

Hidasi et al., ICLR 2016 (https://arxiv.org/abs/1511.06939), with the BPR-max and TOP1-max losses
of Hidasi & Karatzoglou, CIKM 2018 (https://arxiv.org/abs/1706.03847), as the official PyTorch
code does them (hidasib/GRU4Rec_PyTorch_Official; Hidasi & Czapp, RecSys 2023, list what
third-party versions leave out). The item embedding (dropout ``dropout_embed``) feeds ``n_layers``
GRU layers (dropout ``dropout_hidden`` after each); the output at a column, projected to the
embedding size when ``hidden_size`` differs from it, scores every item by a dot product with the
item table plus a bias per item. ``constrained_embedding`` (the official default) uses one table
for inputs and outputs. Losses (``loss``):

- ``ce``: softmax cross-entropy over the whole catalogue;
- ``bpr-max`` (with the score regularisation ``bpreg``) and ``top1-max``: each target against a
  pool of ``n_sample`` items drawn once per batch and shared by all its targets, with probability
  proportional to training count ** ``sample_alpha`` (0: uniform); ``elu_param`` > 0 passes the
  scores through ELU(alpha=elu_param) first, the official final activation for BPR-max.

Where this differs from the official code:

- Training reads left-padded windows of ``max_len + 1`` items of each user's history with a loss
  at every position (column i predicts the item in column i + 1), not session-parallel
  mini-batches that carry the hidden state from one mini-batch to the next; the state starts at
  zero in every window.
- The GRU has no bias terms (as RecBole's), which keeps the state exactly zero through left
  padding (see ``seqrec.nn.gru``); the official GRU has biases.
- The negative pool is the ``n_sample`` sampled items alone: the official code also uses the
  other targets of the mini-batch as negatives (popularity-distributed, like ``sample_alpha=1``).
  A pool item equal to a target is no negative of that target (the official code keeps it).
- ``elu_param`` applies to both sampled losses; the official PyTorch code has it for BPR-max.
- A linear layer projects the GRU output to the embedding size when ``hidden_size`` differs
  from it (RecBole's ``dense``); the official constrained embedding requires equal sizes.
- Cross-entropy is the full softmax, not the official softmax over the sampled pool (so its
  ``logq`` correction has nothing to correct); the one-hot GRU input of ``embedding=0`` is not
  offered; the optimiser is the trainer's AdamW, not the official Adagrad with momentum. The
  weights start as the official ones do (uniform within Glorot bounds, per GRU gate).

``forward(item_seq, item_seq_len)`` returns RecBole's sequence output (B, embedding_size) at the
newest item; seqrec's sequences are left-padded, so that is always the last column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import Sequences
from seqrec.losses import (
    MAX_LOGITS,
    bpr_max,
    full_softmax_ce,
    sample_pool,
    sampling_weights,
    top1_max,
)
from seqrec.models.scoring import ScoreFactors
from seqrec.nn.gru import LeftPaddedGRU, uniform_
from seqrec.nn.transformer import dropout

LOSSES = ("ce", "bpr-max", "top1-max")
Loss = Literal["ce", "bpr-max", "top1-max"]


@dataclass(frozen=True)
class GRU4RecConfig:
    """GRU4Rec hyper-parameters; ``dataclasses.asdict`` gives a JSON-ready dict.

    Sizes default to RecBole's GRU4Rec (embedding 64, hidden 128, one layer, dropout 0.3 on the
    embeddings); ``n_sample``, ``sample_alpha``, ``bpreg`` and ``elu_param`` to the official code.
    """

    n_items: int
    max_len: int = 50
    embedding_size: int = 64
    hidden_size: int = 128
    n_layers: int = 1
    dropout_embed: float = 0.3
    dropout_hidden: float = 0.0
    constrained_embedding: bool = True
    loss: Loss = "ce"
    n_sample: int = 2048
    sample_alpha: float = 0.5
    bpreg: float = 1.0
    elu_param: float = 0.5
    max_logits: int = MAX_LOGITS

    def __post_init__(self) -> None:
        check_recurrent_config(self, "GRU4RecConfig")


def check_recurrent_config(config: Any, name: str) -> None:
    """The checks GRU4Rec and GRU4RecF configs share; a bad value names the field."""
    c = config
    checks = {
        "n_items": c.n_items >= 2,
        "max_len": c.max_len >= 1,
        "embedding_size": c.embedding_size >= 1,
        "hidden_size": c.hidden_size >= 1,
        "n_layers": c.n_layers >= 1,
        "dropout_embed": 0.0 <= c.dropout_embed < 1.0,
        "dropout_hidden": 0.0 <= c.dropout_hidden < 1.0,
        "loss": c.loss in LOSSES,
        "n_sample": c.n_sample >= 1,
        "sample_alpha": c.sample_alpha >= 0.0,
        "bpreg": c.bpreg >= 0.0,
        "elu_param": c.elu_param >= 0.0,
    }
    for field_name, ok in checks.items():
        if not ok:
            raise ValueError(f"{name}.{field_name}: invalid value {getattr(c, field_name)!r}")


class OutputSettings(Protocol):
    """The config fields :class:`ItemOutput` reads (GRU4Rec's and GRU4RecF's configs have them)."""

    loss: str
    n_sample: int
    sample_alpha: float
    bpreg: float
    elu_param: float
    max_logits: int


class ItemOutput(nn.Module):
    """GRU4Rec's output layer and losses: item table (n_items + 1, D), item bias, training counts.

    ``counts`` (the negative sampler's popularity) is 1 for every item until
    :meth:`prepare_from_training` sets the training counts, so an unprepared model samples
    uniformly. GRU4RecF shares this layer.
    """

    def __init__(self, n_items: int, dim: int, config: OutputSettings) -> None:
        super().__init__()
        self.n_items, self.settings = n_items, config
        self.items = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.bias = nn.Parameter(torch.zeros(n_items + 1))
        counts = torch.ones(n_items + 1)
        counts[0] = 0.0
        self.register_buffer("counts", counts)
        with torch.no_grad():
            uniform_(self.items.weight, n_items, dim)
            self.items.weight[0].zero_()

    @torch.no_grad()
    def prepare_from_training(self, train: Sequences) -> None:
        counts = np.bincount(train.items, minlength=self.n_items + 1)[: self.n_items + 1]
        self.counts.copy_(torch.from_numpy(counts.astype(np.float32)))
        self.counts[0] = 0.0

    def loss(self, hidden: Tensor, targets: Tensor, generator: torch.Generator | None) -> Tensor:
        """The configured loss of hidden states (N, D) against target items (N,)."""
        c = self.settings
        if len(targets) == 0:
            raise ValueError("the batch has no target: every window needs at least two items")
        table = self.items.weight
        if c.loss == "ce":
            return full_softmax_ce(hidden, table[1:], self.bias[1:], targets - 1, c.max_logits)
        weights = sampling_weights(self.counts, c.sample_alpha)
        pool = sample_pool(weights, c.n_sample, generator).to(targets.device)  # (S,)
        pos = (hidden * table[targets]).sum(-1) + self.bias[targets]  # (N,)
        neg = hidden @ table[pool].T + self.bias[pool]  # (N, S)
        if c.elu_param > 0:
            pos, neg = F.elu(pos, c.elu_param), F.elu(neg, c.elu_param)
        valid = pool[None, :] != targets[:, None]  # (N, S)
        if c.loss == "bpr-max":
            return bpr_max(pos, neg, c.bpreg, valid)
        return top1_max(pos, neg, valid)

    def full(self, hidden: Tensor) -> Tensor:
        """Scores (B, n_items + 1) of every item code; column 0 (padding) is -inf."""
        scores = F.linear(hidden, self.items.weight, self.bias)
        scores[:, 0] = float("-inf")
        return scores

    def candidates(self, hidden: Tensor, items: Tensor) -> Tensor:
        """Scores (B, C) of candidate ``items`` (B, C); padding candidates are -inf."""
        scores = (self.items(items) @ hidden.unsqueeze(-1)).squeeze(-1) + self.bias[items]
        return scores.masked_fill(items == 0, float("-inf"))


def check_left_padded(item_seq: Tensor, item_seq_len: Tensor | None) -> None:
    """RecBole pads on the right and passes lengths; seqrec's sequences are left-padded."""
    if item_seq_len is None:
        return
    real = (item_seq != 0).sum(dim=1)
    newest_last = (item_seq[:, -1] != 0) | (real == 0)
    if not torch.equal(real, item_seq_len.to(real)) or not bool(newest_last.all()):
        raise ValueError(
            "item_seq must be left-padded (newest item in the last column, 0 = padding) and "
            "item_seq_len must count its items"
        )


def training_targets(
    item_seq: Tensor, train_seq_len: int, model: str
) -> tuple[Tensor, Tensor, Tensor]:
    """Inputs (B, L'), their next items (B, L') and the target positions (B, L') bool of training
    windows: column i predicts the item in column i + 1 where both are items.

    Columns that are padding in every row are dropped first (exact under left padding, see
    ``seqrec.nn.gru``): a batch of short histories runs the GRU only as wide as they are.
    """
    if item_seq.shape[1] > train_seq_len:
        raise ValueError(
            f"{model} trains on windows of at most train_seq_len={train_seq_len} columns, "
            f"got {item_seq.shape[1]}"
        )
    first = int((item_seq != 0).any(dim=0).to(torch.uint8).argmax())  # 0 if all padding
    item_seq = item_seq[:, min(first, item_seq.shape[1] - 2) :]  # keep at least 2 columns
    inputs, following = item_seq[:, :-1], item_seq[:, 1:]
    return inputs, following, (inputs != 0) & (following != 0)


class GRU4Rec(nn.Module):
    """Item embedding -> GRU layers -> scores against the item table (RecBole's method names)."""

    name: ClassVar[str] = "gru4rec"

    def __init__(self, config: GRU4RecConfig) -> None:
        super().__init__()
        self.config = config
        self.n_items, self.max_len = config.n_items, config.max_len
        self.train_seq_len = config.max_len + 1
        e, h = config.embedding_size, config.hidden_size
        self.output = ItemOutput(config.n_items, e, config)
        self.input_embedding: nn.Embedding | None = None  # None: the output table (constrained)
        if not config.constrained_embedding:
            self.input_embedding = nn.Embedding(config.n_items + 1, e, padding_idx=0)
            with torch.no_grad():
                uniform_(self.input_embedding.weight, config.n_items, e)
                self.input_embedding.weight[0].zero_()
        self.gru = LeftPaddedGRU(e, h, config.n_layers, config.dropout_hidden)
        self.dense = nn.Linear(h, e) if h != e else nn.Identity()

    @property
    def item_embedding(self) -> nn.Embedding:
        """The input item table (RecBole's name): the output table unless unconstrained."""
        return self.output.items if self.input_embedding is None else self.input_embedding

    def prepare_from_training(self, train: Sequences) -> None:
        """Training counts for the popularity sampler of ``bpr-max`` / ``top1-max``."""
        self.output.prepare_from_training(train)

    def gru_outputs(self, item_seq: Tensor) -> Tensor:
        """Last GRU layer's outputs (B, L, hidden_size), after ``dropout_hidden``."""
        embedded = dropout(self.item_embedding(item_seq), self.config.dropout_embed, self.training)
        outputs = self.gru(embedded, item_seq == 0)  # (B, L, H)
        return dropout(outputs, self.config.dropout_hidden, self.training)

    def encode(self, item_seq: Tensor) -> Tensor:
        """Sequence output (B, L, embedding_size) at every column; column i has seen 0..i."""
        return self.dense(self.gru_outputs(item_seq))

    def forward(self, item_seq: Tensor, item_seq_len: Tensor | None = None) -> Tensor:
        """Sequence output (B, embedding_size) at the newest item of left-padded ``item_seq``."""
        check_left_padded(item_seq, item_seq_len)
        return self.dense(self.gru_outputs(item_seq)[:, -1])

    def calculate_loss(
        self, batch: SequenceBatch, generator: torch.Generator | None = None
    ) -> Tensor:
        """Next-item loss at every position of training windows of ``train_seq_len`` items."""
        inputs, following, positions = training_targets(
            batch.item_seq, self.train_seq_len, "GRU4Rec"
        )
        hidden = self.dense(self.gru_outputs(inputs)[positions])  # (N, E)
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
