"""Data pipeline speed: read -> build_corpus -> leave-one-out, on ml-100k and Beauty.

No k-core filtering for either: the papers' files are already filtered. Each stage is timed over
several repetitions; the table shows the best and the median, and the total is checked against
the targets (ml-100k < 2 s, Beauty < 5 s, median of the whole pipeline).

    python benchmarks/data_pipeline.py [--data-dir DIR] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from seqrec.data.corpus import build_corpus
from seqrec.data.readers import read_interactions
from seqrec.data.splits import leave_one_out

RESULTS = Path(__file__).parent / "results"
DATASETS = {"ml-100k": ("ml-100k/ml-100k.inter", 2.0), "beauty": ("beauty/beauty.txt", 5.0)}
STAGES = ("read", "build_corpus", "leave_one_out", "total")


def run_once(path: Path) -> tuple[dict[str, float], dict[str, int]]:
    """Seconds per stage of one run, and the sizes it produced."""
    clock: dict[str, float] = {}

    def timed(stage: str, work: Callable[[], object]) -> object:
        start = time.perf_counter()
        result = work()
        clock[stage] = time.perf_counter() - start
        return result

    frame = timed("read", lambda: read_interactions(path))
    corpus = timed("build_corpus", lambda: build_corpus(frame))
    split = timed("leave_one_out", lambda: leave_one_out(corpus))
    clock["total"] = sum(clock.values())
    sizes = {
        "interactions": corpus.n_interactions,
        "users": corpus.n_users,
        "items": corpus.n_items,
        "test_users": len(split.test),
    }
    return clock, sizes


def measure(name: str, path: Path, repeats: int, target: float) -> dict[str, object]:
    runs = []
    for _ in range(repeats):
        clock, sizes = run_once(path)
        runs.append(clock)
    row: dict[str, object] = {"dataset": name, **sizes}
    for stage in STAGES:
        values = [run[stage] for run in runs]
        row[f"{stage}_best_s"] = round(min(values), 4)
        row[f"{stage}_median_s"] = round(statistics.median(values), 4)
    row["target_s"] = target
    row["meets_target"] = row["total_median_s"] < target
    return row


def markdown(rows: list[dict[str, object]], repeats: int) -> str:
    header = "| dataset | interactions | " + " | ".join(f"{s} best / median (s)" for s in STAGES)
    lines = [
        "# Data pipeline speed",
        "",
        f"read -> build_corpus (no k-core) -> leave_one_out; best and median of {repeats} runs; "
        f"polars {pl.__version__}, Python {platform.python_version()}, {platform.machine()}.",
        "",
        header + " | target (s) | met |",
        "|---|---:|" + "---:|" * len(STAGES) + "---:|---|",
    ]
    for row in rows:
        cells = [f"{row[f'{s}_best_s']:.3f} / {row[f'{s}_median_s']:.3f}" for s in STAGES]
        met = "yes" if row["meets_target"] else "NO"
        lines.append(
            f"| {row['dataset']} | {row['interactions']:,} | "
            + " | ".join(cells)
            + f" | < {row['target_s']:g} | {met} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = Path(__file__).resolve().parents[2] / "shared" / "data"
    parser.add_argument("--data-dir", type=Path, default=default_dir)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    rows = []
    for name, (relative, target) in DATASETS.items():
        path = args.data_dir / relative
        if not path.is_file():
            print(f"skipping {name}: {path} not found")
            continue
        rows.append(measure(name, path, args.repeats, target))
    if not rows:
        raise SystemExit(f"no data sets found under {args.data_dir}")
    table = markdown(rows, args.repeats)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    report = {"repeats": args.repeats, "polars": pl.__version__, "results": rows}
    (RESULTS / "data_pipeline.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "data_pipeline.md").write_text(table)


if __name__ == "__main__":
    main()
