"""What holds a Beauty run's memory: peak resident size per epoch, allocator settings compared.

`seqrec train` raises glibc's trim and mmap thresholds (`training/allocator.py`) so that a step's
large tensors are not re-mapped every step, and hands the free pages back to the system every
`training.release_memory_every` steps (`malloc_trim`). This script trains the same preset for a
few short epochs in a fresh process per variant and records each epoch's peak resident size
(`history.csv`'s `peak_rss_mib`): as `seqrec train` runs it; never releasing (the thresholds
alone); releasing every 10 steps; with glibc's defaults; with glibc's mmap threshold fixed at
128 KiB (`MALLOC_MMAP_THRESHOLD_=131072`), which hands every large block back at the price of
mapping it again on the next step; and with tcmalloc or jemalloc in place of glibc's malloc
(`LD_PRELOAD`), where the system has them (Debian: `libtcmalloc-minimal4`, `libjemalloc2`). A
peak that keeps growing from epoch to epoch while the step's tensors keep their sizes is memory
the allocator holds, not memory the training needs.

    python benchmarks/beauty_memory.py [--config configs/bert4rec-beauty.yaml]
        [--steps-per-epoch 60] [--epochs 8] [--first N]

Writes `benchmarks/results/beauty_memory.{json,md}` (`beauty_memory_<config>.*` for another
config).
"""

from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).parents[1]
VARIANTS = {  # name: (raise glibc's thresholds, release_memory_every, extra environment)
    "seqrec train (thresholds raised, released every 50 steps)": (True, 50, {}),
    "thresholds raised, never released": (True, 0, {}),
    "thresholds raised, released every 10 steps": (True, 10, {}),
    "glibc defaults, never released": (False, 0, {}),
    # a fixed threshold turns glibc's dynamic one off: large blocks always mapped and handed back
    "mmap threshold fixed at 128 KiB": (False, 0, {"MALLOC_MMAP_THRESHOLD_": "131072"}),
}
for _library in ("tcmalloc_minimal", "jemalloc"):  # another malloc, where the system has one
    if _found := ctypes.util.find_library(_library):
        VARIANTS[f"{_library} (LD_PRELOAD={_found})"] = (False, 0, {"LD_PRELOAD": _found})
CHILD = """
import sys
from seqrec import pipeline
from seqrec.config import load_config
from seqrec.training.allocator import keep_freed_memory
if sys.argv[1] == "1":
    keep_freed_memory()
pipeline.train(load_config(sys.argv[2], sys.argv[3:]))
"""


def run(name: str, args: argparse.Namespace, out: Path) -> dict:
    """One variant in its own process: per-epoch peaks and the process's own peak."""
    raised, release_every, env = VARIANTS[name]
    run_dir = out / "".join(c if c.isalnum() else "-" for c in name)
    settings = {
        "training.steps_per_epoch": args.steps_per_epoch, "training.epochs": args.epochs,
        "training.eval_every": 0, "training.max_minutes": "null", "training.max_steps": "null",
        "training.progress_bar": "false", "training.release_memory_every": release_every,
        "evaluation.protocols": "[popular100]",
        "output.dir": str(run_dir),
    }  # fmt: skip
    command = [sys.executable, "-c", CHILD, "1" if raised else "0", str(args.config)]
    command += [f"{key}={value}" for key, value in settings.items()]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=os.environ | env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name}: the training process failed")
    lines = (run_dir / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    return {
        "variant": name,
        "epoch_peaks_mib": [float(row["peak_rss_mib"]) for row in rows],
        "step_seconds": sum(float(row["train_s"]) for row in rows)
        / (len(rows) * args.steps_per_epoch),
        "process_peak_mib": usage.ru_maxrss / 1024,  # KiB on Linux; the test included
        "wall_s": time.perf_counter() - started,
    }


def markdown(results: list[dict], args: argparse.Namespace, started: str) -> str:
    lines = [
        f"started {started}; `{args.config}`, {args.epochs} epochs of {args.steps_per_epoch} steps",
        "",
        "| variant | peak RSS after each epoch (MiB) | process peak, test included (MiB) "
        "| s per step |",
        "|---|---|---|---|",
    ]
    for r in results:
        peaks = ", ".join(f"{p:,.0f}" for p in r["epoch_peaks_mib"])
        lines.append(
            f"| {r['variant']} | {peaks} | {r['process_peak_mib']:,.0f} | {r['step_seconds']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "bert4rec-beauty.yaml")
    parser.add_argument("--steps-per-epoch", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("runs/beauty-memory"))
    parser.add_argument(
        "--first", type=int, default=len(VARIANTS), help="only the first N variants (2: seqrec "
        "train's and the same never released)"
    )  # fmt: skip
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = [
        run(name, args, args.out / args.config.stem) for name in list(VARIANTS)[: args.first]
    ]
    table = markdown(results, args, started)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    name = "beauty_memory" + (
        "" if args.config.stem == "bert4rec-beauty" else f"_{args.config.stem}"
    )
    (RESULTS / f"{name}.md").write_text(table + "\n")
    payload = {"started": started, "args": {k: str(v) for k, v in vars(args).items()}}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload | {"runs": results}, indent=2))


if __name__ == "__main__":
    main()
