"""Full ranking by DIN and DIEN: scoring passes sized for the cache, against large passes.

DIN and DIEN score every (user, candidate) pair with their own attention MLP (and, for DIEN, an
AUGRU run per pair), so a full ranking of ml-100k's 943 users is 1.6M pairs x up to 50 history
positions. The work is the same whatever the pass size; what changes is whether each pass's
activations stay in the core's cache. Side by side, alternating, on the first ``--users`` test
users of ml-100k (leave-one-out; random weights: the cost does not depend on them): the default
pass sizes (``MAX_ATTENTION_ROWS`` pairs of the attention, ``MAX_SCORED_STEPS`` triples of a
prediction pass) against the earlier large ones (2^17 and 2^19). Reports median seconds, their
ratio and the largest score difference (the same arithmetic in other chunks: float rounding only).

    python benchmarks/ctr_full_ranking.py [--users 64] [--repeats 3] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from seqrec.batch import SequenceBatch
from seqrec.data.corpus import build_corpus
from seqrec.data.readers import read_interactions
from seqrec.data.splits import leave_one_out
from seqrec.models import build_model, dien, din
from seqrec.nn import interest

RESULTS = Path(__file__).parent / "results"
LARGE = {"attention_rows": 1 << 17, "scored_steps": 1 << 19}
MAX_LEN = 50


def histories(path: Path, users: int) -> tuple[torch.Tensor, int]:
    """Left-padded newest ``MAX_LEN`` items of the first ``users`` test users' histories."""
    corpus = build_corpus(read_interactions(path))
    context = leave_one_out(corpus).test.context
    rows = torch.zeros(users, MAX_LEN, dtype=torch.long)
    for u in range(users):  # a benchmark's setup, not the scored path
        items = context.row(u)[-MAX_LEN:]
        rows[u, MAX_LEN - len(items) :] = torch.from_numpy(items.astype(np.int64))
    return rows, corpus.n_items


def timed(model: torch.nn.Module, batch: SequenceBatch, rows: int, steps: int):
    interest.MAX_ATTENTION_ROWS = rows
    dien.MAX_SCORED_STEPS = din.MAX_SCORED_STEPS = steps
    start = time.perf_counter()
    with torch.no_grad():
        scores = model.full_sort_predict(batch)
    return time.perf_counter() - start, scores


def measure(name: str, item_seq: torch.Tensor, n_items: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = build_model(name, n_items=n_items, max_len=MAX_LEN).eval()
    batch = SequenceBatch(item_seq=item_seq)
    default = (interest.MAX_ATTENTION_ROWS, dien.MAX_SCORED_STEPS)
    seconds: dict[str, list[float]] = {"default": [], "large": []}
    for _ in range(repeats):
        small_s, small = timed(model, batch, *default)
        large_s, large = timed(model, batch, LARGE["attention_rows"], LARGE["scored_steps"])
        seconds["default"].append(small_s)
        seconds["large"].append(large_s)
    timed(model, batch, *default)  # restores the defaults
    medians = {key: float(np.median(values)) for key, values in seconds.items()}
    real = torch.isfinite(small)
    row = {
        "model": name, "users": len(item_seq), "items": n_items,
        "default_sizes": {"attention_rows": default[0], "scored_steps": default[1]},
        "large_sizes": LARGE, "median_s": medians, "seconds": seconds,
        "ratio_default_to_large": medians["default"] / medians["large"],
        "max_score_difference": float((small[real] - large[real]).abs().max()),
    }  # fmt: skip
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    item_seq, n_items = histories(args.data_dir / "ml-100k" / "ml-100k.inter", args.users)
    rows = [measure(name, item_seq, n_items, args.repeats) for name in ("din", "dien")]
    RESULTS.mkdir(exist_ok=True)
    report = {"torch_threads": torch.get_num_threads(), "rows": rows}
    (RESULTS / "ctr_full_ranking.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "| model | users x items | default passes s | large passes s | ratio "
        "| max score difference |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['users']} x {r['items']:,} | {r['median_s']['default']:.2f} "
        f"| {r['median_s']['large']:.2f} | {r['ratio_default_to_large']:.2f} "
        f"| {r['max_score_difference']:.1e} |"
        for r in rows
    ]
    (RESULTS / "ctr_full_ranking.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
