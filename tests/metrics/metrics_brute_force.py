"""Independent reference for the metric tests: sort the whole score list, then apply the textbook
definitions to the resulting 0/1 relevance list. Pure Python, no torch, deliberately naive."""

from __future__ import annotations

import math

from hypothesis import strategies as st


def ranked_labels(
    scores: list[float], relevant: list[bool], candidate: list[bool] | None = None
) -> list[int]:
    """Relevance (1/0) of the competing items, best first.

    Competing: candidates plus every relevant item. Ties: non-relevant before relevant
    (pessimistic), relevant among themselves by column.
    """
    competing = [i for i in range(len(scores)) if relevant[i] or candidate is None or candidate[i]]
    order = sorted(competing, key=lambda i: (-scores[i], relevant[i], i))
    return [int(relevant[i]) for i in order]


def reference_ranks(
    scores: list[float], relevant: list[bool], candidate: list[bool] | None = None
) -> list[int]:
    """1-based sorted positions of the relevant items, listed in column order."""
    competing = [i for i in range(len(scores)) if relevant[i] or candidate is None or candidate[i]]
    order = sorted(competing, key=lambda i: (-scores[i], relevant[i], i))
    position = {column: place + 1 for place, column in enumerate(order)}
    return [position[i] for i in range(len(scores)) if relevant[i]]


def hit_rate(labels: list[int], k: int) -> float:
    return 1.0 if any(labels[:k]) else 0.0


def recall(labels: list[int], k: int) -> float:
    return sum(labels[:k]) / sum(labels)


def precision(labels: list[int], k: int) -> float:
    return sum(labels[:k]) / k


def average_precision(labels: list[int], k: int) -> float:
    total = 0.0
    for i, label in enumerate(labels[:k]):
        if label:
            total += sum(labels[: i + 1]) / (i + 1)
    return total / min(sum(labels), k)


def dcg(labels: list[int], k: int) -> float:
    return sum(label / math.log2(i + 2) for i, label in enumerate(labels[:k]))


def ndcg(labels: list[int], k: int) -> float:
    return dcg(labels, k) / dcg(sorted(labels, reverse=True), k)


def mrr(labels: list[int], k: int | None) -> float:
    first = labels.index(1)
    return 1.0 / (first + 1) if k is None or first < k else 0.0


REFERENCE = {
    "HR": hit_rate,
    "Recall": recall,
    "Precision": precision,
    "MAP": average_precision,
    "DCG": dcg,
    "NDCG": ndcg,
    "MRR": mrr,
}


@st.composite
def scored_batches(draw: st.DrawFn, max_users: int = 4, max_items: int = 8) -> tuple:
    """(scores, relevant, candidate | None) as nested lists; few distinct scores, so many ties;
    every user has at least one relevant item."""
    n_users = draw(st.integers(1, max_users))
    n_items = draw(st.integers(1, max_items))
    row_of = st.lists(st.booleans(), min_size=n_items, max_size=n_items)
    scores = draw(
        st.lists(
            st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), min_size=n_items, max_size=n_items),
            min_size=n_users,
            max_size=n_users,
        )
    )
    relevant = [draw(row_of) for _ in range(n_users)]
    for row in relevant:
        row[draw(st.integers(0, n_items - 1))] = True
    candidate = draw(st.none() | st.lists(row_of, min_size=n_users, max_size=n_users))
    return scores, relevant, candidate
