"""The feature embedding layer against the same vectors computed field by field by hand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from seqrec.data.corpus import Vocabulary
from seqrec.data.features import build_feature_table
from seqrec.nn.features import FeatureEmbedding, item_feature_layer, select_fields

N_ITEMS = 6


def table():
    frame = pl.DataFrame(
        {
            "id": [str(i) for i in range(1, N_ITEMS + 1)],
            "genre": ["a", "b", None, "a", "c", "b"],
            "tags": [["x", "y"], ["y"], [], ["x", "y", "z"], ["z"], ["x"]],
            "price": [1.0, None, 3.0, 2.0, 5.0, 1.0],
            "vector": [[0.1, 0.2], [0.3, 0.1], [0.0, 0.5], None, [1.0, 1.0], [0.2, 0.2]],
        }
    )
    return build_feature_table(frame, Vocabulary(np.array(frame["id"].to_list()), offset=1))


def layer(combine: str, pooling: str) -> tuple[FeatureEmbedding, object]:
    torch.manual_seed(0)
    t = table()
    emb = FeatureEmbedding(t.spec(), N_ITEMS + 1, 5, field_dim=3, combine=combine, pooling=pooling)
    with torch.no_grad():  # any weights, also at the padding row: padding must still give zero
        for p in emb.parameters():
            p.normal_()
    emb.load_tables({name: t.model_array(name) for name in t.kinds})
    return emb, t


def by_hand(emb: FeatureEmbedding, t, item: int) -> torch.Tensor:
    """One item's field vectors, in the layer's field order, from its own weights."""
    weight = emb.embedding.weight
    offsets = dict(zip([e["name"] for e in emb.tokens], emb.token_offsets[:-1], strict=True))
    vectors = {}
    for name in ("genre", "tags"):
        codes = [int(c) for c in np.atleast_1d(t.arrays[name][item]) if c > 0]
        rows = [weight[c + int(offsets[name]) - 1] for c in codes]
        pooled = torch.stack(rows).sum(0) if rows else torch.zeros(weight.shape[1])
        if emb.pooling == "mean" and rows:
            pooled = pooled / len(rows)
        vectors[name] = pooled
    for name, linear in zip(["price", "vector"], emb.float_layers, strict=True):
        vectors[name] = linear(torch.from_numpy(t.model_array(name)[item]))
    return torch.stack([vectors[name] for name in emb.order])  # (F, d)


@pytest.mark.parametrize("pooling", ["mean", "sum"])
def test_concat_projects_the_concatenated_field_vectors(pooling: str) -> None:
    emb, t = layer("concat", pooling)
    item_seq = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 1]])
    out = emb(item_seq)
    assert out.shape == (2, 4, 5)
    for b in range(2):
        for col in range(4):
            item = int(item_seq[b, col])
            if item == 0:
                assert torch.equal(out[b, col], torch.zeros(5))
                continue
            expected = emb.projection(by_hand(emb, t, item).flatten())
            torch.testing.assert_close(out[b, col], expected)


def test_sum_adds_the_field_vectors() -> None:
    emb, t = layer("sum", "mean")
    out = emb(torch.tensor([[3, 4, 5]]))
    for col, item in enumerate((3, 4, 5)):
        torch.testing.assert_close(out[0, col], by_hand(emb, t, item).sum(0))


def test_mean_and_sum_pooling_differ_only_for_several_tokens() -> None:
    mean, _ = layer("concat", "mean")
    total, _ = layer("concat", "sum")
    tags = mean.order.index("tags")
    one_tag, three_tags = torch.tensor([[2]]), torch.tensor([[4]])
    torch.testing.assert_close(
        mean.fields(one_tag)[..., tags, :], total.fields(one_tag)[..., tags, :]
    )
    torch.testing.assert_close(
        3 * mean.fields(three_tags)[..., tags, :], total.fields(three_tags)[..., tags, :]
    )


@pytest.mark.parametrize("combine", ["concat", "sum"])
def test_padding_and_codes_beyond_the_table_give_zero_vectors(combine: str) -> None:
    emb, _ = layer(combine, "mean")
    codes = torch.tensor([[0, N_ITEMS + 1]])  # padding, and e.g. BERT4Rec's mask token
    assert torch.equal(emb(codes), torch.zeros(1, 2, 5))
    assert not emb.fields(codes).any()  # before any projection, too


def test_missing_values_give_zero_field_vectors() -> None:
    emb, _ = layer("concat", "mean")
    fields = emb.fields(torch.tensor([[3]]))  # item 3: no genre, no tags
    genre, tags = emb.order.index("genre"), emb.order.index("tags")
    assert torch.equal(fields[0, 0, genre], torch.zeros(3))
    assert torch.equal(fields[0, 0, tags], torch.zeros(3))


def test_tables_must_match_the_spec() -> None:
    emb, t = layer("concat", "mean")
    arrays = {name: t.model_array(name) for name in t.kinds}
    with pytest.raises(ValueError, match="feature table 'tags' does not match its spec"):
        emb.load_tables(arrays | {"tags": arrays["tags"][:, :1]})
    with pytest.raises(ValueError, match="feature table 'genre' does not match its spec"):
        emb.load_tables(arrays | {"genre": arrays["genre"] + 10})


def test_selecting_fields_names_the_ones_the_data_has() -> None:
    spec = table().spec()
    assert [e["name"] for e in select_fields(spec, ["price", "genre"], "X")] == ["price", "genre"]
    with pytest.raises(ValueError, match=r"X: no item feature 'year'; the data has: genre, tags"):
        select_fields(spec, ["year"], "X")
    assert item_feature_layer(spec, (), N_ITEMS, 4, "X") is None
