"""The evaluation path on real ml-100k (skipped when the shared data folder is absent)."""

from pathlib import Path

import numpy as np
import pytest

from seqrec.data.corpus import build_corpus
from seqrec.data.readers import read_interactions
from seqrec.data.splits import leave_one_out
from seqrec.evaluation.evaluator import Evaluator
from seqrec.evaluation.protocols import parse_protocol
from seqrec.models.pop import Pop

INTER = Path(__file__).parents[3] / "shared" / "data" / "ml-100k" / "ml-100k.inter"
pytestmark = pytest.mark.skipif(not INTER.exists(), reason="shared ml-100k data not present")


@pytest.fixture(scope="module")
def ml100k():
    corpus = build_corpus(read_interactions(INTER))
    return corpus, leave_one_out(corpus)


def test_ml100k_leave_one_out_evaluates_every_user(ml100k):
    corpus, split = ml100k
    assert (corpus.n_users, corpus.n_items, corpus.n_interactions) == (943, 1682, 100_000)
    assert len(split.test) == 943
    assert split.train.lengths.sum() == 100_000 - 2 * 943


def test_popularity_on_ml100k_is_a_weak_but_real_baseline(ml100k):
    corpus, split = ml100k
    pop = Pop.fit(split.train, corpus.n_items)
    full = Evaluator(split.test, parse_protocol("full"), corpus.n_items).evaluate(pop)
    sampled = Evaluator(
        split.test, parse_protocol("popular100"), corpus.n_items, corpus.item_counts()
    ).evaluate(pop)
    # measured: full HR@10 0.084, popular100 HR@10 0.149; random would give 0.006 and 0.099
    assert 0.06 < full["HR@10"] < 0.11
    assert full.summary["HR@10"]["ci_low"] < full["HR@10"] < full.summary["HR@10"]["ci_high"]
    assert 0.12 < sampled["HR@10"] < 0.18


def test_equal_timestamps_keep_file_order_so_the_last_item_is_the_last_line(ml100k):
    corpus, split = ml100k
    frame = read_interactions(INTER)
    # stable sort by time: among a user's newest timestamp, the item written last comes last
    expected = frame.sort("timestamp", maintain_order=True).group_by("user", maintain_order=True)
    expected_item = dict(expected.last().select("user", "item").iter_rows())
    users = corpus.users.decode(split.test.users)
    got = corpus.items.decode(split.test.targets.items)
    assert all(expected_item[u] == i for u, i in zip(users, got, strict=True))
    # the rule matters here: many users' two newest interactions share one second
    seqs = corpus.sequences
    ends = seqs.offsets[1:]
    assert np.sum(seqs.timestamps[ends - 1] == seqs.timestamps[ends - 2]) > 100
