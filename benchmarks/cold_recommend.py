"""``seqrec recommend`` from a cold process: the PyTorch and the ONNX back ends side by side.

The run's model is exported once with ``--onnx``; then, ``--repeats`` times in alternation, one
fresh ``seqrec recommend`` process per back end answers the same history, and so does a bare
``python -c "import torch"`` (the PyTorch back end's floor: it cannot start faster than torch
imports). Reported: the median wall seconds of each and the ratios, measured in one run because
this machine is shared and its load changes from minute to minute.

    python benchmarks/cold_recommend.py RUN [--repeats 7] [--history 50 172 133]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SEQREC = [sys.executable, "-m", "seqrec.cli"]


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder (its model is exported)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--history", nargs="+", default=["50", "172", "133"])
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cold-recommend-")) / "model"
    subprocess.run([*SEQREC, "export", str(args.run), str(folder), "--onnx"], check=True)
    ask = [*SEQREC, "recommend", str(folder), "--history", *args.history, "-k", "10"]
    commands = {
        "onnx": [*ask, "--backend", "onnx"],
        "torch": [*ask, "--backend", "torch"],
        "import torch": [sys.executable, "-c", "import torch"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, command in commands.items():
            times[name].append(wall(command))
    median = {name: statistics.median(t) for name, t in times.items()}
    results = {
        "run": str(args.run), "history": args.history, "repeats": args.repeats,
        "seconds": times, "median_seconds": median,
        "torch_over_onnx": median["torch"] / median["onnx"],
        "command": "python benchmarks/cold_recommend.py " + " ".join(sys.argv[1:]),
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cold_recommend.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"`{results['command']}` ({time.strftime('%Y-%m-%d')}, median of {args.repeats} cold "
        "processes each, in alternation)",
        "",
        "| back end | median wall s | all runs |",
        "|---|---|---|",
        *(
            f"| {name} | {median[name]:.2f} | {', '.join(f'{t:.2f}' for t in times[name])} |"
            for name in commands
        ),
        "",
        f"PyTorch / ONNX: {results['torch_over_onnx']:.1f}x.",
    ]
    (RESULTS / "cold_recommend.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
