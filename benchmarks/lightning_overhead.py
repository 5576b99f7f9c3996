"""What Lightning costs: one training epoch through ``SeqRecModule`` against a bare PyTorch loop.

Both run the same model from the same initial weights over the same batches (``WindowDataModule``)
with the same optimiser, schedule and gradient clipping; validation is off in both. Lightning's
epoch is timed from its first batch to the end of the epoch (the Trainer's one-off set-up is
reported apart). Repeats alternate the order and the fastest of each is compared, as ``timeit``
does: on a machine shared with other processes the slower repeats measure the neighbours.

    python benchmarks/lightning_overhead.py [--config A.yaml B.yaml] [--repeats N]
        [--small-batch 32] [a.b=c ...]

Small batches make short steps, where a fixed per-step cost weighs the most.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from seqrec import models
from seqrec.batch import SequenceBatch
from seqrec.config import TrainingConfig, load_config
from seqrec.training.allocator import keep_freed_memory
from seqrec.training.data import WindowDataModule
from seqrec.training.fit import make_trainer, seed_everything
from seqrec.training.module import SeqRecModule, parameter_groups, warmup_linear_decay
from seqrec.training.prepare import prepare_data

RESULTS = Path(__file__).parent / "results"
Times = tuple[float, float]  # (wall, CPU) seconds


def bare_epoch(model: torch.nn.Module, data: WindowDataModule, cfg: TrainingConfig) -> Times:
    """One epoch of the loop Lightning runs, written by hand."""
    loader = data.train_dataloader()
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg.weight_decay), lr=cfg.lr)
    schedule = warmup_linear_decay(cfg.warmup_steps, len(loader) * cfg.epochs)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    generator = torch.Generator().manual_seed(cfg.seed)
    model.train()
    loss_sum = torch.zeros(())
    start, cpu = time.perf_counter(), time.process_time()
    for batch in loader:
        loss = model.calculate_loss(batch, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
        optimizer.step()
        scheduler.step()
        loss_sum += loss.detach()
    float(loss_sum)  # the one host sync Lightning's epoch-end logging also makes
    return time.perf_counter() - start, time.process_time() - cpu


class EpochTimer(Callback):
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start, self.cpu = time.perf_counter(), time.process_time()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.times = time.perf_counter() - self.start, time.process_time() - self.cpu


def lightning_epoch(
    model: torch.nn.Module, data: WindowDataModule, cfg: TrainingConfig
) -> tuple[Times, float]:
    """(epoch times, whole ``fit`` wall seconds) through the Trainer every run uses."""
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = make_trainer(cfg, Path(run_dir), [timer], data.batches_per_epoch())
        module = SeqRecModule(model, cfg, total_steps=data.batches_per_epoch() * cfg.epochs)
        start = time.perf_counter()
        trainer.fit(module, datamodule=data)
        total = time.perf_counter() - start
    return timer.times, total


def _best(times: list[Times]) -> Times:
    """Fastest repeat (as ``timeit`` reports): the one least disturbed by other processes."""
    return min(t[0] for t in times), min(t[1] for t in times)


class NullModel(torch.nn.Module):
    """One weight and a loss that costs nothing: what is left of a step is the loop's own cost."""

    def __init__(self, train_seq_len: int) -> None:
        super().__init__()
        self.train_seq_len = train_seq_len
        self.weight = torch.nn.Parameter(torch.ones(()))

    def calculate_loss(self, batch: SequenceBatch, generator: torch.Generator) -> torch.Tensor:
        return (self.weight * batch.item_seq[:, -1].float().mean()) ** 2


def _alternate(
    initial: torch.nn.Module, data: WindowDataModule, cfg: TrainingConfig, repeats: int
) -> tuple[list[Times], list[Times], list[float]]:
    bare, light, fits = [], [], []
    for repeat in range(repeats):
        order = ("bare", "lightning") if repeat % 2 == 0 else ("lightning", "bare")
        for kind in order:
            seed_everything(cfg.seed)
            model = copy.deepcopy(initial)
            if kind == "bare":
                bare.append(bare_epoch(model, data, cfg))
            else:
                epoch, fit_seconds = lightning_epoch(model, data, cfg)
                light.append(epoch)
                fits.append(fit_seconds)
    return bare, light, fits


def measure(config_path: str, overrides: list[str], repeats: int, null: bool = False) -> dict:
    """Alternating repeats of a bare and a Lightning epoch of one config (or of ``NullModel``)."""
    config = load_config(config_path, ["training.epochs=1", *overrides])
    cfg = config.training
    seed_everything(cfg.seed)
    prepared = prepare_data(config.data)
    n_items = prepared.corpus.n_items
    initial = models.build_model(config.model.name, n_items=n_items, **config.model.kwargs())
    if null:
        initial = NullModel(initial.train_seq_len)
    data = WindowDataModule(
        prepared.split.train, initial.train_seq_len, cfg.batch_size, cfg.seed,
        cfg.window_step, cfg.dupe_factor, cfg.num_workers,
    )  # fmt: skip
    bare, light, fits = _alternate(initial, data, cfg, repeats)
    (bw, bc), (lw, lc) = _best(bare), _best(light)
    return {
        "config": config_path, "overrides": overrides,
        "model": "null" if null else config.model.name,
        "batch_size": cfg.batch_size, "steps_per_epoch": data.batches_per_epoch(),
        "bare_epoch_wall_cpu_s": bare, "lightning_epoch_wall_cpu_s": light,
        "lightning_fit_wall_s": fits, "bare_wall_s": bw, "bare_cpu_s": bc,
        "lightning_wall_s": lw, "lightning_cpu_s": lc,
        "ratio_wall": lw / bw, "ratio_cpu": lc / bc, "setup_s": statistics.median(fits) - lw,
    }  # fmt: skip


def _row(r: dict) -> str:
    steps = r["steps_per_epoch"]
    return (
        f"| `{r['config']}` | {r['model']} | {r['batch_size']} | {steps} | "
        f"{1000 * r['bare_wall_s'] / steps:.1f} | {1000 * r['lightning_wall_s'] / steps:.1f} | "
        f"{1000 * (r['lightning_wall_s'] - r['bare_wall_s']) / steps:+.1f} | "
        f"{r['ratio_wall']:.3f} | {r['ratio_cpu']:.3f} |"
    )


def report(results: list[dict], null: dict, repeats: int, tuned: bool) -> None:
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "threads": torch.get_num_threads(), "repeats": repeats, "allocator_tuned": tuned,
        "runs": results, "null": null,
    }  # fmt: skip
    (RESULTS / "lightning_overhead.json").write_text(json.dumps(payload, indent=2) + "\n")
    per_step = 1000 * (null["lightning_wall_s"] - null["bare_wall_s"]) / null["steps_per_epoch"]
    setup = statistics.median(r["setup_s"] for r in results)
    lines = [
        "# Lightning overhead: one training epoch", "",
        f"Same model, weights and batches; {torch.get_num_threads()} threads; fastest of "
        f"{repeats} alternating repeats (wall and CPU time taken separately; CPU time counts "
        "every thread of the process); glibc allocator "
        f"{'tuned as in `seqrec train`' if tuned else 'left as it is'} "
        "(see `src/seqrec/training/allocator.py`).", "",
        "| config | model | batch | steps | ms/step bare | ms/step Lightning | extra ms/step "
        "| wall ratio | CPU ratio |",
        "|---|---|---|---|---|---|---|---|---|",
        *[_row(r) for r in [*results, null]], "",
        f"The null model (one weight, a loss that costs nothing) isolates the loop's own cost: "
        f"Lightning adds **{per_step:.2f} ms per step**, that is "
        + ", ".join(
            f"{100 * per_step / (1000 * r['bare_wall_s'] / r['steps_per_epoch']):.1f}% of a "
            f"{r['model']} step at batch {r['batch_size']}"
            for r in results
        )
        + ". Differences between the real-model rows beyond that are noise from other "
        "processes on the machine.",
        f"One-off Trainer set-up and teardown: about {setup:.2f} s per `fit`.",
    ]  # fmt: skip
    (RESULTS / "lightning_overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        nargs="+",
        default=["configs/sasrec-ml-100k.yaml", "configs/bert4rec-ml-100k.yaml"],
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--small-batch", type=int, default=32, help="also time each config at this batch size"
    )
    parser.add_argument(
        "--default-allocator", action="store_true", help="leave glibc's malloc settings alone"
    )
    parser.add_argument("overrides", nargs="*", metavar="a.b=c", help="applied to every config")
    args = parser.parse_args()
    tuned = not args.default_allocator and keep_freed_memory()  # as `seqrec train` does
    variants = [[]] + ([[f"training.batch_size={args.small_batch}"]] if args.small_batch else [])
    results = [
        measure(path, [*args.overrides, *extra], args.repeats)
        for path in args.config
        for extra in variants
    ]
    null = measure(args.config[-1], [*args.overrides, *variants[-1]], args.repeats, null=True)
    report(results, null, args.repeats, tuned)


if __name__ == "__main__":
    main()
