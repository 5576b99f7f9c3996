"""Full ranking block by block: the same ranks as the dense path, ties and history included."""

import math
from dataclasses import fields

import numpy as np
import polars as pl
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import build_corpus
from seqrec.data.splits import leave_one_out, temporal_split, time_quantile
from seqrec.evaluation.evaluator import Evaluator
from seqrec.evaluation.protocols import FullRanking
from seqrec.metrics.ranking import ranks_from_blocks, ranks_from_scores
from seqrec.models import MODELS, build_model
from seqrec.models.pop import Pop
from seqrec.models.scoring import ScoreFactors, block_width

N_USERS, N_ITEMS = 60, 40
SMALL = {"n_items": 600, "max_len": 5, "hidden_size": 16, "embedding_size": 16, "n_heads": 1}
FIELDS = {name: {f.name for f in fields(MODELS[name][1])} for name in MODELS}


class FactorModel(nn.Module):
    """Integer user vectors and item table: every product is exact, ties are frequent."""

    max_len = 5

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.users = torch.randint(-1, 2, (N_USERS, 3), generator=gen).float()
        self.items = torch.randint(-1, 2, (N_ITEMS + 1, 3), generator=gen).float()
        self.bias = torch.randint(0, 2, (N_ITEMS + 1,), generator=gen).float()
        self.n_items, self.dense_calls = N_ITEMS, 0

    def score_factors(self, batch: SequenceBatch) -> ScoreFactors:
        return ScoreFactors(self.users[batch.users], self.items, self.bias)

    def full_sort_predict(self, batch: SequenceBatch) -> Tensor:
        self.dense_calls += 1
        scores = F.linear(self.users[batch.users], self.items, self.bias)
        scores[:, 0] = -math.inf
        return scores


def frame(seed: int, times: int | None = None) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = rng.integers(4, 16, N_USERS)
    stamps = np.arange(n.sum()) if times is None else rng.integers(0, times, n.sum())
    return pl.DataFrame(
        {
            "user": np.repeat(np.arange(N_USERS), n).astype(str),
            "item": rng.integers(0, N_ITEMS, n.sum()).astype(str),
            "timestamp": stamps.astype(float),
        }
    )


@pytest.fixture(scope="module")
def one_target():
    return leave_one_out(build_corpus(frame(0))).test


@pytest.fixture(scope="module")
def many_targets():
    corpus = build_corpus(frame(1, times=100))
    return temporal_split(corpus, time_quantile(corpus, 0.6), targets="all").test


def evaluator(eval_set, exclude_history: bool, block: int | None) -> Evaluator:
    """One chunk of every user, scored in blocks of ``block`` items (None: densely)."""
    max_scores = 2**30 if block is None else len(eval_set) * block
    protocol = FullRanking(exclude_history)
    return Evaluator(eval_set, protocol, N_ITEMS, batch_size=1000, max_scores=max_scores)


@pytest.mark.parametrize("exclude_history", [True, False])
@pytest.mark.parametrize("block", [1, 3, 7, 40])
@pytest.mark.parametrize("which", ["one_target", "many_targets"])
def test_blocked_ranks_equal_the_dense_ones(request, which, block, exclude_history) -> None:
    eval_set = request.getfixturevalue(which)
    model = FactorModel()
    dense = evaluator(eval_set, exclude_history, None).ranks(model)
    assert model.dense_calls > 0
    model.dense_calls = 0
    blocked = evaluator(eval_set, exclude_history, block).ranks(model)
    assert model.dense_calls == 0  # every chunk went through the blocks
    np.testing.assert_array_equal(blocked, dense)


def test_the_data_has_what_the_blocked_test_must_cover(one_target, many_targets) -> None:
    """Ties, targets that were in the history, several targets per user."""
    model = FactorModel()
    scores = F.linear(model.users, model.items, model.bias)
    assert (scores[:, 1:, None] == scores[:, None, 1:]).sum() > 10 * N_USERS * N_ITEMS
    repeats = [
        bool(set(s.targets.row(r).tolist()) & set(s.context.row(r).tolist()))
        for s in (one_target, many_targets)
        for r in range(len(s))
    ]
    assert sum(repeats) >= 5
    assert max(np.diff(many_targets.targets.offsets)) >= 3


@pytest.mark.parametrize("width", [1, 2, 5, 31])
def test_ranks_from_blocks_equal_ranks_from_scores(width: int) -> None:
    gen = torch.Generator().manual_seed(width)
    scores = torch.randint(0, 4, (9, 31), generator=gen).float()
    scores[:, 0] = -math.inf
    scores[2, 5:9] = -math.inf  # left out, as history is
    targets = torch.stack([torch.randperm(30, generator=gen)[:4] + 1 for _ in range(9)])
    targets[0, 2:], targets[3, 1:] = 0, 0  # fewer targets: padding
    targets[2] = torch.tensor([12, 6, 30, 1])  # 6 scores -inf in its block (history) but ranks
    # by its own score, as a dense row with the target's score restored
    relevant = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, targets, True)
    relevant[:, 0] = False
    own = scores.gather(1, targets)
    own[2, 1] = 2.0  # (the target order is free: ranks come back in column order)
    dense_scores = scores.clone()
    dense_scores[2, 6] = 2.0
    blocks = ((s, scores[:, s : s + width]) for s in range(0, 31, width))
    expected = ranks_from_scores(dense_scores, relevant)
    torch.testing.assert_close(ranks_from_blocks(own, targets, blocks), expected)


def test_blocks_must_be_consecutive_and_cover_the_targets() -> None:
    scores = torch.zeros(1, 10)
    targets = torch.tensor([[3]])
    with pytest.raises(ValueError, match="consecutive"):
        ranks_from_blocks(torch.zeros(1, 1), targets, [(0, scores[:, :4]), (5, scores[:, 5:])])
    with pytest.raises(ValueError, match="beyond"):
        ranks_from_blocks(torch.zeros(1, 1), targets, [(0, scores[:, :3])])


def test_block_width_keeps_the_score_budget() -> None:
    assert block_width(256, 54_543) is None  # Beauty: dense
    assert block_width(256, 1_000_001) == 2**25 // 256
    assert block_width(10, 100, max_scores=35) == 3


@pytest.mark.parametrize("name", ["sasrec", "bert4rec", "gru4rec", "pop"])
def test_registered_models_rank_alike_densely_and_in_blocks(one_target, name) -> None:
    """Float scores: blocks of 128 codes or more give the dense product's numbers here."""
    torch.manual_seed(0)
    if name == "pop":
        model = Pop.fit(one_target.context, 600)  # items 41..600 never occur: tied at 0
    else:
        model = build_model(name, **{k: v for k, v in SMALL.items() if k in FIELDS[name]}).eval()
    args = (one_target, FullRanking(True), 600)
    dense = Evaluator(*args, batch_size=8).ranks(model)
    blocked = Evaluator(*args, batch_size=8, max_scores=8 * 128).ranks(model)
    np.testing.assert_array_equal(blocked, dense)
