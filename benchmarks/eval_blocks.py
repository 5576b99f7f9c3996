"""Full-sort evaluation on Beauty with the scores of each batch in blocks of items of several sizes.

A batch of 256 users over Beauty's 54,543 item codes is 14M scores (56 MB), below 2**25 (the
evaluator's ``max_scores`` until this script measured it), so it was scored in one dense pass and
then counted in further passes over memory. Blocks of items small enough to stay in cache
(``EVAL_SCORES``, 2**20, now the default) are scored and counted while they are still there.
This script ranks every test user (history kept as candidates, RecBole's protocol,
and history excluded) with BERT4Rec and SASRec at random weights, for each ``max_scores`` in
turn, alternating, the median of ``--repeats``; ranks must agree exactly across block sizes.

    python benchmarks/eval_blocks.py [--data ../shared/data/beauty/beauty.txt] [--repeats 3]

Writes ``benchmarks/results/eval_blocks.{json,md}``.
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
from seqrec.evaluation.evaluator import Evaluator
from seqrec.evaluation.protocols import FullRanking
from seqrec.models import build_model
from seqrec.training.allocator import keep_freed_memory

RESULTS = Path(__file__).parent / "results"
DENSE = 2**25  # one dense pass per batch on Beauty: the earlier default
SIZES = (DENSE, 2**22, 2**20)  # scores held at once
MODELS = {"bert4rec": {}, "sasrec": {"architecture": "original", "loss": "ce"}}


def measure(model_name: str, test, n_items: int, exclude: bool, repeats: int) -> dict:
    torch.manual_seed(0)
    model = build_model(model_name, n_items=n_items, max_len=50, **MODELS[model_name]).eval()
    seconds: dict[int, list[float]] = {size: [] for size in SIZES}
    ranks: dict[int, np.ndarray] = {}
    for _ in range(repeats):
        for size in SIZES:
            evaluator = Evaluator(test, FullRanking(exclude), n_items, max_scores=size)
            start = time.perf_counter()
            ranks[size] = evaluator.ranks(model)
            seconds[size].append(time.perf_counter() - start)
    medians = {size: float(np.median(values)) for size, values in seconds.items()}
    row = {
        "model": model_name, "exclude_history": exclude,
        "median_s": medians, "seconds": seconds,
        "ratio_to_dense": {size: medians[size] / medians[DENSE] for size in SIZES},
        "users_with_other_ranks": {
            size: int((ranks[size] != ranks[DENSE]).any(axis=1).sum()) for size in SIZES
        },
    }  # fmt: skip
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/beauty/beauty.txt"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    keep_freed_memory()  # as `seqrec train` and `seqrec evaluate` do
    corpus = build_corpus(read_interactions(args.data))
    test = leave_one_out(corpus).test
    rows = [
        measure(name, test, corpus.n_items, exclude, args.repeats)
        for name in MODELS
        for exclude in (False, True)
    ]
    RESULTS.mkdir(exist_ok=True)
    report = {"torch_threads": torch.get_num_threads(), "users": len(test), "rows": rows}
    (RESULTS / "eval_blocks.json").write_text(json.dumps(report, indent=2) + "\n")
    header = " | ".join(f"max_scores 2^{size.bit_length() - 1} s" for size in SIZES)
    lines = [
        f"| model | history | {header} | users with other ranks |",
        "|---|---|" + "---|" * (len(SIZES) + 1),
    ]
    for r in rows:
        cells = " | ".join(f"{r['median_s'][s]:.2f} ({r['ratio_to_dense'][s]:.2f}x)" for s in SIZES)
        history = "excluded" if r["exclude_history"] else "kept"
        other = max(r["users_with_other_ranks"].values())
        lines.append(f"| {r['model']} | {history} | {cells} | {other} |")
    (RESULTS / "eval_blocks.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
