"""Per-position feature vectors of item sequences, from per-item feature tables kept as buffers.

A :class:`FeatureEmbedding` holds the feature tables of the items (one row per item code, built by
``seqrec.data.features.FeatureTable.model_array``) as buffers, so a saved model carries them in
its safetensors file and needs no data files, and its shape comes from a JSON-ready ``spec``
(``FeatureTable.spec``), so ``config.json`` alone rebuilds it. ``(B, L)`` item codes become
``(B, L, D)`` feature vectors with one gather from the integer table and one from the float table;
nothing loops over sequences.

Per field: each token and token_seq field has its own embedding rows, kept as row ranges of one
``nn.Embedding`` so that a batch takes one lookup (code 0, padding or missing, gives a zero
vector); a token_seq feature is pooled over its tokens by ``mean`` (over the tokens present) or
``sum`` with one masked reduction; float and float_seq features (standardised values plus a
missing flag) go through a linear layer of their own. The field vectors are combined by
``concat`` (concatenated, then projected to ``out_dim`` by a linear layer: fields keep separate
subspaces, the default) or ``sum`` (each field embedded straight to ``out_dim`` and the vectors
summed, no projection).
Padding (item 0) and codes beyond the table (a mask token) get a zero vector.

User features use the same layer with ``side="user"``: user codes start at 0, so the layer's row
``u + 1`` holds user ``u`` and row 0 stands for "no user" (a new session), a zero vector
(:func:`user_feature_layer`, :func:`load_user_tables`, :func:`user_vector`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from seqrec.data.features import FeatureTable

TOKEN_KINDS = ("token", "token_seq")
FLOAT_KINDS = ("float", "float_seq")
COMBINE = ("concat", "sum")
POOLING = ("mean", "sum")
SIDES = ("item", "user")


def select_fields(
    spec: Sequence[Mapping[str, Any]], names: Sequence[str], owner: str, side: str = "item"
) -> tuple[dict[str, Any], ...]:
    """The entries of ``spec`` named in ``names`` (in that order); an unknown name is an error
    that lists the fields the data has."""
    by_name = {entry["name"]: dict(entry) for entry in spec}
    for name in names:
        if name not in by_name:
            having = ", ".join(by_name) or "none"
            raise ValueError(f"{owner}: no {side} feature {name!r}; the data has: {having}")
    return tuple(by_name[name] for name in names)


def _int_width(entry: Mapping[str, Any]) -> int:
    return int(entry["width"]) if entry["kind"] == "token_seq" else 1


def _float_width(entry: Mapping[str, Any]) -> int:
    return (int(entry["width"]) if entry["kind"] == "float_seq" else 1) + 1  # + missing flag


def item_feature_layer(
    spec: Sequence[Mapping[str, Any]], names: Sequence[str], n_items: int, out_dim: int, owner: str
) -> FeatureEmbedding | None:
    """A :class:`FeatureEmbedding` of the item fields ``names`` (None when ``names`` is empty),
    the way the transformers add features to their item embeddings."""
    if not names:
        return None
    return FeatureEmbedding(select_fields(spec, names, owner), n_items + 1, out_dim)


def user_feature_layer(
    spec: Sequence[Mapping[str, Any]], names: Sequence[str], n_users: int, out_dim: int, owner: str
) -> FeatureEmbedding | None:
    """A user-side :class:`FeatureEmbedding` of the fields ``names`` over users 0..n_users-1
    (rows shifted by one; None when ``names`` is empty)."""
    if not names:
        return None
    fields = select_fields(spec, names, owner, side="user")
    return FeatureEmbedding(fields, n_users + 1, out_dim, side="user")


def user_vector(
    embedding: nn.Embedding | None,
    features: FeatureEmbedding | None,
    users: Tensor | None,
    batch_size: int,
    n_users: int,
) -> Tensor | None:
    """The user part of a click model's input, (B, U): the user-id embedding and the user
    feature vector, concatenated (either may be absent; None when both are). Without user codes
    (a new session) it is a zero vector; codes outside 0..n_users-1 are an error."""
    parts = [m for m in (embedding, features) if m is not None]
    if not parts:
        return None
    if users is None:
        width = sum(m.embedding_dim if m is embedding else m.out_dim for m in parts)
        return next(parts[0].parameters()).new_zeros(batch_size, width)
    if bool((users >= n_users).any()) or bool((users < 0).any()):
        raise ValueError(
            f"user codes must lie in 0..{n_users - 1} (model.n_users), "
            f"got {int(users.min())}..{int(users.max())}"
        )
    out = [] if embedding is None else [embedding(users)]
    if features is not None:
        out.append(features((users + 1).unsqueeze(1)).squeeze(1))  # row u + 1 is user u
    return torch.cat(out, -1)


def concat_item_features(
    vectors: Tensor, features: FeatureEmbedding | None, items: Tensor
) -> Tensor:
    """Id vectors (..., D) of item codes ``items`` (...) with each item's feature vector
    concatenated, (..., D + features.out_dim), as DIEN and DIN join an item's category to its id
    (unchanged without ``features``; zero feature vectors at padding)."""
    if features is None:
        return vectors
    rows = items.reshape(-1, items.shape[-1] if items.dim() else 1)  # FeatureEmbedding is 2-D
    return torch.cat([vectors, features(rows).view(*items.shape, -1)], -1)


def load_item_tables(model: nn.Module, table: FeatureTable) -> None:
    """Fill every item :class:`FeatureEmbedding` of ``model`` from a ``FeatureTable`` aligned with
    the model's item codes (what the training pipeline does before training)."""
    for module in model.modules():
        if isinstance(module, FeatureEmbedding) and module.side == "item":
            module.load_tables({e["name"]: table.model_array(e["name"]) for e in module.spec})


def load_user_tables(model: nn.Module, table: FeatureTable) -> None:
    """Fill every user :class:`FeatureEmbedding` of ``model`` from a ``FeatureTable`` aligned with
    the user codes (row 0 = user 0): each array gains the layer's "no user" row in front."""
    for module in model.modules():
        if isinstance(module, FeatureEmbedding) and module.side == "user":
            arrays = {}
            for entry in module.spec:
                array = table.model_array(entry["name"])
                arrays[entry["name"]] = np.concatenate([np.zeros_like(array[:1]), array])
            module.load_tables(arrays)


class FeatureEmbedding(nn.Module):
    """Item codes (B, L) -> feature vectors (B, L, out_dim), from the tables of ``n_rows`` items.

    ``spec`` lists the fields to embed (dicts with ``name``, ``kind``, ``codes``, ``width``);
    ``field_dim`` is each field's vector size before a ``concat`` projection (default
    ``out_dim``); ``side`` says whose tables these are (``item`` or ``user``, whose rows are the
    user codes shifted by one). Fill the tables with :meth:`load_tables` (or from a saved state
    dict).
    """

    def __init__(
        self,
        spec: Sequence[Mapping[str, Any]],
        n_rows: int,
        out_dim: int,
        field_dim: int | None = None,
        combine: Literal["concat", "sum"] = "concat",
        pooling: Literal["mean", "sum"] = "mean",
        side: Literal["item", "user"] = "item",
    ) -> None:
        super().__init__()
        if not spec:
            raise ValueError("FeatureEmbedding needs at least one field")
        if combine not in COMBINE or pooling not in POOLING or side not in SIDES:
            raise ValueError(
                f"combine must be in {COMBINE}, pooling in {POOLING} and side in {SIDES}"
            )
        self.spec = tuple(dict(entry) for entry in spec)
        self.side = side
        self.n_rows, self.out_dim, self.combine, self.pooling = n_rows, out_dim, combine, pooling
        dim = out_dim if combine == "sum" else field_dim or out_dim
        tokens = [e for e in self.spec if e["kind"] in TOKEN_KINDS]
        floats = [e for e in self.spec if e["kind"] in FLOAT_KINDS]
        self.order = [e["name"] for e in tokens + floats]  # field order of the output
        # one shared embedding: row 0 = padding / missing, then every token field's codes 1..
        self.token_offsets = np.cumsum([1] + [int(e["codes"]) - 1 for e in tokens])
        self.embedding = nn.Embedding(int(self.token_offsets[-1]), dim, padding_idx=0)
        field_of_column = np.repeat(np.arange(len(tokens)), [_int_width(e) for e in tokens])
        pool = torch.zeros(len(field_of_column), len(tokens))
        pool[torch.arange(len(field_of_column)), torch.from_numpy(field_of_column)] = 1.0
        self.register_buffer("pool", pool, persistent=False)  # (T, F_token) column -> field
        self.register_buffer("codes", torch.zeros(n_rows, len(field_of_column), dtype=torch.long))
        self.float_widths = [_float_width(e) for e in floats]
        self.register_buffer("values", torch.zeros(n_rows, sum(self.float_widths)))
        self.float_layers = nn.ModuleList(nn.Linear(w, dim) for w in self.float_widths)
        self.tokens, self.floats = tokens, floats
        n_fields = len(self.spec)
        self.projection = nn.Linear(n_fields * dim, out_dim) if combine == "concat" else None

    @torch.no_grad()
    def load_tables(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Copy each field's table (``FeatureTable.model_array``) into the buffers.

        Token codes are shifted into the shared embedding here, so the buffers hold final rows.
        """
        columns, start = [], 0
        for entry, offset in zip(self.tokens, self.token_offsets[:-1], strict=True):
            local = torch.as_tensor(arrays[entry["name"]]).reshape(self.n_rows, -1)
            if local.shape[1] != _int_width(entry) or int(local.max()) >= int(entry["codes"]):
                raise ValueError(f"feature table {entry['name']!r} does not match its spec")
            columns.append(torch.where(local > 0, local + int(offset) - 1, 0))
        if columns:
            self.codes.copy_(torch.cat(columns, dim=1))
        for entry, width in zip(self.floats, self.float_widths, strict=True):
            table = torch.as_tensor(arrays[entry["name"]], dtype=torch.float32)
            if table.shape != (self.n_rows, width):
                raise ValueError(f"feature table {entry['name']!r} does not match its spec")
            self.values[:, start : start + width] = table
            start += width

    def fields(self, item_seq: Tensor) -> Tensor:
        """Per-field vectors (B, L, F, field_dim) of item codes (B, L), fields in ``order``."""
        known = (item_seq > 0) & (item_seq < self.n_rows)
        rows = item_seq.masked_fill(~known, 0)
        out = []
        if self.tokens:
            codes = self.codes[rows]  # (B, L, T)
            present = (codes > 0).to(self.embedding.weight.dtype)  # (B, L, T)
            embedded = self.embedding(codes) * present.unsqueeze(-1)  # (B, L, T, d)
            pooled = torch.einsum("bltd,tf->blfd", embedded, self.pool)  # (B, L, F_token, d)
            if self.pooling == "mean":
                count = present @ self.pool  # (B, L, F_token)
                pooled = pooled / count.clamp(min=1.0).unsqueeze(-1)
            out.append(pooled)
        if self.floats:
            values = self.values[rows]  # (B, L, V)
            parts = values.split(self.float_widths, dim=-1)
            out.append(
                torch.stack([f(p) for f, p in zip(self.float_layers, parts, strict=True)], 2)
            )
        vectors = torch.cat(out, dim=2)  # (B, L, F, d)
        return vectors * known[..., None, None].to(vectors.dtype)

    def forward(self, item_seq: Tensor) -> Tensor:
        """Feature vectors (B, L, out_dim) of item codes (B, L); zero at padding."""
        vectors = self.fields(item_seq)  # (B, L, F, d)
        if self.projection is None:
            return vectors.sum(dim=2)
        known = (item_seq > 0) & (item_seq < self.n_rows)
        projected = self.projection(vectors.flatten(2))  # (B, L, out_dim)
        return projected * known.unsqueeze(-1).to(projected.dtype)
