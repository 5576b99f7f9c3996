"""Full softmax cross-entropy at Beauty's 54,542 items: dense ``F.cross_entropy`` against the
chunked path of ``seqrec.losses.full_softmax_ce``, one training step (forward + backward) each.

Two target counts of a batch of 256 windows of 50 items at D = 64: SASRec's every position
(12,800 targets, no output bias) and BERT4Rec's 20% masked (2,560 targets, with its item bias).
Both are above ``MAX_LOGITS`` (2**26), so the models take the chunked path on their own.

Time: the two variants alternate in one process (after one warm-up step each); the median of
``--repeats`` steps of each is reported with their ratio, and the median of the per-repeat
ratios chunked / dense (each pair ran back to back, so a burst of load on the shared machine
hits both sides of a pair rather than one variant's median). Memory: each variant runs one step
in a fresh subprocess; the peak is the kernel's high-water mark of resident memory (``VmHWM``,
reset through ``/proc/self/clear_refs`` once the inputs exist) minus the resident memory at that
moment, so it counts what the step itself allocates (logits, their gradient, the weight
gradient). Both processes set glibc's allocator as ``seqrec train`` does.

    python benchmarks/chunked_ce.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seqrec.losses import MAX_LOGITS, full_softmax_ce
from seqrec.training.allocator import keep_freed_memory

RESULTS = Path(__file__).parent / "results"
N_ITEMS, DIM = 54_542, 64
CASES = {"sasrec_all_positions": (256 * 50, False), "bert4rec_masked_20pct": (256 * 10, True)}
VARIANTS = ("dense", "chunked")


def inputs(case: str) -> tuple[torch.Tensor, ...]:
    """Hidden states (N, D), item table (V, D), bias (V,) or None, targets (N,): seeded."""
    n, with_bias = CASES[case]
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(n, DIM, generator=gen).requires_grad_()
    weight = (0.1 * torch.randn(N_ITEMS, DIM, generator=gen)).requires_grad_()
    bias = torch.zeros(N_ITEMS).requires_grad_() if with_bias else None
    targets = torch.randint(0, N_ITEMS, (n,), generator=gen)
    return hidden, weight, bias, targets


def step(variant: str, hidden, weight, bias, targets) -> float:
    """One forward + backward; returns the loss."""
    if variant == "dense":
        loss = F.cross_entropy(F.linear(hidden, weight, bias), targets)
    else:
        loss = full_softmax_ce(hidden, weight, bias, targets)
    loss.backward()
    for tensor in (hidden, weight, bias):
        if tensor is not None:
            tensor.grad = None
    return float(loss.detach())


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(case: str, variant: str) -> None:
    """One step in this fresh process; prints the step's peak resident memory (MiB)."""
    keep_freed_memory()
    tensors = inputs(case)
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status_kib("VmRSS")
    step(variant, *tensors)
    print(json.dumps({"peak_step_mib": (_status_kib("VmHWM") - before) / 1024}))


def peak_memory(case: str, variant: str) -> float:
    command = [sys.executable, __file__, "--child", case, variant]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])["peak_step_mib"]


def timings(case: str, repeats: int) -> dict[str, list[float]]:
    tensors = inputs(case)
    losses = {v: step(v, *tensors) for v in VARIANTS}  # warm-up, and the two losses agree
    assert abs(losses["dense"] - losses["chunked"]) < 1e-4, losses
    seconds: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(repeats):
        for variant in VARIANTS:
            start = time.perf_counter()
            step(variant, *tensors)
            seconds[variant].append(time.perf_counter() - start)
    return seconds


def measure(case: str, repeats: int) -> dict:
    n, with_bias = CASES[case]
    seconds = timings(case, repeats)
    medians = {v: float(np.median(s)) for v, s in seconds.items()}
    pairs = np.array(seconds["chunked"]) / np.array(seconds["dense"])  # one ratio per repeat
    memory = {v: round(peak_memory(case, v)) for v in VARIANTS}
    row = {
        "case": case, "targets": n, "items": N_ITEMS, "dim": DIM, "bias": with_bias,
        "logits": n * N_ITEMS, "chunks": -(-n * N_ITEMS // MAX_LOGITS),
        "median_s": medians, "seconds": seconds, "peak_step_mib": memory,
        "time_ratio_chunked_to_dense": medians["chunked"] / medians["dense"],
        "paired_time_ratio_median": float(np.median(pairs)),
        "min_s": {v: min(s) for v, s in seconds.items()},
        "memory_ratio_chunked_to_dense": memory["chunked"] / memory["dense"],
    }  # fmt: skip
    print(json.dumps(row), flush=True)
    return row


def write(rows: list[dict], repeats: int) -> None:
    RESULTS.mkdir(exist_ok=True)
    report = {
        "torch_threads": torch.get_num_threads(), "max_logits": MAX_LOGITS, "repeats": repeats,
        "memory_method": "VmHWM - VmRSS of one step in a fresh process (clear_refs reset)",
        "rows": rows,
    }  # fmt: skip
    (RESULTS / "chunked_ce.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "| case | targets | logits | dense s | chunked s | ratio of medians "
        "| median of paired ratios | dense peak MiB | chunked peak MiB | memory ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['case']} | {r['targets']:,} | {r['logits'] / 1e6:.0f}M "
        f"| {r['median_s']['dense']:.2f} | {r['median_s']['chunked']:.2f} "
        f"| {r['time_ratio_chunked_to_dense']:.2f} | {r['paired_time_ratio_median']:.2f} "
        f"| {r['peak_step_mib']['dense']:,} "
        f"| {r['peak_step_mib']['chunked']:,} | {r['memory_ratio_chunked_to_dense']:.2f} |"
        for r in rows
    ]
    (RESULTS / "chunked_ce.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--child", nargs=2, metavar=("CASE", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    keep_freed_memory()  # as `seqrec train` does
    write([measure(case, args.repeats) for case in CASES], args.repeats)


if __name__ == "__main__":
    main()
