"""DIEN training on ml-100k: where a step's time goes, and the least its matrix products need.

At the sizes and samples of ``vs_recbole.py --models dien`` (RecBole's DIEN.yaml sizes, every
prefix of every training sequence a click with one uniform non-click, 128 windows = 256 samples a
step), the script times full training steps (forward, backward, Adam) on random batches of the
real windows, counts their FLOPs, and records every matrix product of one step per batch. It then
replays those products alone, back to back, each at its best of ``--replays`` runs: their sum is
what this machine needs for the float32 products of a step, with PyTorch's kernels at their best
moment, before anything else (the GRU's elementwise steps, activations, softmax, optimizer) runs.
Scaled to one epoch's steps, that is set beside RecBole's epoch with anomaly detection off (read
from ``vs_recbole``'s saved results when present) and the 1/3 of it aimed for.

    python benchmarks/dien_floor.py [--batches 8] [--replays 5]
        [--data-dir ../shared/data/ml-100k]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

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

sys.path.insert(0, str(Path(__file__).parent))
from eval_floor import PRODUCT_OPS, RecordCalls, replay_seconds
from training_throughput import matmul_peak
from vs_recbole_dien import RECBOLE_SIZES, SEQREC_TRAINING

RESULTS = Path(__file__).parent / "results"
RECBOLE_RESULTS = ("vs_recbole_dien.json", "recbole_dien_quiet.json")  # RecBole's epoch


def recbole_epoch_seconds() -> float | None:
    for name in RECBOLE_RESULTS:
        path = RESULTS / name
        if path.exists():
            off = json.loads(path.read_text())["raw"]["dien"]["recbole_off"]
            return float(np.median([e["train_seconds"] for e in off["epochs"]]))
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/ml-100k"))
    parser.add_argument("--batches", type=int, default=8, help="random batches measured")
    parser.add_argument("--replays", type=int, default=5, help="runs of each product (best)")
    args = parser.parse_args()
    keep_freed_memory()  # as `seqrec train` does
    corpus = build_corpus(read_interactions(next(args.data_dir.glob("*.inter"))))
    train = leave_one_out(corpus).train
    torch.manual_seed(0)
    model = build_model(
        "dien", n_items=corpus.n_items, n_users=corpus.n_users, user_embedding=True,
        history_sum=True, **RECBOLE_SIZES,
    ).train()  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=SEQREC_TRAINING["lr"])
    windows, users = training_windows(train, model.train_seq_len, 1, prefixes=True)
    batch_size = SEQREC_TRAINING["batch_size"]
    steps_per_epoch = -(-len(windows) // batch_size)
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)

    def step(batch: SequenceBatch) -> None:
        optimizer.zero_grad(set_to_none=True)
        model.calculate_loss(batch, generator).backward()
        optimizer.step()

    def random_batch() -> SequenceBatch:
        rows = rng.choice(len(windows), batch_size, replace=False)
        return SequenceBatch(torch.from_numpy(windows[rows]), torch.from_numpy(users[rows]))

    for _ in range(3):  # warm-up: allocator, thread pool
        step(random_batch())
    step_s, products_s, gflop = [], [], []
    for _ in range(args.batches):
        batch = random_batch()
        start = time.perf_counter()
        step(batch)
        step_s.append(time.perf_counter() - start)
        with FlopCounterMode(display=False) as counter:
            step(batch)
        counts = counter.get_flop_counts()["Global"]
        gflop.append(sum(f for op, f in counts.items() if op in PRODUCT_OPS) / 1e9)
        recorder = RecordCalls()
        with recorder:
            step(batch)
        products_s.append(replay_seconds(recorder.calls, "product", args.replays))
    peak = matmul_peak()
    recbole_s = recbole_epoch_seconds()
    row = {
        "torch_threads": torch.get_num_threads(),
        "windows_per_epoch": len(windows),
        "steps_per_epoch": steps_per_epoch,
        "step_s": float(np.median(step_s)),
        "product_gflop_per_step": float(np.mean(gflop)),
        "products_alone_s_per_step": float(np.mean(products_s)),
        "matmul_peak_gflops": peak,
        "epoch_s": float(np.median(step_s)) * steps_per_epoch,
        "epoch_products_alone_s": float(np.mean(products_s)) * steps_per_epoch,
        "epoch_products_at_peak_s": float(np.mean(gflop)) * steps_per_epoch / peak,
        "recbole_off_epoch_s": recbole_s,
        "target_epoch_s": None if recbole_s is None else recbole_s / 3,
    }
    print(json.dumps(row, indent=2), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dien_floor.json").write_text(json.dumps(row, indent=2) + "\n")
    table = markdown(row)
    (RESULTS / "dien_floor.md").write_text(table)
    print(table)


def markdown(r: dict[str, Any]) -> str:
    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    products = r["epoch_products_alone_s"]
    gflops = r["product_gflop_per_step"] / r["products_alone_s_per_step"]
    return "\n".join([
        f"Matmul peak (2048^2 float32, {r['torch_threads']} threads): "
        f"{r['matmul_peak_gflops']:.0f} GFLOP/s; {r['steps_per_epoch']} steps of "
        f"{SEQREC_TRAINING['batch_size']} windows an epoch",
        "",
        "| DIEN, one epoch | s |",
        "|---|---|",
        f"| seqrec training (median step x steps) | {s(r['epoch_s'])} |",
        f"| its matrix products alone ({gflops:.0f} GFLOP/s) | {s(products)} |",
        f"| its matrix products at peak | {s(r['epoch_products_at_peak_s'])} |",
        f"| everything else (training - products alone) | {s(r['epoch_s'] - products)} |",
        f"| RecBole, anomaly detection off | {s(r['recbole_off_epoch_s'])} |",
        f"| target (1/3 of RecBole) | {s(r['target_epoch_s'])} |",
    ]) + "\n"  # fmt: skip


if __name__ == "__main__":
    main()
