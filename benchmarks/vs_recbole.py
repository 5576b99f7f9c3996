"""seqrec against RecBole 1.2.1 on ml-100k, side by side in one run, same sizes and settings.

For BERT4Rec and SASRec (hidden 64, 2 layers, 2 heads, inner 256, max length 50, batch 256, full
softmax CE, RecBole's dropout defaults), and for GRU4Rec and GRU4RecF (RecBole's defaults:
embedding 64, hidden 128, one layer, dropout 0.3 on the embeddings, max length 50, batch 256, full
softmax CE; GRU4RecF with two GRUs whose outputs are concatenated, over ml-100k's ``class`` and
``release_year`` item features, token_seq pooled by sum, on both sides), this script runs RecBole
(its own virtual environment, see ``recbole_runner.py``; Adam, lr 1e-3) with autograd anomaly
detection off and, for speed only, as shipped; then seqrec with the same model settings and its
own training choices (learning rate and windows, ``SEQREC_TRAINING``). It reports:

(a) training time per target and per training sequence (RecBole trains on every prefix of every
    training sequence: one target per prefix for SASRec, GRU4Rec and GRU4RecF, the masked items
    of each prefix for BERT4Rec; seqrec trains on windows of each user's history, every position
    a target for SASRec, GRU4Rec and GRU4RecF, the masked items for BERT4Rec; BERT4Rec target
    counts are expectations over the random masking);
(b) wall time (training + validation) until validation NDCG@10 first reaches the best value
    RecBole reaches in its run; for RecBole as shipped this is derived (its epochs to the best
    times its shipped epoch time), since anomaly detection does not change its arithmetic (the
    script checks that the validation values of the epochs both runs share are equal);
(c) wall time of the full-sort evaluation of all test users (history kept as candidates, as
    RecBole's sequential full-sort does), the median of 7 passes on each side after one untimed
    pass;
(d) test NDCG@10 under that protocol, seqrec with its 95% bootstrap CI, and seqrec's default
    protocol (history excluded) beside it.

    python benchmarks/vs_recbole.py [--models bert4rec sasrec gru4rec gru4recf]
        [--recbole-epochs 10] [--shipped-epochs 1] [--seqrec-epochs 60] [--seqrec-lr LR]
        [--seqrec-patience 10] [--data-dir ../shared/data/ml-100k] [--recbole-results EARLIER.json]

``--data-dir`` holds one RecBole ``.inter`` file, or one ``user item`` text file (the BERT4Rec
authors' format, e.g. Beauty's ``beauty.txt``, each user's lines in time order), which is
written out as a ``.inter`` file whose timestamp is each line's position in its user's sequence,
so both sides read the same ordered sequences; the results then carry the data set's name
(``vs_recbole_bert4rec_sasrec_beauty.*``):

    python benchmarks/vs_recbole.py --models bert4rec sasrec --data-dir ../shared/data/beauty \
        --recbole-epochs 1 --shipped-epochs 0 --seqrec-epochs 1 --eval-repeats 3

``--models dien`` (alone or with the others) compares the click-through model DIEN instead, in
its own table (``vs_recbole_dien.py``: samples, sizes and what is measured): RecBole for
``--dien-epochs`` epochs, seqrec for up to ``--dien-seqrec-epochs``:
``python benchmarks/vs_recbole.py --models dien``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from seqrec import pipeline
from seqrec.evaluation.evaluator import Evaluator
from seqrec.evaluation.protocols import FullRanking
from seqrec.training.allocator import keep_freed_memory
from seqrec.training.data import training_windows
from seqrec.training.prepare import prepare_data

sys.path.insert(0, str(Path(__file__).parent))
from recbole_runner import run_recbole
from vs_recbole_dien import compare_dien, markdown_dien, run_seqrec_dien

RESULTS = Path(__file__).parent / "results"
RECBOLE_NAMES = {
    "bert4rec": "BERT4Rec", "sasrec": "SASRec", "gru4rec": "GRU4Rec", "gru4recf": "GRU4RecF",
}  # fmt: skip
SHARED = {"max_len": 50, "hidden_size": 64, "n_layers": 2, "n_heads": 2, "inner_size": 256}
# RecBole 1.2.1's GRU4Rec / GRU4RecF defaults (recbole_train.RECURRENT_SIZES)
RECURRENT_SHARED = {"max_len": 50, "embedding_size": 64, "hidden_size": 128, "n_layers": 1}
RECURRENT = ("gru4rec", "gru4recf")
EVAL_REPEATS = 7  # full-sort passes timed on each side by default; the median is reported
RECBOLE_FT_RATIO = 0.5  # RecBole 1.2.1's BERT4Rec.yaml default, in effect in its MaskItemSeq
MODEL_SETTINGS = {  # RecBole 1.2.1's defaults for what the shared settings leave open
    "bert4rec": {"hidden_dropout": 0.2, "attn_dropout": 0.2, "mask_ratio": 0.2},
    "sasrec": {"architecture": "recbole", "hidden_dropout": 0.5, "attn_dropout": 0.5, "loss": "ce"},
    "gru4rec": {"dropout_embed": 0.3, "loss": "ce"},
    # RecBole's GRU4RecF: two GRUs, outputs concatenated; class + release_year, pooled by sum
    "gru4recf": {
        "dropout_embed": 0.3, "loss": "ce", "fusion": "output_concat",
        "item_features": ["class", "release_year"], "feature_size": 64, "feature_pooling": "sum",
    },
}  # fmt: skip
# seqrec's own training choices per model (`--seqrec-lr` overrides lr). SASRec overfits sooner when
# a target recurs in many overlapping windows per epoch: on ml-100k its best validation NDCG@10 was
# 0.061 with windows every 10 items (lr 2e-3) and 0.069 with windows every 25 items (lr 1e-3).
# GRU4Rec is the other way round: windows every 50 items gave a best validation NDCG@10 of 0.058
# and test 0.0477; windows every 10 items (each target then sees more of its history) 0.0745 and
# test 0.0538 (lr 5e-3; lr 1e-3: 0.0629 and 0.0537).
SEQREC_TRAINING = {
    "bert4rec": {"lr": 2e-3, "window_step": 10},
    "sasrec": {"lr": 1e-3, "window_step": 25},
    "gru4rec": {"lr": 5e-3, "window_step": 10},
    "gru4recf": {"lr": 5e-3, "window_step": 10},
}


def inter_file(data_dir: Path, work: Path) -> Path:
    """The data set's ``.inter`` file; a ``user item`` text file is written out as one first."""
    inters = sorted(data_dir.glob("*.inter"))
    if inters:
        return inters[0]
    texts = sorted(data_dir.glob("*.txt"))
    if len(texts) != 1:
        raise SystemExit(f"{data_dir}: expected one *.inter or one 'user item' *.txt file")
    lines = pl.read_csv(texts[0], separator=" ", has_header=False, new_columns=["user", "item"])
    out = work / f"{texts[0].stem}.inter"
    lines.with_columns(pl.int_range(pl.len()).over("user").alias("position")).write_csv(
        out, separator="\t", include_header=False
    )
    header = "user_id:token\titem_id:token\ttimestamp:float\n"
    out.write_text(header + out.read_text())
    return out


def recbole_prefix_lengths(train_lengths: np.ndarray, max_len: int) -> np.ndarray:
    """Item count of each of RecBole's training samples: one prefix per target position
    1..n-1 of every training sequence, truncated to ``max_len``."""
    return np.concatenate([np.minimum(np.arange(1, n), max_len) for n in train_lengths])


def recbole_bert4rec_targets(
    prefix_lengths: np.ndarray, ratio: float, cap: int, ft: float
) -> float:
    """Expected masked targets per epoch of RecBole 1.2.1's BERT4Rec (``MaskItemSeq``): with
    probability ``ft`` (``ft_ratio``) a batch is masked at its newest item only (one target per
    sample); otherwise each item is masked with probability ``ratio`` and only the last ``cap``
    (= int(ratio * max_len)) masked items of a sample are targets:
    E[min(Binomial(n, ratio), cap)]."""
    expected = np.zeros(prefix_lengths.max() + 1)
    for n in range(1, len(expected)):
        k = np.arange(n + 1)
        pmf = np.array([math.comb(n, j) for j in k]) * ratio**k * (1 - ratio) ** (n - k)
        expected[n] = float((np.minimum(k, cap) * pmf).sum())
    return ft * len(prefix_lengths) + (1 - ft) * float(expected[prefix_lengths].sum())


def seqrec_config(
    model: str, epochs: int, inter: Path, out: Path, lr: float | None = None, patience: int = 10
) -> dict[str, Any]:
    training = SEQREC_TRAINING[model] | ({} if lr is None else {"lr": lr})
    sizes = RECURRENT_SHARED if model in RECURRENT else SHARED
    return {
        # GRU4RecF's item features come from the .item file beside the .inter file
        "data": {"dataset": str(inter), "split": {"kind": "leave_one_out"}},
        "model": {"name": model, **sizes, **MODEL_SETTINGS[model]},
        "training": {
            "epochs": epochs, "batch_size": 256, "eval_every": 1, "patience": patience,
            "progress_bar": False, "seed": 2020, **training,
        },
        "evaluation": {
            "protocols": ["full-keep-history", "full"], "valid_protocol": "full-keep-history",
            "metrics": ["NDCG@10", "HR@10", "MRR@10"],
        },
        "output": {"dir": str(out)},
    }  # fmt: skip


def seqrec_targets(model: Any, window_lengths: np.ndarray) -> float:
    """Training targets per epoch: every position after the first (SASRec, GRU4Rec, GRU4RecF);
    for BERT4Rec the expectation over ``last_item_mask_prob`` of one target (newest item masked)
    and otherwise max(1, round(mask_ratio x items)) masked items per window (the Cloze masking
    used)."""
    if model.name != "bert4rec":
        return float((window_lengths - 1).sum())
    last, ratio = model.config.last_item_mask_prob, model.config.mask_ratio
    cloze = np.minimum(np.maximum(np.round(window_lengths * ratio), 1), window_lengths)
    return float((1 - last) * cloze.sum() + last * len(window_lengths))


def run_seqrec(
    model: str, epochs: int, inter: Path, work: Path, lr: float | None, patience: int,
    eval_repeats: int = EVAL_REPEATS,
) -> dict[str, Any]:  # fmt: skip
    config = seqrec_config(model, epochs, inter, work / f"seqrec-{model}", lr, patience)
    run = pipeline.train(config)
    history = run.fit.history
    data = prepare_data(run.config.data)
    evaluator = Evaluator(data.split.test, FullRanking(False), data.corpus.n_items, batch_size=256)
    evaluator.evaluate(run.model)  # as RecBole's side: its first test pass is not timed either
    eval_each = []
    for _ in range(eval_repeats):
        start = time.perf_counter()
        evaluator.evaluate(run.model)
        eval_each.append(time.perf_counter() - start)
    windows_array, _ = training_windows(
        data.split.train, run.model.train_seq_len, run.config.training.window_step
    )
    window_lengths = (windows_array > 0).sum(1)
    windows, tokens = len(windows_array), int(window_lengths.sum())
    return {
        "history": history,
        "train_seconds_per_epoch": [row["train_s"] for row in history],
        "windows_per_epoch": windows,
        "tokens_per_epoch": tokens,
        "targets_per_epoch": seqrec_targets(run.model, window_lengths),
        "test": {name: result.summary for name, result in run.results.items()},
        "eval_seconds": float(np.median(eval_each)),
        "eval_seconds_each": eval_each,
        "run_dir": str(run.dir),
    }


def first_reaching(curve: list[tuple[float, float]], value: float) -> float | None:
    """Wall time at which a (wall seconds, metric) curve first reaches ``value``."""
    return next((wall for wall, metric in curve if metric >= value - 1e-12), None)


def compare(model: str, recbole: dict, shipped: dict, ours: dict, prefixes: np.ndarray) -> dict:
    rb_train = float(np.median([e["train_seconds"] for e in recbole["epochs"]]))
    rb_shipped = (
        float(np.median([e["train_seconds"] for e in shipped["epochs"]])) if shipped else math.nan
    )
    rb_sequences = recbole["epochs"][0]["train_samples"]
    if model != "bert4rec":
        rb_targets = float(rb_sequences)  # one target per prefix
    else:
        ratio = MODEL_SETTINGS[model]["mask_ratio"]
        cap, ft = int(ratio * SHARED["max_len"]), RECBOLE_FT_RATIO
        # an epoch cut short (--recbole-max-batches) saw a shuffled share of the prefixes
        seen = rb_sequences / len(prefixes)
        rb_targets = seen * recbole_bert4rec_targets(prefixes, ratio, cap, ft)
    our_train = float(np.median(ours["train_seconds_per_epoch"]))
    per_target = {
        "recbole_off": rb_train / rb_targets, "recbole_shipped": rb_shipped / rb_targets,
        "seqrec": our_train / ours["targets_per_epoch"],
    }  # fmt: skip
    per_sequence = {
        "recbole_off": rb_train / rb_sequences, "recbole_shipped": rb_shipped / rb_sequences,
        "seqrec": our_train / ours["windows_per_epoch"],
    }  # fmt: skip
    best = max(e["valid_ndcg_at_10"] for e in recbole["epochs"])
    rb_curve = [(e["wall_seconds"], e["valid_ndcg_at_10"]) for e in recbole["epochs"]]
    our_curve = [(r["time_s"], r["valid_NDCG@10"]) for r in ours["history"]]
    rb_wall, our_wall = first_reaching(rb_curve, best), first_reaching(our_curve, best)
    if any(e.get("train_batches_capped") for e in recbole["epochs"]):
        rb_wall = our_wall = None  # a part of an epoch: no learning curve to compare
    shipped_wall = shipped_same_curve = None
    if shipped:
        # Anomaly detection records and checks; it does not change RecBole's arithmetic, so as
        # shipped RecBole follows the same validation curve epoch by epoch (checked on the
        # epochs both ran) at its own epoch time: derived, not measured, wall time to the best.
        both = zip(shipped["epochs"], recbole["epochs"], strict=False)
        shipped_same_curve = all(s["valid_ndcg_at_10"] == o["valid_ndcg_at_10"] for s, o in both)
        best_epoch = next(e["epoch"] for e in recbole["epochs"] if e["valid_ndcg_at_10"] >= best)
        valid = float(np.median([e["valid_seconds"] for e in recbole["epochs"]]))
        shipped_wall = best_epoch * (rb_shipped + valid)
    ours_test = ours["test"]["full-keep-history"]["NDCG@10"]
    return {
        "a_seconds_per_target": per_target,
        "a_ratio_per_target_vs_off": per_target["seqrec"] / per_target["recbole_off"],
        "a_ratio_per_target_vs_shipped": per_target["seqrec"] / per_target["recbole_shipped"],
        "a_seconds_per_sequence": per_sequence,
        "a_ratio_per_sequence_vs_off": per_sequence["seqrec"] / per_sequence["recbole_off"],
        "a_targets_per_epoch": {"recbole": rb_targets, "seqrec": ours["targets_per_epoch"]},
        "b_recbole_best_valid_ndcg10": best,
        "b_recbole_wall_s": rb_wall,
        "b_seqrec_wall_s": our_wall,
        "b_ratio": None if our_wall is None or rb_wall is None else our_wall / rb_wall,
        "b_recbole_shipped_wall_s_derived": shipped_wall,
        "b_recbole_shipped_same_curve": shipped_same_curve,
        "b_ratio_vs_shipped_derived": (
            None if our_wall is None or shipped_wall is None else our_wall / shipped_wall
        ),
        "c_recbole_eval_s": recbole["test"]["eval_seconds"],
        "c_seqrec_eval_s": ours["eval_seconds"],
        "c_ratio": ours["eval_seconds"] / recbole["test"]["eval_seconds"],
        "d_recbole_test_ndcg10": recbole["test"]["metrics"]["ndcg@10"],
        "d_seqrec_test_ndcg10": ours_test,
        "d_seqrec_test_ndcg10_history_excluded": ours["test"]["full"]["NDCG@10"],
    }


def markdown(rows: dict[str, dict]) -> str:
    lines = [
        "| model | (a) s/target RecBole off / shipped / seqrec | ratio vs off | ratio vs shipped "
        "| (b) wall to RecBole's best valid NDCG@10 (RecBole off / shipped, derived / seqrec) "
        "| ratio vs off / vs shipped "
        "| (c) full-sort eval s (RecBole / seqrec) | ratio "
        "| (d) test NDCG@10 RecBole / seqrec [95% CI] | seqrec, history excluded |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, r in rows.items():
        t, d = r["a_seconds_per_target"], r["d_seqrec_test_ndcg10"]
        capped = r["b_recbole_wall_s"] is None
        b_ratio = "not reached" if r["b_ratio"] is None else f"{r['b_ratio']:.3f}"
        b_ratio = "-" if capped else b_ratio
        b_ratio_shipped = r.get("b_ratio_vs_shipped_derived")
        if b_ratio_shipped is not None:
            b_ratio += f" / {b_ratio_shipped:.3f}"
        b_ours = "-" if r["b_seqrec_wall_s"] is None else f"{r['b_seqrec_wall_s']:.0f}"
        shipped_wall = r.get("b_recbole_shipped_wall_s_derived")
        b_shipped = "-" if shipped_wall is None else f"{shipped_wall:.0f}"
        b_wall = (
            "RecBole's epochs cut short (--recbole-max-batches)"
            if capped
            else f"{r['b_recbole_wall_s']:.0f} s / {b_shipped} s / {b_ours} s "
            f"(best {r['b_recbole_best_valid_ndcg10']:.4f})"
        )
        lines.append(
            f"| {model} | {t['recbole_off']:.2e} / {t['recbole_shipped']:.2e} / {t['seqrec']:.2e} "
            f"| {r['a_ratio_per_target_vs_off']:.3f} | {r['a_ratio_per_target_vs_shipped']:.3f} "
            f"| {b_wall} | {b_ratio} "
            f"| {r['c_recbole_eval_s']:.3f} / {r['c_seqrec_eval_s']:.3f} "
            f"| {r['c_ratio']:.3f} | {r['d_recbole_test_ndcg10']:.4f} / {d['mean']:.4f} "
            f"[{d['ci_low']:.4f}, {d['ci_high']:.4f}] "
            f"| {r['d_seqrec_test_ndcg10_history_excluded']['mean']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def measure_recbole(
    model: str, args: argparse.Namespace, rb_dir: Path, work: Path
) -> tuple[dict, dict | None]:
    """RecBole with anomaly detection off and, unless ``--shipped-epochs 0``, as shipped."""
    name = RECBOLE_NAMES[model]
    repeats = {"eval_repeats": args.eval_repeats, "max_batches": args.recbole_max_batches}
    off = work / f"{model}-off.json"
    recbole = run_recbole(name, args.recbole_epochs, "off", rb_dir, off, **repeats)
    if not args.shipped_epochs:
        return recbole, None
    out = work / f"{model}-sh.json"
    return recbole, run_recbole(name, args.shipped_epochs, "shipped", rb_dir, out, **repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(RECBOLE_NAMES),
                        choices=[*RECBOLE_NAMES, "dien"])  # fmt: skip
    parser.add_argument("--recbole-epochs", type=int, default=10)
    parser.add_argument("--shipped-epochs", type=int, default=1)
    parser.add_argument("--seqrec-epochs", type=int, default=60)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/ml-100k"))
    parser.add_argument("--seqrec-lr", type=float, help="default: SEQREC_TRAINING's, per model")
    parser.add_argument("--seqrec-patience", type=int, default=10, help="validations (early stop)")
    parser.add_argument("--eval-repeats", type=int, default=EVAL_REPEATS,
                        help="timed full-sort passes per side (median)")  # fmt: skip
    parser.add_argument(
        "--recbole-max-batches", type=int, default=0,
        help="RecBole trains each epoch's first N batches only (time per target; no curve)",
    )  # fmt: skip
    parser.add_argument("--recompute", type=Path, help="recompute the table from a results JSON")
    parser.add_argument(
        "--recbole-results", type=Path, help="reuse RecBole's side of an earlier results JSON"
    )
    parser.add_argument("--dien-epochs", type=int, default=1, help="DIEN: RecBole's epochs")
    parser.add_argument("--dien-seqrec-epochs", type=int, default=3, help="DIEN: seqrec's most")
    parser.add_argument("--dien-lr", type=float, help="DIEN: seqrec's learning rate")
    parser.add_argument(
        "--dien-recbole-inputs", action="store_true",
        help="DIEN: seqrec's final MLP reads only RecBole's inputs (no history sum)",
    )  # fmt: skip
    args = parser.parse_args()
    keep_freed_memory()  # seqrec trains in this process, set up as `seqrec train` sets it up
    work = Path(tempfile.mkdtemp(prefix="vs-recbole-"))
    inter = inter_file(args.data_dir, work)
    args.dataset = inter.stem
    rb_dir = work / "recbole-data"
    rb_dir.mkdir()
    (rb_dir / inter.name).symlink_to(inter.resolve())
    if inter.with_suffix(".item").is_file():  # GRU4RecF's item features, on both sides
        (rb_dir / inter.with_suffix(".item").name).symlink_to(inter.with_suffix(".item").resolve())
    if "dien" in args.models:
        compare_dien_side_by_side(args, inter, work, rb_dir)
        args.models = [m for m in args.models if m != "dien"]
        if not args.models:
            return
    train_lengths = prepare_data(
        pipeline.resolve_config(seqrec_config("sasrec", 1, inter, work)).data
    ).split.train.lengths
    prefixes = recbole_prefix_lengths(train_lengths, SHARED["max_len"])
    if args.recompute is not None:
        saved = json.loads(args.recompute.read_text())
        raw = saved["raw"]
        recompute = args.recompute
        vars(args).update(saved["args"])  # the measured run's settings, as they were
        args.recompute = recompute
        rows = {
            m: compare(
                m, raw[m]["recbole_off"], raw[m]["recbole_shipped"], raw[m]["seqrec"], prefixes
            )
            for m in args.models
        }
        write_results(args, rows, raw)
        return
    raw: dict[str, Any] = {"torch_threads": torch.get_num_threads()}
    earlier = json.loads(args.recbole_results.read_text())["raw"] if args.recbole_results else {}
    rows = {}
    for model in args.models:
        if model in earlier:  # RecBole measured in an earlier run of this script, seqrec now
            recbole, shipped = earlier[model]["recbole_off"], earlier[model]["recbole_shipped"]
        else:
            recbole, shipped = measure_recbole(model, args, rb_dir, work)
        ours = run_seqrec(
            model, args.seqrec_epochs, inter, work, args.seqrec_lr, args.seqrec_patience,
            args.eval_repeats,
        )  # fmt: skip
        raw[model] = {"recbole_off": recbole, "recbole_shipped": shipped, "seqrec": ours}
        rows[model] = compare(model, recbole, shipped, ours, prefixes)
        print(json.dumps(rows[model], indent=2, default=str), flush=True)
    write_results(args, rows, raw)


def compare_dien_side_by_side(
    args: argparse.Namespace, inter: Path, work: Path, rb_dir: Path
) -> None:
    """RecBole's DIEN (off and as shipped) and seqrec's, one table: vs_recbole_dien.{json,md}."""
    earlier = json.loads(args.recbole_results.read_text())["raw"] if args.recbole_results else {}
    if "dien" in earlier:
        recbole, shipped = earlier["dien"]["recbole_off"], earlier["dien"]["recbole_shipped"]
    else:
        recbole = run_recbole("DIEN", args.dien_epochs, "off", rb_dir, work / "dien-off.json")
        shipped = None
        if args.shipped_epochs:
            out = work / "dien-sh.json"
            shipped = run_recbole("DIEN", args.shipped_epochs, "shipped", rb_dir, out)
    ours = run_seqrec_dien(
        args.dien_seqrec_epochs, inter, work, not args.dien_recbole_inputs, args.dien_lr
    )
    row = compare_dien(recbole, shipped, ours)
    raw = {
        "torch_threads": torch.get_num_threads(),
        "dien": {"recbole_off": recbole, "recbole_shipped": shipped, "seqrec": ours},
    }
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / "vs_recbole_dien"
    report = json.dumps({"args": vars(args), "row": row, "raw": raw}, indent=2, default=str)
    stem.with_suffix(".json").write_text(report + "\n")
    stem.with_suffix(".md").write_text(markdown_dien(row))
    print(markdown_dien(row))


def write_results(args: argparse.Namespace, rows: dict, raw: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    reused = "_recbole-reused" if args.recbole_results else ""
    dataset = "" if args.dataset == "ml-100k" else f"_{args.dataset}"
    stem = RESULTS / f"vs_recbole_{'_'.join(args.models)}{dataset}{reused}"
    report = json.dumps({"args": vars(args), "rows": rows, "raw": raw}, indent=2, default=str)
    stem.with_suffix(".json").write_text(report + "\n")
    table = markdown(rows)
    stem.with_suffix(".md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
