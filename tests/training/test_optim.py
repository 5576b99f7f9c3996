"""Optimiser set-up shared by every model: decay groups and the learning-rate schedule."""

from __future__ import annotations

import pytest
from torch import nn

from seqrec.training.module import parameter_groups, warmup_linear_decay


def test_no_weight_decay_on_layer_norm_and_bias():
    model = nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 4), nn.LayerNorm(4))
    decay, no_decay = parameter_groups(model, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(model[0].weight), id(model[1].weight)}
    assert {id(p) for p in no_decay["params"]} == {
        id(model[1].bias), id(model[2].weight), id(model[2].bias)
    }  # fmt: skip


def test_warmup_then_linear_decay_to_zero():
    factor = warmup_linear_decay(warmup_steps=4, total_steps=12)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(8) == pytest.approx(0.5)
    assert factor(12) == 0.0
    assert factor(20) == 0.0


def test_no_warmup_starts_at_full_rate():
    factor = warmup_linear_decay(warmup_steps=0, total_steps=10)
    assert factor(0) == 1.0
    assert factor(5) == pytest.approx(0.5)
