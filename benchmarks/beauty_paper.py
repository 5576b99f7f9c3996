"""BERT4Rec on Beauty: the fast recipe against the authors' recipe, one time-to-quality chart.

Each recipe trains in its own process for a wall-time budget (`training.max_minutes`), validated
under the paper's protocol (100 popularity-sampled negatives) as it goes, and is then tested. The
authors' recipe (`configs/bert4rec-beauty-paper.yaml`) trains on the validation item and never
validates; to draw its curve it runs here with the validation item held out and an epoch cut to
`--paper-steps-per-epoch` steps (each a fresh shuffle of its windows). The speed-up is measured at
equal quality: the time the paper recipe needed to reach its best validation NDCG@10, against the
time the fast recipe needed to reach that same value.

    python benchmarks/beauty_paper.py [--fast-minutes 60] [--paper-minutes 60] [--seed 1]

Writes `benchmarks/results/beauty_paper.{json,md,png}` (and the two run folders under `--out`).
Peak RSS is the largest resident size of each recipe's process, its test included (`wait4`);
each run's `history.csv` gives it per epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

RESULTS = Path(__file__).parent / "results"
CONFIGS = Path(__file__).parents[1] / "configs"
METRIC = "NDCG@10"
RECIPES = {
    "fast": ("bert4rec-beauty.yaml", {}),
    "paper": (
        "bert4rec-beauty-paper.yaml",
        {"data.split.train_on_validation": "false", "training.max_steps": "null"},
    ),
}


def train(name: str, minutes: float, seed: int, out: Path, extra: dict[str, str]) -> dict:
    """One recipe in its own process; its history, test metrics, wall time and peak RSS."""
    config, overrides = RECIPES[name]
    run_dir = out / name
    settings = {
        **overrides, **extra, "training.max_minutes": str(minutes), "training.seed": str(seed),
        "training.progress_bar": "false", "output.dir": str(run_dir),
    }  # fmt: skip
    command = [sys.executable, "-m", "seqrec.cli", "train", str(CONFIGS / config)]
    command += [f"{key}={value}" for key, value in settings.items()]
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)  # this child's own resource usage
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name}: `{' '.join(command)}` failed")
    history = pl.read_csv(run_dir / "history.csv")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "recipe": name,
        "command": " ".join(command[1:]),
        "wall_s": wall,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux: training and test
        "history": history.to_dicts(),
        "test": {p: r["metrics"] for p, r in metrics.items()},
    }


def curve(result: dict) -> list[tuple[float, float]]:
    key = f"valid_{METRIC}"
    return [(r["time_s"], r[key]) for r in result["history"] if r.get(key) is not None]


def first_time_at(points: list[tuple[float, float]], value: float) -> float | None:
    return next((t for t, v in points if v >= value), None)


def speed_up(fast: dict, paper: dict) -> dict:
    """Time to the paper recipe's best validation value, for each recipe."""
    paper_points, fast_points = curve(paper), curve(fast)
    best_t, best_v = max(paper_points, key=lambda p: p[1])
    fast_t = first_time_at(fast_points, best_v)
    return {
        "paper_best": best_v,
        "paper_seconds": best_t,
        "fast_seconds": fast_t,
        "ratio": None if fast_t is None else fast_t / best_t,
    }


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for result in results:
        points = curve(result)
        ax.plot([t / 60 for t, _ in points], [v for _, v in points], marker=".",
                label=result["recipe"])  # fmt: skip
    ax.set_xlabel("wall time (minutes)")
    ax.set_ylabel(f"validation {METRIC} (popular100)")
    ax.set_title("BERT4Rec on Beauty: time to quality")
    ax.legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(results: list[dict], ratio: dict, started: str) -> str:
    lines = [f"started {started}, {platform.processor() or platform.machine()}", ""]
    lines += ["| recipe | epochs | best validation NDCG@10 | test HR@10 | test NDCG@10 | test MRR "
              "| wall s | peak RSS MiB |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        test = r["test"]["popular100"]
        best = max((v for _, v in curve(r)), default=float("nan"))
        rss = f"{r['peak_rss_mib']:.0f}"
        lines.append(
            f"| {r['recipe']} | {len(r['history'])} | {best:.4f} | {test['HR@10']['mean']:.4f} "
            f"| {test['NDCG@10']['mean']:.4f} | {test['MRR']['mean']:.4f} | {r['wall_s']:.0f} "
            f"| {rss} |"
        )
    if ratio["fast_seconds"] is None:
        lines += [
            "",
            f"The fast recipe did not reach the paper recipe's best ({ratio['paper_best']:.4f}).",
        ]
    else:
        best = ratio["paper_best"]
        lines += ["", f"The paper recipe's best validation NDCG@10, {best:.4f}, came after "
                  f"{ratio['paper_seconds']:.0f} s; the fast recipe reached it after "
                  f"{ratio['fast_seconds']:.0f} s ({ratio['ratio']:.2f}x)."]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast-minutes", type=float, default=60.0)
    parser.add_argument("--paper-minutes", type=float, default=60.0)
    parser.add_argument("--paper-steps-per-epoch", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/beauty-paper"))
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    paper_extra = {"training.steps_per_epoch": str(args.paper_steps_per_epoch)}
    results = [
        train("fast", args.fast_minutes, args.seed, args.out, {}),
        train("paper", args.paper_minutes, args.seed, args.out, paper_extra),
    ]
    ratio = speed_up(results[0], results[1])
    RESULTS.mkdir(exist_ok=True)
    plot(results, RESULTS / "beauty_paper.png")
    table = markdown(results, ratio, started)
    print(table)
    (RESULTS / "beauty_paper.md").write_text(table + "\n")
    payload = {"started": started, "args": vars(args) | {"out": str(args.out)}, "speed_up": ratio}
    (RESULTS / "beauty_paper.json").write_text(json.dumps(payload | {"runs": results}, indent=2))


if __name__ == "__main__":
    main()
