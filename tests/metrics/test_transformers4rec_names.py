"""Transformers4Rec's own spellings of the ranking-metric classes, so that ported code runs."""

from __future__ import annotations

import torch

from seqrec.metrics import MeanRecipricolRankAt, MeanReciprocalRankAt


def test_mean_recipricol_rank_at_is_mean_reciprocal_rank_at() -> None:
    assert MeanRecipricolRankAt is MeanReciprocalRankAt
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.8, 0.2, 0.4]])
    metric = MeanRecipricolRankAt(top_ks=[1, 3], labels_onehot=True)
    metric.update(scores, torch.tensor([2, 0]))
    assert metric.compute().tolist() == [0.5, 0.75]  # ranks 2 and 1
