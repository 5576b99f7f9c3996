"""BERT4Rec: sequential recommendation with bidirectional encoder representations from transformer.

Sun et al., CIKM 2019 (https://arxiv.org/abs/1904.06690), following the authors' code
(FeiSun/BERT4Rec): item + learned position embeddings, LayerNorm and dropout, post-LN transformer
blocks with a GELU feed-forward layer of 4x the hidden size, trained with the Cloze task (masked
items always shown as [MASK]); the output layer transforms the hidden state (dense, GELU,
LayerNorm) and scores every item by a dot product with the item embedding table plus a bias per
item. Cross-entropy runs over the whole catalogue at the masked positions only: hidden states are
gathered first, then projected.

Training windows are ``max_len`` items, left-padded. To predict, the mask token is appended after
the newest item (:meth:`BERT4Rec.reconstruct_test_data`), so the prediction is read from the last
column, the column that the last-item-masked training samples (``last_item_mask_prob``) train.
The authors' data-level options (sliding windows over long sequences, dupe factor) belong to the
training data, not to the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import Sequences
from seqrec.losses import MAX_LOGITS, full_softmax_ce
from seqrec.models.scoring import ScoreFactors
from seqrec.nn.features import item_feature_layer
from seqrec.nn.sampled_softmax import SAMPLERS, SampledSoftmax
from seqrec.nn.transformer import TransformerEncoder, attention_mask
from seqrec.objectives import MaskingObjective, build_objective, objectives_for

# objective parameters that BERT4RecConfig sets itself, and the config field that sets each
_CONFIG_FIELDS = {
    "mlm_probability": "mask_ratio",
    "plm_probability": "mask_ratio",
    "last_item_mask_prob": "last_item_mask_prob",
    "replacement": "replacement",
    "max_predictions": "max_predictions",
}


@dataclass(frozen=True)
class BERT4RecConfig:
    """BERT4Rec hyper-parameters; ``dataclasses.asdict`` gives a JSON-ready dict.

    ``mask_ratio`` is the share of items masked per window (the paper's rho: 0.2 for ML-1m, 0.6
    for Beauty); ``last_item_mask_prob`` the probability that a window is masked at its newest
    item only (the authors add one such copy per ten masked copies); ``replacement`` ``"mask"``
    (always [MASK], the authors' code) or ``"bert"`` (80/10/10); ``max_predictions`` caps the
    masked items of a window (the authors' ``max_predictions_per_seq``, 30 for Beauty; mlm and
    rtd). ``loss`` ``"ce"`` is the softmax over the whole catalogue; ``"sampled"`` a softmax over
    ``n_negatives`` negatives shared by the batch, drawn by ``negative_sampler`` (``uniform``,
    ``popular`` with ``count ** sample_alpha``, or ``in_batch``: the batch's own targets), with
    the log-Q correction (``seqrec.nn.sampled_softmax``). ``objective`` is ``"mlm"`` (the Cloze
    task), ``"plm"`` or ``"rtd"``; ``mask_ratio`` drives each of them and
    ``objective_params`` holds their other parameters (e.g. ``max_span_length`` for plm,
    ``sample_from_batch`` for rtd). ``inner_size`` None means 4 x ``hidden_size``.
    ``hidden_dropout`` 0.2 is the authors' ML-1m value (0.5 for Beauty). ``item_features`` names
    item fields whose vectors (``seqrec.nn.features``) are added to the item embeddings (a mask
    token has none); ``item_feature_spec`` is filled from the data.
    """

    n_items: int
    max_len: int = 50
    hidden_size: int = 64
    n_layers: int = 2
    n_heads: int = 2
    inner_size: int | None = None
    hidden_dropout: float = 0.2
    attn_dropout: float = 0.2
    layer_norm_eps: float = 1e-12
    init_std: float = 0.02
    mask_ratio: float = 0.2
    last_item_mask_prob: float = 0.1
    replacement: Literal["mask", "bert"] = "mask"
    max_predictions: int | None = None
    loss: Literal["ce", "sampled"] = "ce"
    n_negatives: int = 1024
    negative_sampler: Literal["uniform", "popular", "in_batch"] = "uniform"
    sample_alpha: float = 1.0
    objective: Literal["mlm", "plm", "rtd"] = "mlm"
    objective_params: dict[str, Any] = field(default_factory=dict)
    max_logits: int = MAX_LOGITS
    item_features: tuple[str, ...] = ()
    item_feature_spec: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "item_features", tuple(self.item_features))
        object.__setattr__(self, "item_feature_spec", tuple(map(dict, self.item_feature_spec)))
        checks = {
            "n_items": self.n_items >= 1,
            "max_len": self.max_len >= 2,
            "n_layers": self.n_layers >= 1,
            "hidden_dropout": 0.0 <= self.hidden_dropout < 1.0,
            "attn_dropout": 0.0 <= self.attn_dropout < 1.0,
            "init_std": self.init_std > 0,
            "loss": self.loss in ("ce", "sampled"),
            "n_negatives": self.n_negatives >= 1,
            "negative_sampler": self.negative_sampler in SAMPLERS,
            "sample_alpha": self.sample_alpha >= 0.0,
            "replacement": self.replacement in ("mask", "bert"),
            "mask_ratio": 0.0 < self.mask_ratio < 1.0,
            "last_item_mask_prob": 0.0 <= self.last_item_mask_prob <= 1.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"BERT4RecConfig.{name}: invalid value {getattr(self, name)!r}")
        if self.objective == "plm" and self.replacement != "mask":
            raise ValueError("BERT4RecConfig.replacement must be 'mask' with objective 'plm'")
        for key in self.objective_params:
            if key in _CONFIG_FIELDS:
                raise ValueError(
                    f"BERT4RecConfig.objective_params: set {key!r} through "
                    f"BERT4RecConfig.{_CONFIG_FIELDS[key]}"
                )

    def objective_arguments(self) -> dict[str, Any]:
        """Parameters of ``objective``: those this config sets plus ``objective_params``."""
        own: dict[str, Any] = {"last_item_mask_prob": self.last_item_mask_prob}
        if self.objective == "plm":
            own["plm_probability"] = self.mask_ratio
        else:
            own |= {"mlm_probability": self.mask_ratio, "replacement": self.replacement}
            own["max_predictions"] = self.max_predictions
        return own | self.objective_params


class BERT4Rec(nn.Module):
    """Bidirectional transformer trained with the Cloze task (or another non-causal objective)."""

    name: ClassVar[str] = "bert4rec"
    supported_attention: ClassVar[frozenset[str]] = frozenset({"bidirectional", "permutation"})
    accepted_objectives: ClassVar[tuple[str, ...]] = objectives_for(supported_attention)

    def __init__(self, config: BERT4RecConfig) -> None:
        super().__init__()
        self.config = config
        self.n_items = config.n_items
        self.max_len = config.max_len
        self.mask_token = config.n_items + 1
        hidden = config.hidden_size
        features = item_feature_layer(
            config.item_feature_spec, config.item_features, config.n_items, hidden,
            "BERT4RecConfig.item_features",
        )  # fmt: skip
        self.encoder = TransformerEncoder(
            config.n_items + 2,
            config.max_len,
            hidden,
            config.n_layers,
            config.n_heads,
            config.inner_size or 4 * hidden,
            config.hidden_dropout,
            config.attn_dropout,
            "gelu",
            config.layer_norm_eps,
            features=features,
        )
        self.objective: MaskingObjective = build_objective(
            config.objective,
            n_items=config.n_items,
            hidden_size=hidden,
            model_name="BERT4Rec",
            supported_attention=self.supported_attention,
            **config.objective_arguments(),
        )
        self.head_dense = nn.Linear(hidden, hidden)
        self.head_norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.output_bias = nn.Parameter(torch.zeros(config.n_items + 1))
        self.sampled = None
        if config.loss == "sampled":
            self.sampled = SampledSoftmax(
                config.n_items, config.n_negatives, config.negative_sampler, config.sample_alpha
            )
        self.train_seq_len: int = self.objective.train_width(config.max_len)
        self.encoder.reset_parameters(config.init_std)
        nn.init.trunc_normal_(
            self.head_dense.weight,
            std=config.init_std,
            a=-2 * config.init_std,
            b=2 * config.init_std,
        )
        nn.init.zeros_(self.head_dense.bias)

    def forward(self, item_seq: Tensor) -> Tensor:
        """Hidden states (B, L, D) under bidirectional attention; mask tokens are hidden."""
        embedded = self.encoder.embed(item_seq)  # (B, L, D)
        inputs = self.objective.apply_mask_to_inputs(embedded, item_seq == self.mask_token)
        return self.encoder(inputs, item_seq == 0, "bidirectional")

    def get_attention_mask(self, item_seq: Tensor) -> Tensor | None:
        """Bidirectional attention mask for ``item_seq`` (True = may attend; None = no padding)."""
        return attention_mask(item_seq == 0, "bidirectional")[0]

    def reconstruct_train_data(
        self, item_seq: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Cloze masking: (masked_seq, positions (B, L) bool, targets (B, L), 0 = no target)."""
        info = self.objective.compute_masked_targets(item_seq, training=True, generator=generator)
        return info.input_ids, info.schema, info.targets

    def reconstruct_test_data(self, item_seq: Tensor) -> Tensor:
        """Drop the oldest column (when full) and append the mask token after the newest item."""
        return self.objective.inference_ids(item_seq, self.max_len)

    @staticmethod
    def gather_positions(hidden: Tensor, positions: Tensor) -> Tensor:
        """Hidden states (N, D) at the True ``positions`` (B, L), row by row.

        This replaces RecBole's ``multi_hot_embed`` + batched matmul: one boolean gather, no
        (N, L) one-hot matrix.
        """
        return hidden[positions]

    @staticmethod
    def multi_hot_embed(masked_index: Tensor, max_length: int) -> Tensor:
        """RecBole's one-hot rows (N, max_length) of the flattened ``masked_index`` positions.

        Kept for code ported from RecBole (``multi_hot @ hidden`` gathers masked positions);
        seqrec's own path gathers with :meth:`gather_positions` instead.
        """
        flat = masked_index.reshape(-1)  # (N,)
        multi_hot = torch.zeros(flat.shape[0], max_length, device=flat.device)
        multi_hot[torch.arange(flat.shape[0], device=flat.device), flat] = 1.0
        return multi_hot

    def calculate_loss(
        self, batch: SequenceBatch, generator: torch.Generator | None = None
    ) -> Tensor:
        """Full-catalogue cross-entropy at the masked positions of training windows."""
        width = batch.item_seq.shape[1]
        if width > self.train_seq_len:
            raise ValueError(
                f"BERT4Rec trains on windows of at most train_seq_len="
                f"{self.train_seq_len} columns, got {width}"
            )
        return self.objective.training_loss(
            self.encoder, self, batch.item_seq, generator, batch.last_item_only
        )

    def _transform(self, hidden: Tensor) -> Tensor:
        return self.head_norm(F.gelu(self.head_dense(hidden)))

    def score_items(self, hidden: Tensor) -> Tensor:
        """Scores (N, n_items + 1) of hidden states (N, D); padding (column 0) scores -inf."""
        table = self.encoder.item_embedding.weight[: self.n_items + 1]
        scores = F.linear(self._transform(hidden), table, self.output_bias)
        scores[:, 0] = float("-inf")
        return scores

    def score_candidates(self, hidden: Tensor, items: Tensor) -> Tensor:
        """Scores (N, C) of hidden states (N, D) against the same item codes ``items`` (C,)."""
        table = self.encoder.item_embedding(items)  # (C, D)
        return F.linear(self._transform(hidden), table, self.output_bias[items])

    def prepare_from_training(self, train: Sequences) -> None:
        """The training counts of the sampled softmax's proposal (nothing for ``loss: ce``)."""
        if self.sampled is not None:
            self.sampled.prepare_from_training(train)

    def target_loss(
        self, hidden: Tensor, targets: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Softmax cross-entropy over items 1..n_items, or the sampled softmax's estimate of it
        (whose negatives come from ``generator``)."""
        if self.sampled is not None:
            table = self.encoder.item_embedding.weight[: self.n_items + 1]  # code-indexed
            return self.sampled(
                self._transform(hidden), targets, table, self.output_bias, generator
            )
        table = self.encoder.item_embedding.weight[1 : self.n_items + 1]
        return full_softmax_ce(
            self._transform(hidden),
            table,
            self.output_bias[1:],
            targets - 1,
            self.config.max_logits,
        )

    def predict(self, batch: SequenceBatch, items: Tensor) -> Tensor:
        """Scores (B, C) of candidate ``items`` (B, C) as the next item of each history."""
        hidden = self._transform(self.objective.next_item_states(self.encoder, batch.item_seq))
        candidates = self.encoder.item_embedding(items)  # (B, C, D)
        scores = (candidates @ hidden.unsqueeze(-1)).squeeze(-1) + self.output_bias[items]
        return scores.masked_fill(items == 0, float("-inf"))

    def full_sort_predict(self, batch: SequenceBatch) -> Tensor:
        """Scores (B, n_items + 1) of every item code as the next item; column 0 is -inf."""
        return self.score_items(self.objective.next_item_states(self.encoder, batch.item_seq))

    def score_factors(self, batch: SequenceBatch) -> ScoreFactors:
        """:meth:`full_sort_predict` as (transformed state, item table, bias): scored in blocks."""
        hidden = self._transform(self.objective.next_item_states(self.encoder, batch.item_seq))
        table = self.encoder.item_embedding.weight[: self.n_items + 1]  # no mask token
        return ScoreFactors(hidden, table, self.output_bias)
