"""Objectives and encoder variants on ml-100k, several seeds each, in one table.

BERT4Rec with each masking objective (mlm, plm, rtd) from `configs/bert4rec-ml-100k.yaml`, and
SASRec with Kang & McAuley's original encoder against RecBole's variant (both with the preset's
full softmax, plus the original with its own BCE loss) from `configs/sasrec-ml-100k.yaml`. Every
variant trains with `training.seeds` and is tested under full ranking with the history excluded;
the table gives each test metric's mean over seeds, the standard deviation across seeds and the
user-bootstrap CI of the seed-averaged per-user values, and the training time per seed.
Finished runs are reused, so an interrupted benchmark continues where it stopped.

    python benchmarks/variants_ml100k.py [--seeds 1 2 3] [--variants bert4rec-mlm ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from seqrec import pipeline

RESULTS = Path(__file__).parent / "results"
CONFIGS = Path(__file__).parents[1] / "configs"
ORIGINAL = {"model.architecture": "original", "model.inner_size": None}
VARIANTS = {
    "bert4rec-mlm": ("bert4rec-ml-100k.yaml", {"model.objective": "mlm"}),
    "bert4rec-plm": ("bert4rec-ml-100k.yaml", {"model.objective": "plm"}),
    "bert4rec-rtd": ("bert4rec-ml-100k.yaml", {"model.objective": "rtd"}),
    "sasrec-recbole-ce": ("sasrec-ml-100k.yaml", {"model.architecture": "recbole"}),
    "sasrec-original-ce": ("sasrec-ml-100k.yaml", ORIGINAL),
    "sasrec-original-bce": ("sasrec-ml-100k.yaml", {**ORIGINAL, "model.loss": "bce"}),
}
METRICS = ("NDCG@10", "HR@10", "MRR")


def run_variant(name: str, seeds: list[int], out: Path) -> pipeline.Run:
    """Train (or load, if finished) one variant with every seed."""
    config, overrides = VARIANTS[name]
    run_dir = out / name
    if (run_dir / "metrics.json").is_file():
        return pipeline.load_run(run_dir)
    if (run_dir / "config.yaml").is_file():
        return pipeline.resume(run_dir)
    settings = {**overrides, "training.seeds": seeds, "training.progress_bar": False}
    return pipeline.train(CONFIGS / config, **settings, **{"output.dir": str(run_dir)})


def row(name: str, run: pipeline.Run) -> dict:
    full = json.loads((run.dir / "metrics.json").read_text())["full"]
    seconds = []
    for seed in run.config.training.seeds:
        history = (run.dir / f"seed-{seed}" / "history.csv").read_text().splitlines()
        header = history[0].split(",")
        seconds.append(float(history[-1].split(",")[header.index("time_s")]))
    return {
        "variant": name,
        "seeds": full["seeds"],
        "n_users": full["n_users"],
        "metrics": {m: full["metrics"][m] for m in METRICS},
        "train_seconds_per_seed": seconds,
    }


def markdown(rows: list[dict]) -> str:
    seeds = ", ".join(str(s) for s in rows[0]["seeds"])
    head = " | ".join(f"{m} mean ± std [95% CI]" for m in METRICS)
    lines = [
        f"ml-100k, leave-one-out, full ranking (history excluded), {rows[0]['n_users']} test "
        f"users, seeds {seeds}",
        "",
        f"| variant | {head} | training s per seed |",
        "|---|" + "---|" * len(METRICS) + "---|",
    ]
    for r in rows:
        cells = []
        for m in METRICS:
            s = r["metrics"][m]
            interval = f"[{s['ci_low']:.4f}, {s['ci_high']:.4f}]"
            cells.append(f"{s['mean']:.4f} ± {s['std']:.4f} {interval}")
        times = ", ".join(f"{t:.0f}" for t in r["train_seconds_per_seed"])
        lines.append(f"| {r['variant']} | {' | '.join(cells)} | {times} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path("runs/variants-ml-100k"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = [row(name, run_variant(name, args.seeds, args.out)) for name in args.variants]
    table = markdown(rows)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    meta = {"started": started, "machine": platform.processor() or platform.machine()}
    (RESULTS / "variants_ml100k.json").write_text(json.dumps({**meta, "rows": rows}, indent=2))
    command = "python benchmarks/variants_ml100k.py " + " ".join(["--seeds", *map(str, args.seeds)])
    (RESULTS / "variants_ml100k.md").write_text(f"`{command}`, started {started}\n\n{table}\n")


if __name__ == "__main__":
    main()
