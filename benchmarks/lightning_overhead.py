"""What Lightning costs: one training epoch through ``SeqRecModule`` against a bare PyTorch loop.

Both run the same model from the same initial weights over the same batches (``WindowDataModule``)
with the same optimiser, schedule and gradient clipping; validation is off in both. Lightning's
epoch is timed from its first batch to the end of the epoch (the Trainer's one-off set-up is
reported apart). Repeats alternate the order; medians of wall and CPU time are compared (CPU time
is steadier when other processes share the machine).

    python benchmarks/lightning_overhead.py [--config configs/sasrec-ml-100k.yaml] [a.b=c ...]
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
from seqrec.config import TrainingConfig, load_config
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


def _medians(times: list[Times]) -> Times:
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def report(
    config: str, model: str, steps: int, bare: list[Times], light: list[Times], fits: list[float]
) -> None:
    (bw, bc), (lw, lc) = _medians(bare), _medians(light)
    setup = statistics.median(fits) - lw
    result = {
        "config": config, "model": model, "steps_per_epoch": steps,
        "threads": torch.get_num_threads(),
        "bare_epoch_wall_cpu_s": bare, "lightning_epoch_wall_cpu_s": light,
        "lightning_fit_wall_s": fits,
        "ratio_wall": lw / bw, "ratio_cpu": lc / bc, "setup_s": setup,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lightning_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Lightning overhead: one training epoch", "",
        f"`{config}` ({model}), {steps} steps per epoch, {torch.get_num_threads()} threads, "
        f"median of {len(bare)} alternating repeats.", "",
        "| loop | wall (s) | CPU (s) | wall per step (ms) |", "|---|---|---|---|",
        f"| bare PyTorch | {bw:.2f} | {bc:.2f} | {1000 * bw / steps:.1f} |",
        f"| Lightning (SeqRecModule) | {lw:.2f} | {lc:.2f} | {1000 * lw / steps:.1f} |", "",
        f"Lightning / bare: wall **{lw / bw:.3f}** ({100 * (lw / bw - 1):+.1f}%), "
        f"CPU **{lc / bc:.3f}** ({100 * (lc / bc - 1):+.1f}%). "
        f"One-off Trainer set-up and teardown: {setup:.2f} s per `fit`.",
    ]  # fmt: skip
    (RESULTS / "lightning_overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/sasrec-ml-100k.yaml")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*", metavar="a.b=c")
    args = parser.parse_args()
    config = load_config(args.config, ["training.epochs=1", *args.overrides])
    cfg = config.training
    seed_everything(cfg.seed)
    prepared = prepare_data(config.data)
    n_items = prepared.corpus.n_items
    initial = models.build_model(config.model.name, n_items=n_items, **config.model.kwargs())
    data = WindowDataModule(
        prepared.split.train, initial.train_seq_len, cfg.batch_size, cfg.seed,
        cfg.window_step, cfg.dupe_factor, cfg.num_workers,
    )  # fmt: skip
    bare, light, fits = [], [], []
    for repeat in range(args.repeats):
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
    report(args.config, config.model.name, data.batches_per_epoch(), bare, light, fits)


if __name__ == "__main__":
    main()
