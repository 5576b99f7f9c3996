"""Preprocessing 20 million interactions from Parquet: the streaming path against the eager one.

Logs are made with ``seqrec data synth`` (users x 20 interactions on average, 100k items). Each
variant runs in a fresh process whose peak RSS comes from ``os.wait4`` (that child only):

- ``eager``: ``read_interactions`` + ``build_corpus`` (polars, in memory);
- ``streaming``: ``build_corpus_streaming`` into an empty cache (``data.streaming: true``);
- ``cached``: ``build_corpus_streaming`` again, reading the cache (memory-mapped arrays).

Both build paths use the same preprocessing (k-core 5/5, duplicates kept); the script checks that
they give the same load report and the same arrays (sha256 of offsets, items, timestamps, of the
eager corpus and of the cached one; the fresh streaming build is not read again, as reading its
memory-mapped arrays would add their pages to that process's RSS). The
size of the data as Python objects is measured on a 1M-row sample of the 20M file: the rows as
a list of ``(user str, item str, timestamp float)`` tuples, as ``tracemalloc`` counts them (the
list, the tuples and every object), scaled to the full row count.

    python benchmarks/preprocess_large.py [--workdir DIR] [--sizes 5 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ITEMS = 100_000
PER_USER = 20
SAMPLE_ROWS = 1_000_000
PREP = {"min_user_interactions": 5, "min_item_interactions": 5}


# ---------------------------------------------------------------- children (fresh processes)


def _digest(corpus) -> str:
    sha = hashlib.sha256()
    for array in (corpus.sequences.offsets, corpus.sequences.items, corpus.sequences.timestamps):
        sha.update(memoryview(array).cast("B"))
    return sha.hexdigest()[:16]


def child(variant: str, path: str, cache: str) -> dict:
    """One variant in this process; prints what it measured as JSON."""
    import polars as pl

    from seqrec.data.corpus import build_corpus
    from seqrec.data.readers import read_interactions
    from seqrec.data.streaming import Preprocessing, build_corpus_streaming

    if variant == "objects":
        return {"bytes_per_row": _object_bytes_per_row(pl, path)}
    if variant == "baseline":
        return {}
    start = time.perf_counter()
    if variant == "eager":
        corpus = build_corpus(read_interactions(path), **PREP)
    else:
        corpus = build_corpus_streaming(path, cache, prep=Preprocessing(**PREP))
    seconds = time.perf_counter() - start
    # reading memory-mapped arrays maps their pages into RSS: the fresh build is not digested
    # (the cached load of the same entry is, and must match the eager arrays)
    return {
        "seconds": seconds,
        "report": corpus.load_report(),
        "interactions": corpus.n_interactions,
        "digest": None if variant == "streaming" else _digest(corpus),
    }


def _object_bytes_per_row(pl, path: str) -> float:
    import tracemalloc

    sample = pl.read_parquet(path, n_rows=SAMPLE_ROWS).select(
        pl.col("user_id").cast(pl.Utf8), pl.col("item_id").cast(pl.Utf8),
        pl.col("timestamp").cast(pl.Float64),
    )  # fmt: skip
    tracemalloc.start()
    rows = sample.rows()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return size / len(rows)


def run_child(variant: str, path: Path, cache: Path) -> dict:
    """The variant in a fresh interpreter: its result and its own peak RSS (``os.wait4``)."""
    command = [sys.executable, __file__, "--child", variant, str(path), str(cache)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{variant} on {path} failed with status {proc.returncode}")
    return {**json.loads(out), "peak_rss_mib": usage.ru_maxrss / 1024}


# ---------------------------------------------------------------- the parent


def synthesise(workdir: Path, millions: int) -> Path:
    path = workdir / f"synth-{millions}m.parquet"
    if not path.is_file():
        users = millions * 1_000_000 // PER_USER
        subprocess.run(
            [sys.executable, "-m", "seqrec.cli", "data", "synth", "--users", str(users),
             "--items", str(ITEMS), "--interactions-per-user", str(PER_USER), "--drift", "0.7",
             "--seed", "0", "--output", str(path)],
            check=True,
        )  # fmt: skip
    return path


def measure(path: Path, repeats: int, workdir: Path) -> dict:
    """Best time and highest peak RSS of each variant over alternating repeats."""
    runs: dict[str, list[dict]] = {"eager": [], "streaming": [], "cached": []}
    for _ in range(repeats):
        cache = Path(tempfile.mkdtemp(dir=workdir, prefix="cache-"))
        runs["eager"].append(run_child("eager", path, cache))
        runs["streaming"].append(run_child("streaming", path, cache))
        runs["cached"].append(run_child("cached", path, cache))
        shutil.rmtree(cache)
    best = {name: min(rs, key=lambda r: r["seconds"]) for name, rs in runs.items()}
    reports = {json.dumps(r["report"]) for r in best.values()}
    digests = {best["eager"]["digest"], best["cached"]["digest"]}
    if len(reports) != 1 or len(digests) != 1:
        raise SystemExit(f"the variants disagree on {path}: {reports} {digests}")
    return {
        "rows": int(best["eager"]["report"][0].split()[1].replace(",", "")),
        "kept": best["eager"]["interactions"],
        "report": best["eager"]["report"],
        **{f"{n}_s": round(r["seconds"], 2) for n, r in best.items()},
        **{
            f"{n}_peak_rss_mib": round(max(r["peak_rss_mib"] for r in rs)) for n, rs in runs.items()
        },
        "all_seconds": {n: [round(r["seconds"], 2) for r in rs] for n, rs in runs.items()},
    }


def markdown(rows: list[dict], object_bytes: float, baseline_mib: float, repeats: int) -> str:
    lines = [
        "# Preprocessing large Parquet logs",
        "",
        f"`seqrec data synth` logs (users x {PER_USER} on average, {ITEMS:,} items, drift 0.7); "
        f"k-core 5/5, duplicates kept. Best time and highest peak RSS of {repeats} alternating "
        f"runs, each in a fresh process (an interpreter that only imports the data code peaks at "
        f"{baseline_mib:.0f} MiB). Python objects: {object_bytes:.0f} bytes per row "
        f"(`(user str, item str, timestamp float)` tuples in a list, by tracemalloc on "
        f"{SAMPLE_ROWS:,} rows, scaled). polars {rows[0]['polars']}, Python "
        f"{platform.python_version()}, {os.cpu_count()} cores.",
        "",
        "| rows | as Python objects (MiB) | eager s | streaming s | streaming / eager time "
        "| eager peak RSS (MiB) | streaming peak RSS (MiB) | streaming RSS / Python objects "
        "| streaming RSS / eager RSS | cached load s (RSS MiB, arrays read once) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rows']:,} | {r['python_objects_mib']:,.0f} | {r['eager_s']:.1f} "
            f"| {r['streaming_s']:.1f} | {r['streaming_s'] / r['eager_s']:.2f} "
            f"| {r['eager_peak_rss_mib']:,} | {r['streaming_peak_rss_mib']:,} "
            f"| {r['rss_over_objects']:.3f} "
            f"| {r['streaming_peak_rss_mib'] / r['eager_peak_rss_mib']:.2f} "
            f"| {r['cached_s']:.2f} ({r['cached_peak_rss_mib']:,}) |"
        )
    lines += ["", "Every run's seconds (the machine is shared):", ""]
    for r in rows:
        runs = "; ".join(f"{n} {', '.join(map(str, v))}" for n, v in r["all_seconds"].items())
        lines.append(f"- {r['rows']:,} rows: {runs}")
    lines += ["", "Load report (identical for both paths, same array digests):", ""]
    lines += [f"- {r['rows']:,} rows: " + "; ".join(r["report"][1:]) for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "seqrec-large"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 20], help="millions of rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "PATH", "CACHE"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return

    import polars as pl

    args.workdir.mkdir(parents=True, exist_ok=True)
    paths = {m: synthesise(args.workdir, m) for m in args.sizes}
    largest = paths[max(paths)]
    object_bytes = run_child("objects", largest, args.workdir)["bytes_per_row"]
    baseline = run_child("baseline", largest, args.workdir)["peak_rss_mib"]
    rows = []
    for millions, path in paths.items():
        row = measure(path, args.repeats, args.workdir)
        row["polars"] = pl.__version__
        row["python_objects_mib"] = round(row["rows"] * object_bytes / 2**20)
        row["rss_over_objects"] = round(
            row["streaming_peak_rss_mib"] / row["python_objects_mib"], 4
        )
        rows.append(row)
        print(f"{millions}M: {json.dumps(row)}", flush=True)
    table = markdown(rows, object_bytes, baseline, args.repeats)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    report = {
        "repeats": args.repeats, "preprocessing": PREP, "object_bytes_per_row": object_bytes,
        "baseline_peak_rss_mib": baseline, "results": rows,
    }  # fmt: skip
    (RESULTS / "preprocess_large.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "preprocess_large.md").write_text(table)


if __name__ == "__main__":
    main()
