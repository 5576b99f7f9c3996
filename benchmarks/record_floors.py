"""Measure every entry of benchmarks/floors.yaml again and rewrite its floors.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/record_floors.py [--models NAME ...]

Each entry is trained on the ml-100k slice with the test seed and two more seeds; its floor per
metric is the test seed's value minus max(95% CI half-width, 3 x std over the three seeds) (see
``seqrec.benchmark.floors``). Entries not named with ``--models`` keep their recorded figures. To
add a model: add an entry with its ``model`` section (and ``training`` overrides) to the file,
then run this script with ``--models NAME``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

import yaml

from seqrec.benchmark.floors import FLOORS_FILE, FloorEntry, Floors, load_floors, record
from seqrec.benchmark.report import machine
from seqrec.pipeline import train

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ml-100k" / "ml-100k.inter"
EXTRA_SEEDS = (2, 3)

HEADER = """\
# Regression floors: every registered model trained for seconds on a slice of ml-100k (each
# user's newest 50 ratings, leave-one-out, full ranking). tests/test_regression_floors.py trains
# each entry with `seed` and fails when a test metric falls below its floor.
# floor = measured - margin, measured = the value with `seed`, margin = max(95% user-bootstrap CI
# half-width, 3 x standard deviation over seeds {seeds}) (see seqrec/benchmark/floors.py).
# Recorded with:
#   OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/record_floors.py [--models NAME ...]
# last call: `{command}`
# on {date} ({cpu}, torch {torch}); each entry's `recorded` is its own date.
# To add a model: add an entry (its model section, training overrides), then run
#   OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/record_floors.py --models NAME
"""


def measure(floors: Floors, entry: FloorEntry, data: Path, work: Path) -> FloorEntry:
    results = []
    metrics = list(floors.slice.get("evaluation", {}).get("metrics", ["NDCG@10"]))
    for seed in (floors.seed, *EXTRA_SEEDS):
        started = time.perf_counter()
        run = train(floors.config(entry, data, work / f"{entry.name}-{seed}", seed))
        result = run.results[floors.protocol_of(entry)]
        results.append({m: result.summary[m] for m in metrics})
        shown = ", ".join(f"{m} {result[m]:.4f}" for m in metrics)
        print(f"{entry.name} seed {seed}: {shown} ({time.perf_counter() - started:.1f} s)")
    return record(entry, results, metrics, time.strftime("%Y-%m-%d", time.gmtime()))


def _entry(e: FloorEntry) -> dict:
    keys = ("model", "training", "measured", "margin", "floor", "recorded")
    out = {key: getattr(e, key) for key in keys}
    if e.protocol is not None:
        out = {"model": e.model, "training": e.training, "protocol": e.protocol} | out
    return out


def write(floors: Floors, entries: list[FloorEntry], command: str) -> None:
    m = machine()
    seeds = ", ".join(str(s) for s in (floors.seed, *EXTRA_SEEDS))
    date = time.strftime("%Y-%m-%d", time.gmtime())
    header = HEADER.format(seeds=seeds, command=command, date=date, cpu=m["cpu"], torch=m["torch"])
    body = {
        "slice": floors.slice,
        "seed": floors.seed,
        "protocol": floors.protocol,
        "models": {e.name: _entry(e) for e in entries},
    }
    text = yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=100)
    floors.path.write_text(header + text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", metavar="NAME", help="default: every entry")
    parser.add_argument("--floors", type=Path, default=ROOT / FLOORS_FILE)
    parser.add_argument("--data", type=Path, default=DATA, help="ml-100k.inter")
    args = parser.parse_args()
    floors = load_floors(args.floors)
    wanted = args.models or [e.name for e in floors.entries]
    for name in wanted:
        floors.entry(name)  # an unknown name fails before any training
    with tempfile.TemporaryDirectory() as work:
        entries = [
            measure(floors, e, args.data, Path(work)) if e.name in wanted else e
            for e in floors.entries
        ]
    command = "OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/record_floors.py"
    if args.models:
        command += " --models " + shlex.join(args.models)
    write(floors, entries, command)
    print(f"wrote {floors.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
