"""Data-parallel scaling: training sequences per second on 1 and 2 processes (Lightning DDP).

SASRec as in ``configs/sasrec-ml-100k.yaml`` on ml-100k, through the Trainer every run uses
(``make_trainer``), for a fixed number of optimizer steps; the first steps (start-up, allocator)
are not timed. Two processes run twice: with the one process's batch split between them (the
same global batch, so the same steps) and with the one process's batch each (twice the global
batch). One process runs with every core's thread and with one thread, as each of two processes
gets (Lightning gives each process its share of the cores): on a busy machine, threads of one
process that wait for each other cost more than the second process. Each configuration runs in
its own ``python`` process, ``--repeats`` times in turn, and the fastest run of each counts (the
slower ones measure the neighbours); with ``--devices 2`` Lightning's launcher starts the second
process, as ``seqrec train`` does. Besides the speed, the all-reduce
of each step is counted from the model: DDP averages every parameter's float32 gradient once per
step, in buckets (1 MiB first, then up to 25 MiB); a ring all-reduce sends and receives
2 (N - 1) / N times those bytes per process.

    python benchmarks/ddp_scaling.py [--data PATH] [--steps 40] [--warmup 5] [--batch-size 256]
        [--repeats 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from seqrec.config import load_config
from seqrec.training.allocator import keep_freed_memory
from seqrec.training.data import WindowDataModule
from seqrec.training.fit import make_trainer, seed_everything
from seqrec.training.module import SeqRecModule

ROOT = Path(__file__).parents[1]
RESULTS = Path(__file__).parent / "results"
CONFIG = ROOT / "configs" / "sasrec-ml-100k.yaml"
FIRST_BUCKET, BUCKET = 1 << 20, 25 << 20  # DDP's default bucket caps (bytes)


class StepTimer(Callback):
    """Wall time from the start of step ``warmup`` to the end of the last step (rank 0)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.end = time.perf_counter()


def gradient_bytes(model: torch.nn.Module) -> tuple[int, int, int]:
    """(parameters, float32 gradient bytes, DDP buckets) of what one step all-reduces."""
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    size = 4 * params
    buckets = 1 + max(0, -(-(size - FIRST_BUCKET) // BUCKET))
    return params, size, buckets


def worker(args: argparse.Namespace) -> None:
    """One configuration: train ``warmup + steps`` steps on ``devices`` processes, print JSON."""
    keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    from seqrec.pipeline import build_run_model
    from seqrec.training.prepare import prepare_data

    config = load_config(CONFIG, [f"data.dataset={args.data}"])
    training = dataclasses.replace(
        config.training, batch_size=args.batch_size, max_steps=args.warmup + args.steps,
        devices=args.devices, strategy="ddp" if args.devices > 1 else "auto",
        accelerator="cpu", progress_bar=False,
    )  # fmt: skip
    data = prepare_data(config.data)
    seed_everything(training.seed)
    model = build_run_model(config, data)
    windows = WindowDataModule(
        data.split.train, model.train_seq_len, training.batch_size, training.seed,
        training.window_step,
    )  # fmt: skip
    timer = StepTimer(args.warmup)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = make_trainer(training, Path(run_dir), [timer], windows.batches_per_epoch())
        module = SeqRecModule(model, training, total_steps=training.max_steps)
        trainer.fit(module, datamodule=windows)
    if trainer.is_global_zero:
        seconds = timer.end - timer.start
        row = {
            "processes": args.devices, "batch_per_process": args.batch_size,
            "global_batch": args.batch_size * args.devices, "threads": torch.get_num_threads(),
            "steps": args.steps, "seconds": round(seconds, 2),
            "step_ms": round(1000 * seconds / args.steps, 1),
            "sequences_per_s": round(args.batch_size * args.devices * args.steps / seconds),
        }  # fmt: skip
        params, size, buckets = gradient_bytes(model)
        row |= {"parameters": params, "allreduce_bytes": size, "buckets": buckets}
        print("RESULT " + json.dumps(row), flush=True)


def run(args: argparse.Namespace, devices: int, batch: int, threads: int = 0) -> dict:
    command = [
        sys.executable, __file__, "--worker", "--devices", str(devices), "--batch-size",
        str(batch), "--steps", str(args.steps), "--warmup", str(args.warmup), "--data", args.data,
        "--threads", str(threads),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=os.environ)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    row = json.loads(lines[0].removeprefix("RESULT "))
    print(row, flush=True)
    return row


def table(rows: list[dict]) -> list[str]:
    """Rows 0 and 1 are one process with all threads and with one: the two baselines."""
    lines = [
        "| processes | batch per process | global batch | threads per process | ms per step "
        "| sequences/s | vs 1 process, all threads | vs 1 process, 1 thread |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['processes']} | {r['batch_per_process']} | {r['global_batch']} | {r['threads']} "
        f"| {r['step_ms']} | {r['sequences_per_s']:,} "
        f"| {r['sequences_per_s'] / rows[0]['sequences_per_s']:.2f}x "
        f"| {r['sequences_per_s'] / rows[1]['sequences_per_s']:.2f}x |"
        for r in rows
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/ml-100k/ml-100k.inter"))
    parser.add_argument("--batch-size", type=int, default=256, help="one process's batch")
    parser.add_argument("--steps", type=int, default=40, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before them")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each configuration")
    parser.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    b = args.batch_size
    setups = [(1, b, 0), (1, b, 1), (2, b // 2, 0), (2, b, 0)]  # (processes, batch, threads)
    runs = [[run(args, *setup) for setup in setups] for _ in range(args.repeats)]
    rows = [max(tried, key=lambda r: r["sequences_per_s"]) for tried in zip(*runs, strict=True)]
    reduce = rows[0]
    report = {
        "cpu_count": os.cpu_count(), "config": str(CONFIG.relative_to(ROOT)),
        "load_average": os.getloadavg(), "rows": rows, "runs": runs,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ddp_scaling.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# Data-parallel scaling: SASRec on ml-100k ({CONFIG.relative_to(ROOT)}), "
        f"{os.cpu_count()} CPU cores, gloo",
        "",
        f"{args.steps} timed steps after {args.warmup} untimed ones, through `make_trainer`; "
        f"the fastest of {args.repeats} runs of each row, taken in turn; load average "
        f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min) at the end.",
        "",
        *table(rows),
        "",
        f"Per step, DDP all-reduces the float32 gradients of all {reduce['parameters']:,} "
        f"parameters: {reduce['allreduce_bytes'] / 2**20:.2f} MiB in {reduce['buckets']} "
        "bucket(s), whatever the batch (the item embedding's gradient is dense). A ring "
        "all-reduce sends and receives 2 (N - 1) / N of that per process: "
        f"{reduce['allreduce_bytes'] / 2**20:.2f} MiB each way at N = 2. Once per epoch the "
        "loss (2 floats) and each validation's per-user ranks are gathered besides.",
    ]
    (RESULTS / "ddp_scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
