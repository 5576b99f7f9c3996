"""A million items and a million users: SASRec trained with sampled softmax, then full ranking of
a sample of users over the whole catalogue with the blocked evaluator.

The catalogue is synthetic, generated here in memory: 1,000,000 users with 10-20 interactions
each (uniform), items drawn from a power law (item of popularity rank r has probability
proportional to r ** -``--alpha``), independently of one another: there is no sequential signal,
only popularity, to learn, so the figures are throughput and memory, not quality (the metrics
are there to show that training moved the model towards the popular items). Everything else is the
project's code: ``SequenceCorpus`` -> ``leave_one_out`` -> ``training.fit.fit`` (Lightning, the
window data module, AdamW) with ``loss: sampled`` and ``--negatives`` uniform shared negatives,
then ``Evaluator`` with full ranking (history excluded), which scores 256 users x 4,096 items
per block (``EVAL_SCORES``; 131,072 when the figures in the README were measured) instead of
256 x 1,000,001. A dense evaluation of the first
``--check-users`` users checks that the blocked ranks equal the dense ones (after the peak memory
of the blocked run is recorded).

Peak RSS is the process's high-water mark (``ru_maxrss``) after each stage.

    python benchmarks/million_items.py [--steps 200] [--eval-users 5000]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from seqrec.config import TrainingConfig
from seqrec.data.corpus import SequenceCorpus, Sequences, Vocabulary
from seqrec.data.splits import EvalSet, leave_one_out
from seqrec.evaluation.evaluator import EVAL_SCORES, Evaluator
from seqrec.evaluation.protocols import FullRanking
from seqrec.models.sasrec import SASRec, SASRecConfig
from seqrec.models.scoring import block_width
from seqrec.training.allocator import keep_freed_memory
from seqrec.training.fit import fit, seed_everything

RESULTS = Path(__file__).parent / "results"
METRICS = ("HR@10", "NDCG@10", "MRR")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def top10_share(n_items: int, alpha: float) -> float:
    """Probability that a draw is one of the 10 most popular items: HR@10 of popularity."""
    weights = np.arange(1, n_items + 1, dtype=np.float64) ** -alpha
    return float(weights[:10].sum() / weights.sum())


def synthetic_corpus(n_users: int, n_items: int, alpha: float, seed: int) -> SequenceCorpus:
    """``n_users`` rows of 10-20 items each, items drawn from a power law over ``n_items``."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(10, 21, n_users)
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    cdf = np.cumsum(np.arange(1, n_items + 1, dtype=np.float64) ** -alpha)
    by_rank = np.searchsorted(cdf, rng.random(offsets[-1]) * cdf[-1])  # popularity ranks
    codes = rng.permutation(n_items)[np.minimum(by_rank, n_items - 1)] + 1  # ranks -> codes
    sequences = Sequences(offsets, codes.astype(np.int64))
    users = Vocabulary(np.arange(n_users).astype(str))
    items = Vocabulary(np.arange(1, n_items + 1).astype(str), offset=1)
    return SequenceCorpus(sequences, users, items, rows_read=int(offsets[-1]))


def subset(eval_set: EvalSet, rows: np.ndarray) -> EvalSet:
    return EvalSet(eval_set.users[rows], eval_set.context.take(rows), eval_set.targets.take(rows))


def train(model: SASRec, split, args: argparse.Namespace) -> dict:
    cfg = TrainingConfig(
        max_steps=args.steps, batch_size=args.batch_size, lr=1e-3, progress_bar=False, seed=0
    )
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        result = fit(model, split.train, None, cfg, Path(run_dir))
        seconds = time.perf_counter() - start
    return {
        "steps": args.steps, "batch_size": args.batch_size, "fit_wall_s": round(seconds, 1),
        "sequences_per_s": round(args.steps * args.batch_size / seconds, 1),
        "train_windows": result.windows, "peak_rss_mib_after_training": round(peak_rss_mib()),
    }  # fmt: skip


def evaluate(model: SASRec, test: EvalSet, n_items: int, args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(1)
    sample = subset(test, np.sort(rng.choice(len(test), args.eval_users, replace=False)))
    evaluator = Evaluator(sample, FullRanking(True), n_items, metrics=METRICS, batch_size=256)
    start = time.perf_counter()
    result = evaluator.evaluate(model)
    seconds = time.perf_counter() - start
    peak = peak_rss_mib()
    check = subset(sample, np.arange(args.check_users))
    dense = Evaluator(check, FullRanking(True), n_items, batch_size=256, max_scores=2**40)
    same = np.array_equal(dense.ranks(model), result.ranks[: args.check_users])
    return {
        "users": len(sample), "eval_s": round(seconds, 1),
        "users_per_s": round(len(sample) / seconds, 1),
        "block_items": block_width(256, n_items + 1, EVAL_SCORES) or n_items + 1,
        "metrics": {m: round(result[m], 5) for m in METRICS},
        "peak_rss_mib_after_eval": round(peak),
        "dense_check_users": args.check_users, "dense_ranks_identical": bool(same),
    }  # fmt: skip


def write(report: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "million_items.json").write_text(json.dumps(report, indent=2) + "\n")
    d, t, e = report["data"], report["training"], report["evaluation"]
    lines = [
        f"{d['users']:,} users, {d['items']:,} items, {d['interactions']:,} interactions "
        f"(power law, alpha {d['alpha']}); SASRec d={report['model']['hidden_size']}, "
        f"max_len {report['model']['max_len']}, sampled softmax with "
        f"{report['model']['n_negatives']:,} uniform negatives; {report['torch_threads']} threads.",
        "",
        "| stage | figure |",
        "|---|---|",
        f"| item table (params / + grad + AdamW) | {report['item_table_mib']:,} MiB / "
        f"{4 * report['item_table_mib']:,} MiB |",
        f"| peak RSS after data + split | {d['peak_rss_mib']:,} MiB |",
        f"| training: {t['steps']} steps x {t['batch_size']} | {t['fit_wall_s']} s, "
        f"{t['sequences_per_s']:,} sequences/s |",
        f"| peak RSS after training | {t['peak_rss_mib_after_training']:,} MiB |",
        f"| full ranking of {e['users']:,} users ({e['block_items']:,} items per block) "
        f"| {e['eval_s']} s, {e['users_per_s']:,} users/s |",
        f"| peak RSS after evaluation | {e['peak_rss_mib_after_eval']:,} MiB |",
        f"| blocked ranks = dense ranks ({e['dense_check_users']} users) "
        f"| {e['dense_ranks_identical']} |",
        f"| {', '.join(f'{k} {v}' for k, v in e['metrics'].items())} "
        f"| (the 10 most popular items draw {d['top10_share']:.3f} of interactions) |",
    ]
    (RESULTS / "million_items.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--negatives", type=int, default=2048)
    parser.add_argument("--eval-users", type=int, default=5000)
    parser.add_argument("--check-users", type=int, default=512)
    args = parser.parse_args()
    keep_freed_memory()  # as `seqrec train` does
    seed_everything(0)
    start = time.perf_counter()
    corpus = synthetic_corpus(args.users, args.items, args.alpha, seed=0)
    split = leave_one_out(corpus)
    data = {
        "users": corpus.n_users, "items": corpus.n_items, "interactions": corpus.n_interactions,
        "alpha": args.alpha, "top10_share": round(top10_share(args.items, args.alpha), 4),
        "build_s": round(time.perf_counter() - start, 1),
        "peak_rss_mib": round(peak_rss_mib()),
    }  # fmt: skip
    print(json.dumps(data), flush=True)
    config = SASRecConfig(
        n_items=corpus.n_items, max_len=20, hidden_size=64, loss="sampled",
        n_negatives=args.negatives, negative_sampler="uniform",
    )  # fmt: skip
    model = SASRec(config)
    model.prepare_from_training(split.train)
    training = train(model, split, args)
    print(json.dumps(training), flush=True)
    evaluation = evaluate(model.eval(), split.test, corpus.n_items, args)
    table = (corpus.n_items + 1) * config.hidden_size * 4 / 2**20
    write({
        "torch_threads": torch.get_num_threads(), "max_scores": EVAL_SCORES,
        "model": {"name": "sasrec", "hidden_size": config.hidden_size, "max_len": config.max_len,
                  "n_negatives": config.n_negatives},
        "item_table_mib": round(table), "data": data, "training": training,
        "evaluation": evaluation,
    })  # fmt: skip


if __name__ == "__main__":
    main()
