"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

A causal transformer over the item sequence; every position predicts the next item, and the
score of an item is the dot product of the hidden state with that item's embedding (the table is
shared with the input).

Two encoders (``SASRecConfig.architecture``):

- ``original``: Kang & McAuley's code (kang205/SASRec, ``model.py`` and ``modules.py``): item
  embeddings scaled by sqrt(d) plus learned positions, dropout, padding zeroed; each block
  normalises the *queries* only (keys and values read the un-normalised sequence), adds the
  attention output to the normalised queries (there is no output projection), then runs a ReLU
  point-wise feed-forward layer of width d on the normalised result with its own residual, and
  zeroes padding again; a final LayerNorm (eps 1e-8). Dropout sits where the original has it:
  after the embeddings, on the attention weights and after both feed-forward layers. Weights are
  Glorot-uniform initialised, TensorFlow's default there.
- ``recbole``: RecBole's variant, the post-LN block shared with BERT4Rec
  (``seqrec.nn.transformer``): GELU feed-forward of width 4d (RecBole's 256 at d = 64), an
  output projection after attention, truncated-normal initialisation.

Both read positions aligned to the newest item, as the original does with its left-padded,
fixed-width input (column ``j`` of ``max_len`` has position ``j``).

Losses (``SASRecConfig.loss``):

- ``bce``: binary cross-entropy with ``n_negatives`` negatives per position drawn uniformly
  from the items outside the user's training history, as the original's sampler does (it uses
  one). The training batches carry each user's items (``SequenceBatch.seen``); a batch without
  them excludes the items of its own window;
- ``ce``: softmax over the whole catalogue, "SASRec+" (Klenitskiy & Vasilev, RecSys 2023),
  chunked over targets when catalogue x targets exceeds ``max_logits``;
- ``sampled``: a softmax over ``n_negatives`` negatives shared by the batch, drawn by
  ``negative_sampler`` (``uniform``, ``popular`` with ``count ** sample_alpha``, or
  ``in_batch``: the batch's own targets), with the log-Q correction
  (``seqrec.nn.sampled_softmax``);
- ``gbce``: gSASRec's generalised BCE (Petrov & Macdonald, RecSys 2023) with ``n_negatives``
  uniform negatives (any item but the target; the reference code may also draw the target) and
  calibration ``gbce_t``, normalised over the ``1 + k`` logits of a target as its reference code.

Training windows are ``max_len + 1`` items (``train_seq_len``): the encoder reads the first
``max_len`` and each column's target is the item in the next column. To predict, the encoder reads
the newest ``max_len`` items and the last column scores the next item.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import Sequences
from seqrec.losses import (
    MAX_LOGITS,
    full_softmax_ce,
    gbce,
    gbce_beta,
    sampled_bce,
    uniform_negatives,
    unseen_negatives,
)
from seqrec.models.scoring import ScoreFactors
from seqrec.nn.features import item_feature_layer
from seqrec.nn.sampled_softmax import SAMPLERS, SampledSoftmax
from seqrec.nn.transformer import (
    ACTIVATIONS,
    Attention,
    TransformerEncoder,
    attention_mask,
    dropout,
    target_order,
)
from seqrec.objectives import MaskingObjective, build_objective, objectives_for

LOSSES = ("bce", "ce", "gbce", "sampled")
ARCHITECTURES = ("original", "recbole")
# per architecture: feed-forward width (x hidden size), activation, LayerNorm epsilon
_DEFAULTS = {"original": (1, "relu", 1e-8), "recbole": (4, "gelu", 1e-12)}


@dataclass(frozen=True)
class SASRecConfig:
    """SASRec hyper-parameters; ``dataclasses.asdict`` gives a JSON-ready dict.

    ``architecture`` picks the encoder (see the module docstring). ``inner_size``,
    ``activation`` and ``layer_norm_eps`` left at None take the architecture's own values (width
    d, ReLU, 1e-8 for the original; 4d, GELU, 1e-12 for RecBole's). ``init_std`` applies to the
    ``recbole`` encoder (the original is Glorot-initialised). ``n_negatives`` is used by ``bce``
    and ``gbce`` (gSASRec used 256 with ``gbce_t`` 0.75). ``objective`` is ``"clm"``;
    ``objective_params`` may set ``train_on_last_item_seq_only``.
    ``item_features`` names item fields whose vectors (``seqrec.nn.features``) are added to the
    item embeddings; ``item_feature_spec`` is filled from the data.
    """

    n_items: int
    max_len: int = 50
    hidden_size: int = 64
    n_layers: int = 2
    n_heads: int = 2
    architecture: Literal["original", "recbole"] = "original"
    inner_size: int | None = None
    hidden_dropout: float = 0.2
    attn_dropout: float = 0.2
    activation: Literal["gelu", "relu"] | None = None
    layer_norm_eps: float | None = None
    init_std: float = 0.02
    loss: Literal["bce", "ce", "gbce", "sampled"] = "bce"
    n_negatives: int = 1
    negative_sampler: Literal["uniform", "popular", "in_batch"] = "uniform"
    sample_alpha: float = 1.0
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
            "architecture": self.architecture in ARCHITECTURES,
            "inner_size": self.inner_size is None or self.inner_size >= 1,
            "hidden_dropout": 0.0 <= self.hidden_dropout < 1.0,
            "attn_dropout": 0.0 <= self.attn_dropout < 1.0,
            "activation": self.activation is None or self.activation in ACTIVATIONS,
            "layer_norm_eps": self.layer_norm_eps is None or self.layer_norm_eps > 0,
            "init_std": self.init_std > 0,
            "loss": self.loss in LOSSES,
            "n_negatives": 1 <= self.n_negatives < self.n_items or self.loss == "sampled",
            "negative_sampler": self.negative_sampler in SAMPLERS,
            "sample_alpha": self.sample_alpha >= 0.0,
            "gbce_t": 0.0 <= self.gbce_t <= 1.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"SASRecConfig.{name}: invalid value {getattr(self, name)!r}")

    def resolved(self) -> tuple[int, str, float]:
        """(feed-forward width, activation, LayerNorm epsilon) after the architecture defaults."""
        width, activation, eps = _DEFAULTS[self.architecture]
        return (
            self.inner_size or width * self.hidden_size,
            self.activation or activation,
            self.layer_norm_eps or eps,
        )


class OriginalBlock(nn.Module):
    """One block of Kang & McAuley's SASRec: normalised queries, un-normalised keys and values.

    ``x = LN1(s) + Attention(q=LN1(s), kv=s)`` (no output projection), then
    ``s' = (LN2(x) + FFN(LN2(x))) * real`` with a point-wise feed-forward layer and dropout after
    both of its layers, padding zeroed. ``real`` (B, L, 1) is 1 at items, 0 at padding.
    """

    def __init__(
        self,
        hidden_size: int,
        n_heads: int,
        inner_size: int,
        hidden_dropout: float,
        attn_dropout: float,
        activation: str,
        layer_norm_eps: float,
    ) -> None:
        super().__init__()
        if hidden_size % n_heads:
            raise ValueError(f"hidden_size {hidden_size} is not a multiple of n_heads {n_heads}")
        self.n_heads, self.activation = n_heads, activation
        self.hidden_dropout, self.attn_dropout = hidden_dropout, attn_dropout
        self.query_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key_value = nn.Linear(hidden_size, 2 * hidden_size)
        self.ffn_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.ffn_in = nn.Linear(hidden_size, inner_size)
        self.ffn_out = nn.Linear(inner_size, hidden_size)

    def _heads(self, x: Tensor) -> Tensor:
        batch, width, hidden = x.shape
        return x.view(batch, width, self.n_heads, hidden // self.n_heads).transpose(1, 2)

    def _attend_and_feed(
        self, s: Tensor, normed: Tensor, mask: Tensor | None, is_causal: bool
    ) -> Tensor:
        """Queries from ``normed`` (B, T, D), keys and values from ``s`` (B, L, D): (B, T, D)."""
        k, v = self.key_value(s).chunk(2, dim=-1)  # 2 x (B, L, D)
        att = F.scaled_dot_product_attention(
            self._heads(self.query(normed)),
            self._heads(k),
            self._heads(v),
            attn_mask=mask,
            dropout_p=self.attn_dropout if self.training else 0.0,
            is_causal=is_causal,
        )  # (B, H, T, Dh)
        x = normed + att.transpose(1, 2).flatten(2)  # (B, T, D)
        y = self.ffn_norm(x)
        inner = self.ffn_in(y)
        inner = F.relu(inner) if self.activation == "relu" else F.gelu(inner)
        inner = dropout(inner, self.hidden_dropout, self.training)
        return y + dropout(self.ffn_out(inner), self.hidden_dropout, self.training)

    def forward(self, s: Tensor, real: Tensor, mask: Tensor | None, is_causal: bool) -> Tensor:
        return self._attend_and_feed(s, self.query_norm(s), mask, is_causal) * real

    def at_positions(
        self, s: Tensor, real: Tensor, mask: Tensor | None, is_causal: bool, positions: Tensor
    ) -> Tensor:
        """This causal block's output (N, D) at the True ``positions`` (B, L) only, row-major.

        Keys and values cover every column; queries and the feed-forward layer run at the
        selected positions alone (prediction reads one column per user).
        """
        width, hidden = s.shape[1], s.shape[2]
        n_queries = int(positions.sum(dim=1).max())
        if 2 * n_queries > width:  # little to save: run the whole block
            return self(s, real, mask, is_causal)[positions]
        order, valid = target_order(positions, n_queries)  # (B, T)
        s_q = s.gather(1, order.unsqueeze(-1).expand(-1, -1, hidden))  # (B, T, D)
        columns = torch.arange(width, device=s.device)
        keys = (columns <= order.unsqueeze(-1)) & (real.squeeze(-1) > 0).unsqueeze(1)  # (B,T,L)
        keys = keys | (columns == order.unsqueeze(-1))  # a query always sees its own column
        out = self._attend_and_feed(s, self.query_norm(s_q), keys.unsqueeze(1), False)
        return out[valid]  # (N, D)


class OriginalEncoder(nn.Module):
    """Kang & McAuley's SASRec encoder; fits the objectives' ``SequenceEncoder`` protocol.

    :meth:`embed` gives item embeddings scaled by sqrt(d) (plus the item's feature vector when
    there are ``features``); the output layer scores with the unscaled table
    ``item_embedding.weight``, as the original does.
    """

    def __init__(self, config: SASRecConfig, features: nn.Module | None = None) -> None:
        super().__init__()
        inner, activation, eps = config.resolved()
        hidden = config.hidden_size
        self.max_len, self.hidden_dropout = config.max_len, config.hidden_dropout
        self.scale = math.sqrt(hidden)
        self.item_embedding = nn.Embedding(config.n_items + 1, hidden, padding_idx=0)
        self.features = features  # ids (B, L) -> (B, L, D) added to the item embeddings
        self.position_embedding = nn.Embedding(config.max_len, hidden)
        block = (hidden, config.n_heads, inner, config.hidden_dropout, config.attn_dropout)
        self.blocks = nn.ModuleList(
            OriginalBlock(*block, activation, eps) for _ in range(config.n_layers)
        )
        self.norm = nn.LayerNorm(hidden, eps=eps)
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.xavier_uniform_(module.weight)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def embed(self, item_ids: Tensor) -> Tensor:
        """Item embeddings (B, L, D) of ``item_ids`` (B, L), scaled by sqrt(d)."""
        embedded = self.item_embedding(item_ids) * self.scale
        return embedded if self.features is None else embedded + self.features(item_ids)

    def forward(
        self,
        inputs: Tensor,
        padding: Tensor,
        attention: Attention,
        query_positions: Tensor | None = None,
    ) -> Tensor:
        """Hidden states (B, L, D), or (N, D) at ``query_positions`` (B, L) bool, row-major."""
        width = inputs.shape[1]
        if width > self.max_len:
            raise ValueError(f"sequence width {width} exceeds the encoder's max_len {self.max_len}")
        if attention != "causal":
            raise ValueError(f"the original SASRec encoder is causal, got {attention!r}")
        real = (~padding).unsqueeze(-1).to(inputs.dtype)  # (B, L, 1)
        positions = self.position_embedding.weight[self.max_len - width :]  # (L, D), newest last
        s = dropout(inputs + positions, self.hidden_dropout, self.training) * real
        mask, is_causal = attention_mask(padding, attention)
        for block in self.blocks[:-1]:
            s = block(s, real, mask, is_causal)
        if query_positions is None:
            return self.norm(self.blocks[-1](s, real, mask, is_causal))
        return self.norm(self.blocks[-1].at_positions(s, real, mask, is_causal, query_positions))


def _encoder(config: SASRecConfig, features: nn.Module | None) -> nn.Module:
    if config.architecture == "original":
        return OriginalEncoder(config, features)
    inner, activation, eps = config.resolved()
    encoder = TransformerEncoder(
        config.n_items + 1, config.max_len, config.hidden_size, config.n_layers, config.n_heads,
        inner, config.hidden_dropout, config.attn_dropout, activation, eps, features=features,
    )  # fmt: skip
    encoder.reset_parameters(config.init_std)
    return encoder


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
        features = item_feature_layer(
            config.item_feature_spec, config.item_features, config.n_items, config.hidden_size,
            "SASRecConfig.item_features",
        )  # fmt: skip
        self.encoder = _encoder(config, features)  # no mask token: codes 0..n_items only
        self.objective: MaskingObjective = build_objective(
            config.objective,
            n_items=config.n_items,
            hidden_size=config.hidden_size,
            model_name="SASRec",
            supported_attention=self.supported_attention,
            **config.objective_params,
        )
        self.train_seq_len: int = self.objective.train_width(config.max_len)
        self.beta = gbce_beta(
            min(config.n_negatives, config.n_items - 1), config.n_items, config.gbce_t
        )
        self.sampled = None
        if config.loss == "sampled":
            self.sampled = SampledSoftmax(
                config.n_items, config.n_negatives, config.negative_sampler, config.sample_alpha
            )

    def prepare_from_training(self, train: Sequences) -> None:
        """The training counts of the sampled softmax's proposal (nothing for other losses)."""
        if self.sampled is not None:
            self.sampled.prepare_from_training(train)

    @property
    def uses_seen_items(self) -> bool:
        """True when training batches should carry each user's items (``SequenceBatch.seen``)."""
        return self.config.loss == "bce"

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
        if self.config.loss != "bce":
            return self.objective.training_loss(
                self.encoder, self, batch.item_seq, generator, batch.last_item_only
            )
        info = self.objective.compute_masked_targets(
            batch.item_seq, True, generator, batch.last_item_only
        )
        hidden, targets = self.objective.target_states(self.encoder, info)  # (N, D), (N,)
        schema = info.schema[:, : width - 1]  # (B, L): columns the encoder scores
        seen = batch.seen if batch.seen is not None else batch.item_seq.sort(dim=1).values
        k = self.config.n_negatives
        negatives = unseen_negatives(seen, self.n_items, schema.shape[1] * k, generator)
        negatives = negatives.view(*schema.shape, k)[schema]  # (N, k)
        return self.target_loss(hidden, targets, generator, negatives)

    def score_items(self, hidden: Tensor) -> Tensor:
        """Scores (N, n_items + 1) of hidden states (N, D); padding (column 0) scores -inf."""
        scores = F.linear(hidden, self.encoder.item_embedding.weight)
        scores[:, 0] = float("-inf")
        return scores

    def target_loss(
        self,
        hidden: Tensor,
        targets: Tensor,
        generator: torch.Generator | None = None,
        negatives: Tensor | None = None,
    ) -> Tensor:
        """The configured loss of hidden states (N, D) against targets (N,).

        ``negatives`` (N, k) for the sampled losses; drawn uniformly (any item but the target)
        when not given.
        """
        table = self.encoder.item_embedding.weight  # (n_items + 1, D)
        if self.config.loss == "ce":
            return full_softmax_ce(hidden, table[1:], None, targets - 1, self.config.max_logits)
        if self.sampled is not None:
            return self.sampled(hidden, targets, table, None, generator)
        if negatives is None:
            k = self.config.n_negatives
            negatives = uniform_negatives(targets, self.n_items, k, generator)
        positive = (hidden * table[targets]).sum(-1)  # (N,)
        negative = (table[negatives] @ hidden.unsqueeze(-1)).squeeze(-1)  # (N, k)
        if self.config.loss == "gbce":
            return gbce(positive, negative, self.beta)
        return sampled_bce(positive, negative)

    def predict(self, batch: SequenceBatch, items: Tensor) -> Tensor:
        """Scores (B, C) of candidate ``items`` (B, C) as the next item of each history."""
        hidden = self.objective.next_item_states(self.encoder, batch.item_seq)  # (B, D)
        scores = (self.encoder.item_embedding(items) @ hidden.unsqueeze(-1)).squeeze(-1)
        return scores.masked_fill(items == 0, float("-inf"))

    def full_sort_predict(self, batch: SequenceBatch) -> Tensor:
        """Scores (B, n_items + 1) of every item code as the next item; column 0 is -inf."""
        return self.score_items(self.objective.next_item_states(self.encoder, batch.item_seq))

    def score_factors(self, batch: SequenceBatch) -> ScoreFactors:
        """:meth:`full_sort_predict` as (next-item state, item table): scored in item blocks."""
        hidden = self.objective.next_item_states(self.encoder, batch.item_seq)  # (B, D)
        return ScoreFactors(hidden, self.encoder.item_embedding.weight, None)
