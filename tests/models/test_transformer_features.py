"""Item features in BERT4Rec and SASRec: added to the item embeddings, never leaking a target."""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import Vocabulary
from seqrec.data.features import build_feature_table
from seqrec.models import build_model
from seqrec.nn.features import load_item_tables

N_ITEMS = 12


def table():
    frame = pl.DataFrame(
        {"id": [str(i) for i in range(1, N_ITEMS + 1)], "genre": [f"g{i % 4}" for i in range(12)]}
    )
    return build_feature_table(frame, Vocabulary(np.array(frame["id"].to_list()), offset=1))


def model(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    t = table()
    config = dict(
        n_items=N_ITEMS, max_len=6, hidden_size=8, n_heads=2, inner_size=16,
        hidden_dropout=0.0, attn_dropout=0.0, item_features=("genre",), item_feature_spec=t.spec(),
    )  # fmt: skip
    m = build_model(name, **(config | overrides))
    load_item_tables(m, t)
    return m


def test_without_the_switch_there_is_no_feature_layer() -> None:
    assert (
        build_model("sasrec", n_items=N_ITEMS, item_feature_spec=table().spec()).encoder.features
        is None
    )


def test_scores_depend_on_the_features_of_the_history() -> None:
    for name in ("sasrec", "bert4rec"):
        m = model(name).eval()
        history = SequenceBatch(torch.tensor([[0, 1, 2, 3, 4, 5]]))
        before = m.full_sort_predict(history)
        with torch.no_grad():
            m.encoder.features.codes[3] = m.encoder.features.codes[4]  # genre of item 3 changed
        assert not torch.allclose(m.full_sort_predict(history), before), name


def test_bert4rec_cloze_targets_do_not_show_their_features() -> None:
    m = model("bert4rec", mask_ratio=0.4, last_item_mask_prob=0.0)
    batch = SequenceBatch(torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]]))
    _, positions, _ = m.reconstruct_train_data(batch.item_seq, torch.Generator().manual_seed(1))
    hidden_items = batch.item_seq[positions]  # every item appears once: these are only targets
    assert len(hidden_items) > 0
    loss = m.calculate_loss(batch, torch.Generator().manual_seed(1))
    with torch.no_grad():
        m.encoder.features.codes[hidden_items] = 0  # their features are gone
    assert torch.equal(m.calculate_loss(batch, torch.Generator().manual_seed(1)), loss)
    with torch.no_grad():
        m.encoder.features.codes[batch.item_seq[~positions]] = 0  # the visible items' too
    assert not torch.equal(m.calculate_loss(batch, torch.Generator().manual_seed(1)), loss)
