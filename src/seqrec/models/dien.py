"""DIEN: Deep Interest Evolution Network (Zhou et al., "Deep Interest Evolution Network for
Click-Through Rate Prediction", AAAI 2019).

A click-through model: the probability that a user with this behaviour sequence clicks this
target item. Items are embedded; a GRU extracts one interest state per behaviour (interest
extractor), trained also by an auxiliary loss that asks state ``t`` to tell the item clicked at
``t + 1`` from a sampled non-clicked one; the target item's attention over the interest states
drives an AUGRU (or AGRU, AIGRU, or attention pooling of a GRU: ``gru_type``) whose last state is
the interest evolved towards the target (interest evolving layer). An MLP over
``[evolved interest, target item, history sum, history sum * target, user]`` gives the click
logit. Loss: BCE on the clicks plus ``alpha`` times the auxiliary loss. The building blocks are
in ``seqrec.nn.rnn`` and ``seqrec.nn.interest`` under RecBole's names.

Training samples come from training windows (see ``seqrec.models.ctr_samples``): the newest
item of a window is the click, ``n_negatives`` sampled items are non-clicks, drawn anew in every
batch from the training generator; on data with click labels (``data.click_labels``) the newest
item is an impression with its own label instead, and nothing is sampled but the auxiliary
loss's non-clicks.

Differences from RecBole 1.2.1's DIEN, on purpose: sequences are left-padded; the auxiliary loss
reads real positions only and is computed once per history, not once per sample; negatives are
redrawn every batch (RecBole draws the auxiliary negatives once per data set); the attention is
not divided by ``sqrt(D)``; ``Dice`` is the paper's (see ``seqrec.nn.mlp``); the MLP has no
BatchNorm layers of its own; the GRU cells are initialised as ``nn.GRU`` (RecBole: standard
normal); by default the final MLP also reads the sum of the history's item vectors and its
product with the target, as in the authors' code (``history_sum``; RecBole leaves them out).
Item side features (``item_features``, e.g. ml-100k's genres: the paper's item category) are
embedded by ``seqrec.nn.features.FeatureEmbedding`` and concatenated to the item id embedding,
as the paper does, wherever an item is represented (history, auxiliary non-clicks, targets), so
the interest states are ``2 * embedding_size`` wide with features. User side features
(``user_features``, e.g. ml-100k's age, gender and occupation: the paper's user profile) are
embedded the same way and join the final MLP's input beside the optional user-id embedding.
``recommend`` and the service score a history without a user, so there the user part is a zero
vector.

``predict`` returns click probabilities (RecBole's convention); ranking uses them, so the
sampled ranking protocols and ``full`` rank DIEN like any other model (float32 probabilities
tie at 1.0 only for logits above about 17). ``full_sort_predict`` runs the interest evolution
once per (user, item), in chunks of items.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec.batch import SequenceBatch
from seqrec.config import at_least
from seqrec.data.corpus import Sequences
from seqrec.models.ctr_samples import SAMPLERS, CTRSamples, sampling_weights, training_counts
from seqrec.nn.features import (
    concat_item_features,
    item_feature_layer,
    user_feature_layer,
    user_vector,
)
from seqrec.nn.interest import InterestEvolvingLayer, InterestExtractorNetwork
from seqrec.nn.mlp import ACTIVATIONS, MLP, xavier_init
from seqrec.nn.rnn import GRU_TYPES

Activation = Literal["sigmoid", "relu", "prelu", "dice", "none"]
# (user, candidate, history position) triples per prediction pass; smaller passes keep the
# evolution's (users, candidates, H) states in cache (2^19 took 1.5x longer for DIEN's full ranking)
MAX_SCORED_STEPS = 1 << 17


def check_ctr_config(config: object, name: str) -> None:
    """Shared checks of DIN and DIEN configs; hidden sizes must be lists of positive ints."""
    object.__setattr__(config, "item_features", tuple(config.item_features))
    object.__setattr__(config, "item_feature_spec", tuple(map(dict, config.item_feature_spec)))
    object.__setattr__(config, "user_features", tuple(config.user_features))
    object.__setattr__(config, "user_feature_spec", tuple(map(dict, config.user_feature_spec)))
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name.endswith("hidden_size"):
            value = tuple(value)
            object.__setattr__(config, f.name, value)  # lists from JSON/YAML -> tuples
            if not all(isinstance(v, int) and v > 0 for v in value):
                raise ValueError(f"{name}.{f.name}: expected positive ints, got {value!r}")
    checks = {
        "n_items": config.n_items >= 2,
        "max_len": config.max_len >= 1,
        "embedding_size": config.embedding_size >= 1,
        "n_users": config.n_users >= 0,
        "user_features": not config.user_features or config.n_users > 0,
        "n_negatives": 1 <= config.n_negatives < config.n_items,
        "sampler": config.sampler in SAMPLERS,
        "dropout": 0.0 <= config.dropout < 1.0,
        "mlp_activation": config.mlp_activation in ACTIVATIONS,
        "attention_activation": config.attention_activation in ACTIVATIONS,
    }
    for key, ok in checks.items():
        if not ok:
            raise ValueError(f"{name}.{key}: invalid value {getattr(config, key)!r}")


@dataclass(frozen=True)
class DIENConfig:
    """DIEN hyper-parameters; ``dataclasses.asdict`` gives a JSON-ready dict.

    The interest states have ``embedding_size`` units (the attention compares them with item
    embeddings). ``user_embedding`` adds a user-id embedding (codes 0..n_users-1, ``n_users``
    filled from the data) to the final MLP's input; a batch without users (a new session in
    serving) then gets a zero vector. ``alpha`` weighs the auxiliary
    loss (0 switches it off). ``history_sum`` also feeds the sum of the history's item vectors
    and its product with the target item into the final MLP, as the DIEN authors' code does
    (RecBole's DIEN does not: ``False``). ``item_features`` names item fields whose vectors
    (``embedding_size`` wide) are concatenated to the item id embeddings; ``user_features``
    names user fields whose vector (``embedding_size`` wide) joins the final MLP's input (it
    needs ``n_users``); the two ``*_feature_spec`` fields are filled from the data.
    """

    n_items: int
    max_len: int = 50
    embedding_size: int = 32
    user_embedding: bool = False
    n_users: int = field(default=0, metadata=at_least(0))
    gru_type: Literal["GRU", "AIGRU", "AGRU", "AUGRU"] = "AUGRU"
    att_hidden_size: tuple[int, ...] = (80, 40)
    attention_activation: Activation = "sigmoid"
    softmax_stag: bool = True
    aux_hidden_size: tuple[int, ...] = (100, 50)
    aux_activation: Activation = "sigmoid"
    mlp_hidden_size: tuple[int, ...] = (200, 80)
    mlp_activation: Activation = "dice"
    dropout: float = 0.0
    alpha: float = 1.0
    history_sum: bool = True
    n_negatives: int = 1
    sampler: Literal["uniform", "popular"] = "uniform"
    item_features: tuple[str, ...] = ()
    item_feature_spec: tuple[dict[str, Any], ...] = ()
    user_features: tuple[str, ...] = ()
    user_feature_spec: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        check_ctr_config(self, "DIENConfig")
        if self.gru_type not in GRU_TYPES:
            raise ValueError(f"DIENConfig.gru_type: invalid value {self.gru_type!r}")
        if self.aux_activation not in ACTIVATIONS or not self.alpha >= 0:
            raise ValueError(f"DIENConfig: invalid aux_activation or alpha in {self!r}")


class DIEN(nn.Module):
    """Click logits of (history, target item) pairs; see the module docstring."""

    name: ClassVar[str] = "dien"
    predicts_probabilities: ClassVar[bool] = True
    # each window's last item is its only sample: windows also end before train_seq_len items
    # (with training.window_step 1, every prefix of every training sequence is a sample)
    train_on_prefixes: ClassVar[bool] = True
    # on data with click labels (data.click_labels) each window's newest item is a labelled
    # impression, and no non-click is sampled
    trains_on_click_labels: ClassVar[bool] = True

    def __init__(self, config: DIENConfig) -> None:
        super().__init__()
        self.config = config
        self.n_items, self.max_len = config.n_items, config.max_len
        self.train_seq_len = config.max_len + 1  # history + the clicked item
        size = config.embedding_size
        self.item_embedding = nn.Embedding(config.n_items + 1, size, padding_idx=0)
        self.item_features = item_feature_layer(
            config.item_feature_spec, config.item_features, config.n_items, size,
            "DIENConfig.item_features",
        )  # fmt: skip
        with_users = config.user_embedding and config.n_users > 0
        self.user_embedding = nn.Embedding(config.n_users, size) if with_users else None
        self.user_features = user_feature_layer(
            config.user_feature_spec, config.user_features, config.n_users, size,
            "DIENConfig.user_features",
        )  # fmt: skip
        user_size = size * (int(with_users) + int(self.user_features is not None))
        item_size = size * (1 if self.item_features is None else 2)  # id | features
        self.interest_extractor = InterestExtractorNetwork(
            item_size, item_size, config.aux_hidden_size, config.aux_activation
        )
        self.interest_evolution = InterestEvolvingLayer(
            item_size, config.att_hidden_size, config.attention_activation, config.softmax_stag,
            config.gru_type,
        )  # fmt: skip
        width = (4 if config.history_sum else 2) * item_size + user_size
        self.dnn = MLP(width, config.mlp_hidden_size, 1, config.mlp_activation, config.dropout)
        # training interaction counts for the popularity sampler (prepare_from_training)
        self.register_buffer("item_counts", torch.zeros(config.n_items + 1))
        xavier_init(self)  # embeddings and Linear layers; the GRU cells keep their own init

    # ------------------------------------------------------------ representations

    def item_representation(self, items: Tensor) -> Tensor:
        """Item codes (...) -> vectors (..., D): the id embedding, and with ``item_features``
        the feature vector concatenated; code 0 (padding) gives 0."""
        return concat_item_features(self.item_embedding(items), self.item_features, items)

    def user_representation(self, users: Tensor | None, batch_size: int) -> Tensor | None:
        """User vectors (B, U): the user-id embedding and the user feature vector (zeros without
        user codes); None with neither."""
        return user_vector(
            self.user_embedding, self.user_features, users, batch_size, self.config.n_users
        )

    # ------------------------------------------------------------ the network

    def interests(
        self, item_seq: Tensor, item_seq_len: Tensor, neg_item_seq: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Interest states (B, L, D) of a left-padded history, the sum of its item vectors
        (B, D) and, given the non-clicked items aligned with it, the auxiliary loss."""
        keys = self.item_representation(item_seq)  # (B, L, D), 0 at padding
        neg_keys = None if neg_item_seq is None else self.item_representation(neg_item_seq)
        interest, aux = self.interest_extractor(keys, item_seq_len, neg_keys)
        return interest, keys.sum(1), aux

    def click_logits(
        self,
        interest: Tensor,
        history_sum: Tensor,
        item_seq_len: Tensor,
        user: Tensor | None,
        items: Tensor,
    ) -> Tensor:
        """Click logits (B, C) of candidate ``items`` (B, C) given the interest states."""
        target = self.item_representation(items)  # (B, C, D)
        evolved = self.interest_evolution(target, interest, item_seq_len)  # (B, C, D)
        parts = [evolved, target]
        if self.config.history_sum:
            summed = history_sum.unsqueeze(1).expand_as(target)  # (B, C, D)
            parts += [summed, summed * target]
        if user is not None:
            parts.append(user.unsqueeze(1).expand(-1, items.shape[1], -1))  # (B, C, U)
        return self.dnn(torch.cat(parts, -1)).squeeze(-1)

    def forward(
        self,
        user: Tensor | None,
        item_seq: Tensor,
        neg_item_seq: Tensor | None,
        item_seq_len: Tensor,
        next_items: Tensor,
    ) -> tuple[Tensor, Tensor | None]:
        """Click logits (B, C) of ``next_items`` (B, C) (or (B,) -> (B,)) after the left-padded
        ``item_seq`` (B, L), and the auxiliary loss if ``neg_item_seq`` (B, L) is given."""
        single = next_items.dim() == 1
        items = next_items.unsqueeze(1) if single else next_items
        interest, summed, aux = self.interests(item_seq, item_seq_len, neg_item_seq)
        user_vec = self.user_representation(user, item_seq.shape[0])
        logits = self.click_logits(interest, summed, item_seq_len, user_vec, items)
        return (logits[:, 0] if single else logits), aux

    # ------------------------------------------------------------ training

    def prepare_from_training(self, train: Sequences) -> None:
        """Store the training interaction counts (the popularity sampler draws by them)."""
        self.item_counts.copy_(training_counts(train, self.n_items))

    def calculate_loss(
        self, batch: SequenceBatch, generator: torch.Generator | None = None
    ) -> Tensor:
        """BCE over the clicked and sampled non-clicked targets + ``alpha`` x auxiliary loss."""
        width = batch.item_seq.shape[1]
        limit = self.max_len if batch.label is not None else self.train_seq_len
        if width > limit:
            raise ValueError(f"DIEN trains on at most train_seq_len={limit} columns, got {width}")
        samples, rows = CTRSamples.from_batch(
            batch, self.n_items, self.config.n_negatives, generator,
            sampling_weights(self.config.sampler, self.item_counts),
            with_noclick=self.config.alpha > 0,
        )  # fmt: skip
        users = None if batch.users is None else batch.users[rows]
        logits, aux = self(
            users, samples.history, samples.noclick, samples.lengths, samples.candidates
        )
        loss = F.binary_cross_entropy_with_logits(logits, samples.labels)
        return loss if aux is None else loss + self.config.alpha * aux

    # ------------------------------------------------------------ prediction

    def _history(self, batch: SequenceBatch) -> tuple[Tensor, Tensor]:
        item_seq = batch.item_seq[:, -self.max_len :]  # the newest max_len items
        return item_seq, (item_seq > 0).sum(1)

    def predict(self, batch: SequenceBatch, items: Tensor) -> Tensor:
        """Click probabilities (B, C) of candidate ``items`` (B, C); padding (0) gets -inf.

        Candidates are scored in chunks so that at most ``MAX_SCORED_STEPS`` (user, candidate,
        history position) triples are in memory at once.
        """
        item_seq, lengths = self._history(batch)
        interest, summed, _ = self.interests(item_seq, lengths)
        user = self.user_representation(batch.users, item_seq.shape[0])
        step = max(1, MAX_SCORED_STEPS // max(item_seq.numel(), 1))
        logits = torch.cat(
            [
                self.click_logits(interest, summed, lengths, user, items[:, start : start + step])
                for start in range(0, items.shape[1], step)
            ],
            1,
        )  # (B, C)
        return torch.sigmoid(logits).masked_fill(items == 0, -math.inf)

    def full_sort_predict(self, batch: SequenceBatch) -> Tensor:
        """Click probabilities (B, n_items + 1) of every item; column 0 (padding) is -inf."""
        codes = torch.arange(self.n_items + 1, device=batch.item_seq.device)
        return self.predict(batch, codes.expand(len(batch), -1))
