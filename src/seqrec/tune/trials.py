"""The table of a study's trials: ``trials.csv`` (one column per parameter) and ``trials.md``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl


def trial_rows(trials: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per Optuna trial: number, state, value, epochs, seconds, preset?, parameters."""
    keys = sorted({k for t in trials for k in t.params})
    rows = []
    for t in trials:
        seconds = None
        if t.datetime_start is not None and t.datetime_complete is not None:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds()
        last = max(t.intermediate_values.items(), default=(None, None))[1]
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "last_reported": last,
                "epochs": t.user_attrs.get("epochs"),
                "best_epoch": t.user_attrs.get("best_epoch"),
                "seconds": seconds,
                "preset": bool(t.user_attrs.get("preset", False)),
                **{k: t.params.get(k) for k in keys},
            }
        )
    return rows


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_trials(trials: Sequence[Any], out: Path, metric: str) -> Path:
    """Both files in ``out``; returns the Markdown one. Best trial in bold."""
    rows = trial_rows(trials)
    frame = pl.DataFrame(rows, infer_schema_length=None, strict=False)
    frame.write_csv(out / "trials.csv")
    values = [r["value"] for r in rows if r["state"] == "complete"]
    best = max(values) if values else None
    columns = list(rows[0]) if rows else ["trial"]
    lines = [
        f"value: best validation {metric} of the trial; pruned trials show their last reported "
        "value; the preset column marks the trial of the preset's own values.",
        "",
        "| " + " | ".join(columns) + " |",
        "|---" * len(columns) + "|",
    ]
    for r in rows:
        cells = [_shown(r[c]) for c in columns]
        if best is not None and r["value"] == best and r["state"] == "complete":
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    path = out / "trials.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
