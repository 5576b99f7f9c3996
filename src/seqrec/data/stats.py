"""Summary figures of a corpus and of its side features, as dicts (for JSON) and as small text
tables (for people)."""

from __future__ import annotations

import numpy as np

from seqrec.data.corpus import SequenceCorpus
from seqrec.data.features import FeatureTable


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


def feature_stats(table: FeatureTable) -> list[dict[str, int | str]]:
    """Per feature: kind, width, distinct tokens, corpus ids without a value and with unknown
    tokens (see ``seqrec.data.features``)."""
    rows: list[dict[str, int | str]] = []
    for entry in table.spec():
        name = entry["name"]
        vocab = table.vocabularies.get(name)
        rows.append(
            {
                "field": name,
                "kind": entry["kind"],
                "width": entry["width"],
                "tokens": len(vocab) if vocab is not None else "-",
                "missing": table.missing.get(name, 0),
                "unknown": table.unknown.get(name, 0),
            }
        )
    return rows


def _coverage(table: FeatureTable, what: str) -> list[str]:
    lines = [
        f"missing: {what}s without a value; unknown: {what}s with a token shared as unknown",
        f"{len(table.ids_without_features):,} {what}s of the corpus have no feature row",
        f"{len(table.unknown_ids):,} ids of the feature file are not in the corpus (ignored)",
    ]
    return lines + list(table.notes)


def format_feature_stats(table: FeatureTable, what: str) -> str:
    """The feature fields as a text table, then the coverage counts and where they came from."""
    rows = feature_stats(table)
    header = ["field", "kind", "width", "tokens", "missing", "unknown"]
    cells = [header] + [[f"{r[h]:,}" if isinstance(r[h], int) else str(r[h]) for h in header]
                        for r in rows]  # fmt: skip
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [f"{what} features"]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines + _coverage(table, what))


def feature_report_lines(table: FeatureTable, what: str) -> list[str]:
    """Markdown for report.md: the feature table and the coverage counts."""
    lines = ["", f"{what.capitalize()} features:", ""]
    lines += ["| field | kind | width | tokens | missing | unknown |", "|---|---|---|---|---|---|"]
    for r in feature_stats(table):
        tokens = f"{r['tokens']:,}" if isinstance(r["tokens"], int) else r["tokens"]
        lines.append(
            f"| {r['field']} | {r['kind']} | {r['width']} | {tokens} | {r['missing']:,} "
            f"| {r['unknown']:,} |"
        )
    return [*lines, "", *[f"- {line}" for line in _coverage(table, what)]]
