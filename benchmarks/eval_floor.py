"""Full-sort evaluation on ml-100k: where the time goes, and the least its matrix products need.

For BERT4Rec and SASRec at the sizes of ``vs_recbole.py`` (random weights: the cost does not depend
on them), the script times ``Evaluator.evaluate`` on the 943 test users with their history kept as
candidates, as in that benchmark's (c), counts its FLOPs and records every matrix product and
attention call of one pass. It then replays those calls alone, back to back, each at its best of
``--replays`` runs, on the same inputs: their sum is what this machine needs, with PyTorch's
kernels at their best moment, for the float32 products and attention of the evaluation before
anything else (norms, activations, scoring, ranking, metrics) is done. FLOPs are the products'
(``FlopCounterMode`` has no formula for the CPU attention kernel). RecBole's evaluation time is
read from ``vs_recbole``'s saved results when present, and 1/5 of it, the speed aimed for, is set
beside that figure.

    python benchmarks/eval_floor.py [--repeats 7] [--replays 15]
        [--data-dir ../shared/data/ml-100k]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from seqrec.data.corpus import build_corpus
from seqrec.data.readers import read_interactions
from seqrec.data.splits import leave_one_out
from seqrec.evaluation.evaluator import Evaluator
from seqrec.evaluation.protocols import FullRanking
from seqrec.models import build_model
from seqrec.training.allocator import keep_freed_memory

sys.path.insert(0, str(Path(__file__).parent))
from training_throughput import SIZES, matmul_peak

RESULTS = Path(__file__).parent / "results"
MODELS = ("bert4rec", "sasrec")
RECBOLE_RESULTS = ("vs_recbole_bert4rec_sasrec.json",)  # where RecBole's (c) times are read
aten = torch.ops.aten
PRODUCT_OPS = (aten.addmm, aten.mm, aten.bmm, aten.baddbmm)
PRODUCTS = {op.default for op in PRODUCT_OPS}
ATTENTION = {
    aten._scaled_dot_product_flash_attention_for_cpu.default,
    aten._scaled_dot_product_attention_math.default,
}


class RecordCalls(TorchDispatchMode):
    """Keeps a copy of the inputs of every matrix product and attention call it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any, tuple, dict]] = []

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        kind = "product" if func in PRODUCTS else "attention" if func in ATTENTION else None
        if kind is not None:
            copy = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
            self.calls.append((kind, func, copy, dict(kwargs)))
        return func(*args, **kwargs)


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: allocator, thread pool
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def replay_seconds(calls: list[tuple[str, Any, tuple, dict]], kind: str, repeats: int) -> float:
    """Sum over the calls of ``kind`` of each call's best time alone."""
    total = 0.0
    for call_kind, func, args, kwargs in calls:
        if call_kind != kind:
            continue
        func(*args, **kwargs)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            func(*args, **kwargs)
            best = min(best, time.perf_counter() - start)
        total += best
    return total


def recbole_eval_seconds(model: str) -> float | None:
    for name in RECBOLE_RESULTS:
        path = RESULTS / name
        if path.exists():
            raw = json.loads(path.read_text())["raw"].get(model)
            if raw:
                return float(raw["recbole_off"]["test"]["eval_seconds"])
    return None


def measure(
    model_name: str, evaluator: Evaluator, n_items: int, repeats: int, replays: int
) -> dict[str, Any]:
    torch.manual_seed(0)
    model = build_model(model_name, n_items=n_items, **SIZES).eval()
    evaluate_s = median_seconds(lambda: evaluator.evaluate(model), repeats)
    ranks_s = median_seconds(lambda: evaluator.ranks(model), repeats)
    with FlopCounterMode(display=False) as counter:
        evaluator.ranks(model)
    recorder = RecordCalls()
    with recorder:
        evaluator.ranks(model)
    products_s = replay_seconds(recorder.calls, "product", replays)
    attention_s = replay_seconds(recorder.calls, "attention", replays)
    counts = counter.get_flop_counts()["Global"]
    product_flops = sum(flops for op, flops in counts.items() if op in PRODUCT_OPS)
    recbole_s = recbole_eval_seconds(model_name)
    row = {
        "model": model_name,
        "evaluate_s": evaluate_s,
        "ranks_s": ranks_s,
        "product_gflop": product_flops / 1e9,
        "product_calls": sum(kind == "product" for kind, *_ in recorder.calls),
        "products_alone_s": products_s,
        "attention_alone_s": attention_s,
        "recbole_eval_s": recbole_s,
        "target_s": None if recbole_s is None else recbole_s / 5,
    }
    print(json.dumps(row), flush=True)
    return row


def markdown(rows: list[dict[str, Any]], peak: float) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1e3:.0f}"

    lines = [
        f"Matmul peak (2048^2 float32, {torch.get_num_threads()} threads): {peak:.0f} GFLOP/s",
        "",
        "| model | evaluate ms | of which ranks ms | products GFLOP | products alone ms "
        "(GFLOP/s) | products at peak ms | attention alone ms | products + attention alone ms "
        "| RecBole ms | target (1/5) ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        products = r["products_alone_s"]
        lines.append(
            f"| {r['model']} | {ms(r['evaluate_s'])} | {ms(r['ranks_s'])} "
            f"| {r['product_gflop']:.2f} "
            f"| {ms(products)} ({r['product_gflop'] / products:.0f}) "
            f"| {r['product_gflop'] / peak * 1e3:.0f} | {ms(r['attention_alone_s'])} "
            f"| {ms(products + r['attention_alone_s'])} "
            f"| {ms(r['recbole_eval_s'])} | {ms(r['target_s'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/ml-100k"))
    parser.add_argument("--repeats", type=int, default=7, help="timed evaluations (median)")
    parser.add_argument("--replays", type=int, default=15, help="runs of each call (best)")
    args = parser.parse_args()
    keep_freed_memory()  # as `seqrec evaluate` does
    corpus = build_corpus(read_interactions(next(args.data_dir.glob("*.inter"))))
    test = leave_one_out(corpus).test
    evaluator = Evaluator(test, FullRanking(exclude_history=False), corpus.n_items)
    rows = [measure(name, evaluator, corpus.n_items, args.repeats, args.replays) for name in MODELS]
    peak = matmul_peak()
    RESULTS.mkdir(exist_ok=True)
    report = {"torch_threads": torch.get_num_threads(), "matmul_peak_gflops": peak, "rows": rows}
    (RESULTS / "eval_floor.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(rows, peak)
    (RESULTS / "eval_floor.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
