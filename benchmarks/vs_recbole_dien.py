"""DIEN against RecBole 1.2.1's DIEN on ml-100k: same samples, same sizes, one run.

Both sides train on every prefix of every training sequence (its newest 50 items the history,
the next item the click) with one uniformly drawn non-clicked item per click, and are tested
against 100 uniform negatives per test user (RecBole's DIN/DIEN evaluation; each library draws
its own negatives). Sizes are RecBole's DIEN.yaml: embeddings of 10, the attention, auxiliary
and final MLPs 256-256-256, the user id embedded, AUGRU. seqrec's DIEN differs where its
docstring says; here in particular its final MLP uses PReLU (RecBole's "Dice" is
``sigmoid(s) * s``), its auxiliary network (RecBole's has no activations: one linear map) is
computed as that one map, and by default its final MLP also reads the history sum and its
product with the target, as the DIEN authors' code does (``--dien-recbole-inputs`` leaves them
out, as RecBole does).

RecBole trains ``--dien-epochs`` epochs (default 1, the measurement this comparison is held
to), seqrec up to ``--dien-seqrec-epochs`` (default 3) and keeps its best validation AUC.
Reported: (a) training seconds per sample (click or non-click), the median over epochs, for
RecBole with anomaly detection off and as shipped, and for seqrec, with the ratios; (b) test AUC
and LogLoss (seqrec with 95% bootstrap CIs, and GAUC) and the epochs each side trained; (c) the
seconds of one test evaluation (median of 7 after one untimed pass). RecBole runs with two
torch threads (``recbole_runner``'s default); leave ``OMP_NUM_THREADS`` unset on a 2-core machine
so that seqrec has the same two (the JSON records ``torch_threads``). Used by
``vs_recbole.py --models dien``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from seqrec import pipeline
from seqrec.evaluation.evaluator import Evaluator
from seqrec.evaluation.protocols import parse_protocol
from seqrec.training.data import training_windows

EVAL_REPEATS = 7
RECBOLE_SIZES = {  # RecBole 1.2.1's DIEN.yaml sizes, in seqrec's names
    "max_len": 50, "embedding_size": 10, "gru_type": "AUGRU",
    "att_hidden_size": [256, 256, 256], "attention_activation": "sigmoid", "softmax_stag": True,
    "aux_hidden_size": [256, 256, 256], "aux_activation": "none",
    "mlp_hidden_size": [256, 256, 256], "dropout": 0.0, "alpha": 1.0,
    "n_negatives": 1, "sampler": "uniform",
    # RecBole's "Dice" is sigmoid(s) * s after a BatchNorm; seqrec's (the paper's) Dice trained
    # to a lower AUC on ml-100k than PReLU (0.827 against 0.839 after 0.8 epochs)
    "mlp_activation": "prelu",
}  # fmt: skip
SEQREC_TRAINING = {"batch_size": 128, "lr": 3e-3, "window_step": 1}  # 128 windows = 256 samples


def dien_config(
    epochs: int, inter: Path, out: Path, history_sum: bool, lr: float | None
) -> dict[str, Any]:
    """seqrec's run: up to ``epochs`` epochs, the best validation AUC kept (patience 1)."""
    training = SEQREC_TRAINING | ({} if lr is None else {"lr": lr})
    return {
        "data": {"dataset": str(inter), "split": {"kind": "leave_one_out"}},
        "model": {
            "name": "dien", **RECBOLE_SIZES, "user_embedding": True, "history_sum": history_sum,
        },
        "training": {
            "epochs": epochs, "eval_every": 1, "patience": 1, "early_stopping_metric": "AUC",
            "progress_bar": False, "seed": 2020, **training,
        },
        "evaluation": {"protocols": ["uniform100"], "metrics": ["AUC", "GAUC", "LogLoss"]},
        "output": {"dir": str(out)},
    }  # fmt: skip


def run_seqrec_dien(
    epochs: int, inter: Path, work: Path, history_sum: bool = True, lr: float | None = None
) -> dict[str, Any]:
    """Train seqrec's DIEN through the pipeline; time its epochs and its test evaluation."""
    run = pipeline.train(dien_config(epochs, inter, work / "seqrec-dien", history_sum, lr))
    data = run.prepared()
    evaluator = Evaluator(
        data.split.test, parse_protocol("uniform100"), data.corpus.n_items,
        data.corpus.item_counts(), metrics=("AUC",),
    )  # fmt: skip
    evaluator.evaluate(run.model)  # untimed, as on RecBole's side
    eval_each = []
    for _ in range(EVAL_REPEATS):
        start = time.perf_counter()
        evaluator.evaluate(run.model)
        eval_each.append(time.perf_counter() - start)
    windows, _ = training_windows(data.split.train, run.model.train_seq_len, 1, prefixes=True)
    return {
        "history": run.fit.history,
        "train_seconds_per_epoch": [row["train_s"] for row in run.fit.history],
        "windows_per_epoch": len(windows),
        "samples_per_epoch": len(windows) * (1 + run.model.config.n_negatives),
        "test": run.results["uniform100"].summary,
        "eval_seconds": float(np.median(eval_each)),
        "eval_seconds_each": eval_each,
        "best_epoch": run.fit.best_epoch,
        "run_dir": str(run.dir),
        "model_config": run.config.model.kwargs(),
    }


def compare_dien(recbole: dict, shipped: dict | None, ours: dict) -> dict[str, Any]:
    def per_sample(result: dict) -> float:
        epochs = result["epochs"]
        return float(np.median([e["train_seconds"] / e["train_samples"] for e in epochs]))

    rb_off = per_sample(recbole)
    rb_shipped = per_sample(shipped) if shipped else float("nan")
    mine = float(np.median(ours["train_seconds_per_epoch"])) / ours["samples_per_epoch"]
    rb_test, test = recbole["test"]["metrics"], ours["test"]
    return {
        "a_seconds_per_sample": {"recbole_off": rb_off, "recbole_shipped": rb_shipped,
                                 "seqrec": mine},
        "a_ratio_vs_off": mine / rb_off,
        "a_ratio_vs_shipped": mine / rb_shipped,
        "a_samples_per_epoch": {"recbole": recbole["epochs"][0]["train_samples"],
                                "seqrec": ours["samples_per_epoch"]},
        "b_epochs": {"recbole": len(recbole["epochs"]), "seqrec": len(ours["history"]),
                     "seqrec_best": ours["best_epoch"]},
        "b_recbole_test": {"auc": rb_test["auc"], "logloss": rb_test["logloss"]},
        "b_seqrec_test": {name: test[name] for name in ("AUC", "GAUC", "LogLoss")},
        "c_recbole_eval_s": recbole["test"]["eval_seconds"],
        "c_seqrec_eval_s": ours["eval_seconds"],
    }  # fmt: skip


def markdown_dien(row: dict[str, Any]) -> str:
    t, ours = row["a_seconds_per_sample"], row["b_seqrec_test"]
    auc, logloss = ours["AUC"], ours["LogLoss"]
    ran_shipped = not math.isnan(t["recbole_shipped"])  # --shipped-epochs 0: not run
    shipped = f"{t['recbole_shipped']:.2e}" if ran_shipped else "not run"
    vs_shipped = f" / {row['a_ratio_vs_shipped']:.2f}x" if ran_shipped else ""
    return "\n".join([
        "| DIEN | RecBole, anomaly detection off | RecBole, as shipped | seqrec |",
        "|---|---|---|---|",
        f"| (a) training s per sample | {t['recbole_off']:.2e} | {shipped} "
        f"| {t['seqrec']:.2e} ({row['a_ratio_vs_off']:.2f}x{vs_shipped}) |",
        f"| samples per epoch | {row['a_samples_per_epoch']['recbole']:,} | | "
        f"{row['a_samples_per_epoch']['seqrec']:,} |",
        f"| (b) test AUC (uniform100) | {row['b_recbole_test']['auc']:.4f} | | {auc['mean']:.4f} "
        f"[{auc['ci_low']:.4f}, {auc['ci_high']:.4f}] |",
        f"| test LogLoss | {row['b_recbole_test']['logloss']:.4f} | | {logloss['mean']:.4f} "
        f"[{logloss['ci_low']:.4f}, {logloss['ci_high']:.4f}] |",
        f"| test GAUC | | | {ours['GAUC']['mean']:.4f} |",
        f"| epochs trained (seqrec: best) | {row['b_epochs']['recbole']} | | "
        f"{row['b_epochs']['seqrec']} ({row['b_epochs']['seqrec_best']}) |",
        f"| (c) test evaluation s | {row['c_recbole_eval_s']:.3f} | "
        f"| {row['c_seqrec_eval_s']:.3f} |",
    ]) + "\n"  # fmt: skip
