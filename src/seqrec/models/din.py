"""DIN: Deep Interest Network (Zhou et al., "Deep Interest Network for Click-Through Rate
Prediction", KDD 2018), DIEN's simpler sibling.

The target item's attention over the embedded behaviour sequence pools the history into one
interest vector (no recurrence, no evolution); an MLP over ``[interest, target, interest *
target, user]`` gives the click logit, trained with BCE on clicks and sampled non-clicks (the
samples of ``seqrec.models.ctr_samples``), or on the data's own labelled impressions when it has
click labels (``data.click_labels``).

The attention unit is ``seqrec.nn.interest.SequenceAttLayer``. As in the paper and RecBole,
its weights are not normalised by a softmax by default (``softmax_stag=False``: the intensity of
interest is kept); the authors' code normalises them, and divides the scores by ``sqrt(D)``,
which RecBole also does and this model does not. The authors' code batch-normalises and projects
the pooled interest before its MLP and adds an item bias; this model, like RecBole, does not.

Item side features (``item_features``) are concatenated to the item id embedding, as in the
paper (its goods' category and shop ids), for the history and the targets alike; user side
features (``user_features``, the paper's user profile) join the MLP's input beside the optional
user-id embedding, as in DIEN.

``predict`` returns click probabilities; ranking uses them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec.batch import SequenceBatch
from seqrec.config import at_least
from seqrec.data.corpus import Sequences
from seqrec.models.ctr_samples import CTRSamples, sampling_weights, training_counts
from seqrec.models.dien import MAX_SCORED_STEPS, Activation, check_ctr_config
from seqrec.nn.features import (
    concat_item_features,
    item_feature_layer,
    user_feature_layer,
    user_vector,
)
from seqrec.nn.interest import SequenceAttLayer
from seqrec.nn.mlp import MLP, xavier_init
from seqrec.nn.rnn import real_mask


@dataclass(frozen=True)
class DINConfig:
    """DIN hyper-parameters; ``user_embedding``, ``item_features`` and ``user_features`` as in
    ``DIENConfig``."""

    n_items: int
    max_len: int = 50
    embedding_size: int = 32
    user_embedding: bool = False
    n_users: int = field(default=0, metadata=at_least(0))
    att_hidden_size: tuple[int, ...] = (80, 40)
    attention_activation: Activation = "sigmoid"
    softmax_stag: bool = False
    mlp_hidden_size: tuple[int, ...] = (200, 80)
    mlp_activation: Activation = "dice"
    dropout: float = 0.0
    n_negatives: int = 1
    sampler: Literal["uniform", "popular"] = "uniform"
    item_features: tuple[str, ...] = ()
    item_feature_spec: tuple[dict[str, Any], ...] = ()
    user_features: tuple[str, ...] = ()
    user_feature_spec: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        check_ctr_config(self, "DINConfig")


class DIN(nn.Module):
    """Click logits of (history, target item) pairs; see the module docstring."""

    name: ClassVar[str] = "din"
    predicts_probabilities: ClassVar[bool] = True
    # each window's last item is its only sample: windows also end before train_seq_len items
    # (with training.window_step 1, every prefix of every training sequence is a sample)
    train_on_prefixes: ClassVar[bool] = True
    # on data with click labels (data.click_labels) each window's newest item is a labelled
    # impression, and no non-click is sampled
    trains_on_click_labels: ClassVar[bool] = True

    def __init__(self, config: DINConfig) -> None:
        super().__init__()
        self.config = config
        self.n_items, self.max_len = config.n_items, config.max_len
        self.train_seq_len = config.max_len + 1  # history + the clicked item
        size = config.embedding_size
        self.item_embedding = nn.Embedding(config.n_items + 1, size, padding_idx=0)
        self.item_features = item_feature_layer(
            config.item_feature_spec, config.item_features, config.n_items, size,
            "DINConfig.item_features",
        )  # fmt: skip
        item_size = size * (1 if self.item_features is None else 2)  # id | features
        with_users = config.user_embedding and config.n_users > 0
        self.user_embedding = nn.Embedding(config.n_users, size) if with_users else None
        self.user_features = user_feature_layer(
            config.user_feature_spec, config.user_features, config.n_users, size,
            "DINConfig.user_features",
        )  # fmt: skip
        user_size = size * (int(with_users) + int(self.user_features is not None))
        self.attention = SequenceAttLayer(
            item_size, config.att_hidden_size, config.attention_activation, config.softmax_stag
        )
        width = 3 * item_size + user_size
        self.dnn = MLP(width, config.mlp_hidden_size, 1, config.mlp_activation, config.dropout)
        self.register_buffer("item_counts", torch.zeros(config.n_items + 1))
        xavier_init(self)

    def item_representation(self, items: Tensor) -> Tensor:
        """Item codes (...) -> vectors (..., D): the id embedding, and the feature vector
        concatenated with ``item_features``; code 0 (padding) gives 0."""
        return concat_item_features(self.item_embedding(items), self.item_features, items)

    def user_representation(self, users: Tensor | None, batch_size: int) -> Tensor | None:
        """User vectors (B, U): the user-id embedding and the user feature vector (zeros without
        user codes); None with neither."""
        return user_vector(
            self.user_embedding, self.user_features, users, batch_size, self.config.n_users
        )

    def click_logits(
        self, keys: Tensor, item_seq_len: Tensor, user: Tensor | None, items: Tensor
    ) -> Tensor:
        """Click logits (B, C) of ``items`` (B, C) given the history embeddings (B, L, D)."""
        target = self.item_representation(items)  # (B, C, D)
        mask = real_mask(item_seq_len, keys.shape[1])  # (B, L)
        interest = self.attention(target, keys, mask) @ keys  # (B, C, D)
        parts = [interest, target, interest * target]
        if user is not None:
            parts.append(user.unsqueeze(1).expand(-1, items.shape[1], -1))  # (B, C, U)
        return self.dnn(torch.cat(parts, -1)).squeeze(-1)

    def forward(
        self, user: Tensor | None, item_seq: Tensor, item_seq_len: Tensor, next_items: Tensor
    ) -> Tensor:
        """Click logits (B, C) of ``next_items`` (B, C) (or (B,) -> (B,)) after ``item_seq``."""
        single = next_items.dim() == 1
        items = next_items.unsqueeze(1) if single else next_items
        user_vec = self.user_representation(user, item_seq.shape[0])
        logits = self.click_logits(
            self.item_representation(item_seq), item_seq_len, user_vec, items
        )
        return logits[:, 0] if single else logits

    def prepare_from_training(self, train: Sequences) -> None:
        """Store the training interaction counts (the popularity sampler draws by them)."""
        self.item_counts.copy_(training_counts(train, self.n_items))

    def calculate_loss(
        self, batch: SequenceBatch, generator: torch.Generator | None = None
    ) -> Tensor:
        """BCE over the clicked and the sampled non-clicked targets of each window, or over
        the labelled impressions of a labelled batch."""
        width = batch.item_seq.shape[1]
        limit = self.max_len if batch.label is not None else self.train_seq_len
        if width > limit:
            raise ValueError(f"DIN trains on at most train_seq_len={limit} columns, got {width}")
        weights = sampling_weights(self.config.sampler, self.item_counts)
        samples, rows = CTRSamples.from_batch(
            batch, self.n_items, self.config.n_negatives, generator, weights, with_noclick=False
        )
        users = None if batch.users is None else batch.users[rows]
        logits = self(users, samples.history, samples.lengths, samples.candidates)
        return F.binary_cross_entropy_with_logits(logits, samples.labels)

    def predict(self, batch: SequenceBatch, items: Tensor) -> Tensor:
        """Click probabilities (B, C) of candidate ``items`` (B, C); padding (0) gets -inf."""
        item_seq = batch.item_seq[:, -self.max_len :]
        lengths = (item_seq > 0).sum(1)
        keys = self.item_representation(item_seq)  # (B, L, D)
        user = self.user_representation(batch.users, item_seq.shape[0])
        step = max(1, MAX_SCORED_STEPS // max(item_seq.numel(), 1))
        logits = torch.cat(
            [
                self.click_logits(keys, lengths, user, items[:, start : start + step])
                for start in range(0, items.shape[1], step)
            ],
            1,
        )  # (B, C)
        return torch.sigmoid(logits).masked_fill(items == 0, -math.inf)

    def full_sort_predict(self, batch: SequenceBatch) -> Tensor:
        """Click probabilities (B, n_items + 1) of every item; column 0 (padding) is -inf."""
        codes = torch.arange(self.n_items + 1, device=batch.item_seq.device)
        return self.predict(batch, codes.expand(len(batch), -1))
