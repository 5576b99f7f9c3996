"""Full-ranking evaluation throughput: every Beauty user ranked over the whole catalogue.

A random-score model isolates the evaluator's own cost (history masking, counted ranks, metrics).
Users are processed in chunks, so peak memory is bounded by batch_size x n_items scores; the script
reports users per second and the peak resident memory of the process.

    python benchmarks/full_ranking.py [--data PATH_TO_beauty.txt] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import build_corpus
from seqrec.data.readers import read_interactions
from seqrec.data.splits import leave_one_out
from seqrec.evaluation.evaluator import Evaluator
from seqrec.evaluation.protocols import FullRanking, SampledRanking

RESULTS = Path(__file__).parent / "results"


class RandomScores(nn.Module):
    """Scores drawn from a seeded generator; the cheapest possible model."""

    max_len = 50

    def __init__(self, n_items: int) -> None:
        super().__init__()
        self.n_items = n_items
        self.generator = torch.Generator().manual_seed(0)

    def full_sort_predict(self, batch: SequenceBatch) -> Tensor:
        return torch.rand(len(batch), self.n_items + 1, generator=self.generator)

    def predict(self, batch: SequenceBatch, items: Tensor) -> Tensor:
        return torch.rand(items.shape, generator=self.generator)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/beauty/beauty.txt")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    corpus = build_corpus(read_interactions(args.data))
    split = leave_one_out(corpus)
    model = RandomScores(corpus.n_items)
    rss_before = peak_rss_mib()
    rows = []
    for protocol in (
        FullRanking(),
        FullRanking(exclude_history=False),
        SampledRanking(100, "popular"),
    ):
        start = time.perf_counter()
        evaluator = Evaluator(split.test, protocol, corpus.n_items, corpus.item_counts(),
                              batch_size=args.batch_size)  # fmt: skip
        setup = time.perf_counter() - start
        start = time.perf_counter()
        result = evaluator.evaluate(model)
        seconds = time.perf_counter() - start
        rows.append({
            "protocol": protocol.name, "users": len(split.test), "items": corpus.n_items,
            "setup_s": round(setup, 2), "eval_s": round(seconds, 2),
            "users_per_s": round(len(split.test) / seconds), "HR@10": round(result["HR@10"], 5),
            "peak_rss_mib": round(peak_rss_mib()),
        })  # fmt: skip
        print(rows[-1])
    dense_mib = len(split.test) * (corpus.n_items + 1) * 4 / 2**20
    report = {
        "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(),
        "rss_before_eval_mib": round(rss_before),
        "dense_users_x_items_float32_mib": round(dense_mib),
        "runs": rows,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "full_ranking.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| protocol | users | items | eval s | users/s | HR@10 (random) | peak RSS MiB |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    lines += [
        f"| {r['protocol']} | {r['users']:,} | {r['items']:,} | {r['eval_s']} "
        f"| {r['users_per_s']:,} "
        f"| {r['HR@10']} | {r['peak_rss_mib']} |"
        for r in rows
    ]
    lines.append(f"\nA dense users x items float32 matrix would take {dense_mib:,.0f} MiB.")
    (RESULTS / "full_ranking.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
