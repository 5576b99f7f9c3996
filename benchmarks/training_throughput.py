"""Training throughput: sequences per second and the share of this machine's matmul peak.

For each model (ml-100k sizes: 1,682 items, max_len 50, hidden 64, 2 layers, 2 heads, batch 256),
one training step (loss, backward, Adam) is timed over real training windows; its floating-point
work is counted by ``torch.utils.flop_counter.FlopCounterMode`` (forward + backward matmuls and
attention). The peak is a large float32 matmul measured in the same run, with the same threads.

    python benchmarks/training_throughput.py [--data ../shared/data/ml-100k/ml-100k.inter]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import build_corpus
from seqrec.data.readers import read_interactions
from seqrec.data.splits import leave_one_out
from seqrec.models import build_model
from seqrec.training.allocator import keep_freed_memory
from seqrec.training.data import training_windows

RESULTS = Path(__file__).parent / "results"
SIZES = {"max_len": 50, "hidden_size": 64, "n_layers": 2, "n_heads": 2, "inner_size": 256}
MODELS = {
    "bert4rec": {},
    "sasrec (ce)": {"architecture": "recbole", "loss": "ce"},
    "sasrec (bce)": {"architecture": "recbole", "loss": "bce"},
}


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    """Best float32 GFLOP/s of a size x size matmul."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def measure(name: str, options: dict, n_items: int, train, batch_size: int, steps: int) -> dict:
    model = build_model(name.split()[0], n_items=n_items, **SIZES, **options)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    windows, _ = training_windows(train, model.train_seq_len, 10)
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)

    def batch() -> SequenceBatch:
        rows = rng.choice(len(windows), batch_size, replace=False)
        return SequenceBatch(item_seq=torch.from_numpy(windows[rows]))

    def step(b: SequenceBatch) -> None:
        optimizer.zero_grad(set_to_none=True)
        model.calculate_loss(b, generator).backward()
        optimizer.step()

    model.train()
    for _ in range(3):
        step(batch())
    with FlopCounterMode(display=False) as counter:
        step(batch())
    flops = counter.get_total_flops()
    batches = [batch() for _ in range(steps)]
    times = [_timed(lambda b=b: step(b)) for b in batches]
    seconds = float(np.median(times))
    return {
        "model": name, "batch": batch_size, "step_ms": round(1000 * seconds, 1),
        "sequences_per_s": round(batch_size / seconds), "gflop_per_step": round(flops / 1e9, 2),
        "achieved_gflops": round(flops / seconds / 1e9, 1),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/ml-100k/ml-100k.inter")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args()
    keep_freed_memory()  # as `seqrec train` does
    corpus = build_corpus(read_interactions(args.data))
    train = leave_one_out(corpus).train
    peak = matmul_peak()
    rows = [
        measure(name, options, corpus.n_items, train, args.batch_size, args.steps)
        for name, options in MODELS.items()
    ]
    for row in rows:
        row["share_of_peak"] = round(row["achieved_gflops"] / peak, 3)
        print(row)
    report = {
        "threads": torch.get_num_threads(),
        "matmul_peak_gflops": round(peak, 1),
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "training_throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"Matmul peak (2048^2 float32, {torch.get_num_threads()} threads): {peak:.1f} GFLOP/s",
        "",
        "| model | batch | step ms | sequences/s | GFLOP/step | GFLOP/s | share of peak |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['batch']} | {r['step_ms']} | {r['sequences_per_s']:,} "
        f"| {r['gflop_per_step']} | {r['achieved_gflops']} | {r['share_of_peak']:.1%} |"
        for r in rows
    ]
    (RESULTS / "training_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
