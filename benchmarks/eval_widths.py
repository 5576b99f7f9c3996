"""Full-ranking evaluation with inputs as wide as each user's history needs, against max_len.

The evaluator groups users by history length rounded up to ``WIDTH_STEP`` items and runs each
group at that width; padding every user to ``max_len`` is the alternative (what RecBole does).
Both run here side by side, alternating, on a BERT4Rec of the preset's size (random weights:
the cost does not depend on the weights), for ml-100k and Amazon Beauty; the script reports the
median seconds of each, their ratio and how many users' ranks differ between the two
(left padding must not change scores; float rounding may move a near-tie).

    python benchmarks/eval_widths.py [--repeats 3] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from seqrec.data.corpus import build_corpus
from seqrec.data.readers import read_interactions
from seqrec.data.splits import leave_one_out
from seqrec.evaluation import evaluator as evaluator_module
from seqrec.evaluation.evaluator import Evaluator
from seqrec.evaluation.protocols import FullRanking
from seqrec.models import build_model
from seqrec.training.allocator import keep_freed_memory

RESULTS = Path(__file__).parent / "results"
DATASETS = {"ml-100k": "ml-100k/ml-100k.inter", "beauty": "beauty/beauty.txt"}
MAX_LEN = 50


def timed_ranks(
    evaluator: Evaluator, model: torch.nn.Module, step: int
) -> tuple[float, np.ndarray]:
    evaluator_module.WIDTH_STEP = step
    start = time.perf_counter()
    ranks = evaluator.ranks(model)
    return time.perf_counter() - start, ranks


def measure(name: str, path: Path, repeats: int) -> dict:
    corpus = build_corpus(read_interactions(path))
    test = leave_one_out(corpus).test
    torch.manual_seed(0)
    model = build_model("bert4rec", n_items=corpus.n_items, max_len=MAX_LEN).eval()
    evaluator = Evaluator(test, FullRanking(), corpus.n_items)
    default_step = evaluator_module.WIDTH_STEP
    seconds: dict[str, list[float]] = {"bucketed": [], "max_len": []}
    for _ in range(repeats):
        bucketed, narrow = timed_ranks(evaluator, model, default_step)
        padded, wide = timed_ranks(evaluator, model, MAX_LEN)
        seconds["bucketed"].append(bucketed)
        seconds["max_len"].append(padded)
    evaluator_module.WIDTH_STEP = default_step
    lengths = np.minimum(np.diff(test.context.offsets), MAX_LEN - 1)
    medians = {key: float(np.median(values)) for key, values in seconds.items()}
    row = {
        "dataset": name, "users": len(test), "items": corpus.n_items,
        "mean_history_items": round(float(lengths.mean()), 1),
        "median_s": medians, "seconds": seconds,
        "ratio_bucketed_to_max_len": medians["bucketed"] / medians["max_len"],
        "users_with_different_ranks": int((narrow != wide).any(axis=1).sum()),
    }  # fmt: skip
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    keep_freed_memory()  # as `seqrec train` and `seqrec evaluate` do
    rows = []
    for name, relative in DATASETS.items():
        if (args.data_dir / relative).exists():
            rows.append(measure(name, args.data_dir / relative, args.repeats))
        else:
            print(f"{name}: {args.data_dir / relative} not found, skipped")
    RESULTS.mkdir(exist_ok=True)
    report = {"torch_threads": torch.get_num_threads(), "max_len": MAX_LEN, "rows": rows}
    (RESULTS / "eval_widths.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "| data set | users | mean history | bucketed s | max_len s | ratio "
        "| users with other ranks |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['dataset']} | {r['users']:,} | {r['mean_history_items']} "
        f"| {r['median_s']['bucketed']:.2f} | {r['median_s']['max_len']:.2f} "
        f"| {r['ratio_bucketed_to_max_len']:.2f} | {r['users_with_different_ranks']} |"
        for r in rows
    ]
    (RESULTS / "eval_widths.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
