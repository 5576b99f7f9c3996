"""Summary figures of a corpus, as a dict (for JSON) and as a small text table (for people)."""

from __future__ import annotations

import numpy as np

from seqrec.data.corpus import SequenceCorpus


def corpus_stats(corpus: SequenceCorpus) -> dict[str, float | int]:
    """Users, items, interactions, per-user sequence length figures and density.

    Density is interactions / (users * items): repeated (user, item) pairs count every time.
    """
    lengths = corpus.sequences.lengths
    n_users, n_items, n = corpus.n_users, corpus.n_items, corpus.n_interactions
    return {
        "users": n_users,
        "items": n_items,
        "interactions": n,
        "length_mean": float(lengths.mean()),
        "length_median": float(np.median(lengths)),
        "length_min": int(lengths.min()),
        "length_max": int(lengths.max()),
        "density": n / (n_users * n_items),
    }


def _shown(name: str, value: float | int) -> str:
    if name == "density":
        return f"{value:.4%}"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def format_stats(stats: dict[str, float | int], title: str | None = None) -> str:
    """A two-column text table, numbers right-aligned, density as a percentage."""
    rows = [(name.replace("_", " "), _shown(name, value)) for name, value in stats.items()]
    width = max(len(name) for name, _ in rows)
    value_width = max(len(value) for _, value in rows)
    lines = [title] if title else []
    lines += [f"{name:<{width}}  {value:>{value_width}}" for name, value in rows]
    return "\n".join(lines)
