"""Train and test one RecBole 1.2.1 sequential model and write timings and metrics as JSON.

Models: BERT4Rec and SASRec (hidden 64, 2 layers, 2 heads, inner 256), GRU4Rec and GRU4RecF
(RecBole's defaults: embedding 64, hidden 128, one layer, dropout 0.3; GRU4RecF with ml-100k's
`class` and `release_year` item features, token_seq pooled by sum), ranked over the whole
catalogue (NDCG@10); DIEN, a click-through model, is trained on every prefix with one uniform
negative per positive and tested with AUC and LogLoss against 100 uniform negatives per user
(RecBole's own DIN/DIEN settings, ``sequential_DIN.yaml``), with the sizes of ``DIEN_SETTINGS``.

Runs inside RecBole's own environment (see `recbole_runner.py`, which launches it) and imports
nothing from seqrec. RecBole is driven through its Python API; a Trainer subclass times each
epoch without changing what RecBole computes.

The JSON holds:
- `epochs`: per epoch `train_seconds`, `train_samples` (training rows seen: RecBole trains on
  every prefix of every training sequence; for DIEN, positives and negatives), `train_batches`,
  `train_batches_capped` (the epoch stopped at `--max-batches`), `train_loss_sum`,
  `valid_seconds`, `valid_score` (of `valid_metric`), `valid_ndcg_at_10`
  (ranking models), `valid_metrics` and `wall_seconds` (since training began, taken when that
  epoch's validation finished);
- `test`: metrics of the best-validation checkpoint, `eval_seconds` (one full-sort evaluation
  of all test users, model already loaded: the median of 7 passes, each in
  `eval_seconds_each`) and `eval_with_load_seconds` (the same plus loading
  the checkpoint);
- `anomaly`: the requested mode and `torch.is_anomaly_enabled()` after RecBole's models were
  imported and during training;
- `data`, `facts` (what RecBole 1.2.1 does, read from the running objects), `config`, `env`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import recbole
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.trainer import Trainer
from recbole.utils import get_model, get_trainer, init_seed

# RecBole 1.2.1 replaces data_path with its bundled copy whenever the dataset is named "ml-100k",
# so the atomic file is linked under a neutral name; RecBole's ml-100k settings are set explicitly.
DATASET_NAME = "bench"
TOPK = 10


TRANSFORMER_SIZES = {"hidden_size": 64, "n_layers": 2, "n_heads": 2, "inner_size": 256}
# RecBole 1.2.1's GRU4Rec / GRU4RecF defaults, stated so that both sides read the same numbers
RECURRENT_SIZES = {"embedding_size": 64, "hidden_size": 128, "num_layers": 1, "dropout_prob": 0.3}
ITEM_FEATURES = ["class", "release_year"]  # ml-100k's genres (token_seq) and year (token)


def model_settings(model: str) -> dict[str, Any]:
    """Sizes (and for GRU4RecF its item features) of one model."""
    if model == "GRU4Rec":
        return dict(RECURRENT_SIZES)
    if model == "GRU4RecF":
        return RECURRENT_SIZES | {"selected_features": ITEM_FEATURES, "pooling_mode": "sum"}
    if model == "DIEN":
        return {}  # DIEN_SETTINGS
    return dict(TRANSFORMER_SIZES)


# DIEN: RecBole's DIN/DIEN evaluation (sequential_DIN.yaml) and DIEN.yaml's sizes, written out;
# the timestamp column must be loaded (RecBole #1616)
DIEN_SETTINGS: dict[str, Any] = {
    "eval_args": {
        "split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "uni100",
    },
    "metrics": ["AUC", "LogLoss"],
    "valid_metric": "AUC",
    "train_neg_sample_args": {
        "distribution": "uniform", "sample_num": 1, "alpha": 1.0, "dynamic": False,
        "candidate_num": 0,
    },
    "embedding_size": 10,
    "mlp_hidden_size": [256, 256, 256],
    "dropout_prob": 0.0,
    "pooling_mode": "mean",
    "gru_type": "AUGRU",
    "alpha": 1.0,
    # batches count samples: 256 = 128 clicks + 128 non-clicks (seqrec: 128 windows), and
    # 256 test users x 101 candidates per evaluation batch (seqrec's evaluator: 256 users)
    "train_batch_size": 256,
    "eval_batch_size": 256 * 101,
}  # fmt: skip
RANKING_MODELS = ("BERT4Rec", "SASRec", "GRU4Rec", "GRU4RecF")


def model_config(model: str, epochs: int, seed: int, work: Path) -> dict[str, Any]:
    """``recbole_config`` with the model's own settings (DIEN's replace the ranking ones)."""
    settings = recbole_config(model, epochs, seed, work)
    if model == "DIEN":
        settings.pop("loss_type")
        settings.update(DIEN_SETTINGS)
    return settings


def recbole_config(model: str, epochs: int, seed: int, work: Path) -> dict[str, Any]:
    """RecBole settings shared with seqrec's side of the comparison."""
    load_col: dict[str, list[str]] = {"inter": ["user_id", "item_id", "timestamp"]}
    if model == "GRU4RecF":
        load_col["item"] = ["item_id", *ITEM_FEATURES]
    return {
        "data_path": str(work / "dataset"),
        "checkpoint_dir": str(work / "saved"),
        "load_col": load_col,
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        "normalize_all": True,  # RecBole's ml-100k default; also orders ties finer in float32
        "eval_args": {
            "split": {"LS": "valid_and_test"},
            "order": "TO",
            "group_by": "user",
            "mode": "full",
        },
        "MAX_ITEM_LIST_LENGTH": 50,
        **model_settings(model),
        "train_batch_size": 256,
        "eval_batch_size": 256,
        "learning_rate": 1e-3,
        "metrics": ["NDCG", "Hit", "MRR"],
        "topk": [TOPK],
        "metric_decimal_place": 6,  # RecBole rounds to 4 places by default
        "valid_metric": f"NDCG@{TOPK}",
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "epochs": epochs,
        "eval_step": 1,
        "stopping_step": 1_000_000,  # the whole learning curve, never an early stop
        "seed": seed,
        "reproducibility": True,
        "use_gpu": False,
        "worker": 0,
        "show_progress": False,
        "log_wandb": False,
    }


class BatchCapError(Exception):
    """Raised before the first batch past ``TimedTrainer.max_batches``: the epoch ends there."""


class TimedTrainer(Trainer):
    """RecBole's Trainer with every training epoch and validation timed; with ``max_batches``
    each epoch stops after that many batches (for time per sample where an epoch takes hours)."""

    def __init__(self, config: Config, model: torch.nn.Module, max_batches: int = 0) -> None:
        super().__init__(config, model)
        self.max_batches = max_batches
        self.epoch_log: list[dict[str, Any]] = []
        self.fit_start = 0.0
        self.anomaly_in_training: bool | None = None

    def fit(self, train_data: Any, valid_data: Any = None, **kwargs: Any) -> Any:
        self.fit_start = time.perf_counter()
        return super().fit(train_data, valid_data, **kwargs)

    def _train_epoch(
        self,
        train_data: Any,
        epoch_idx: int,
        loss_func: Callable[[Any], torch.Tensor] | None = None,
        show_progress: bool = False,
    ) -> Any:
        inner = loss_func or self.model.calculate_loss
        counts: dict[str, Any] = {"samples": 0, "batches": 0, "loss": 0.0, "end": None}

        def counted_loss(interaction: Any) -> torch.Tensor:
            if self.max_batches and counts["batches"] == self.max_batches:
                counts["end"] = time.perf_counter()
                raise BatchCapError
            counts["samples"] += len(interaction)
            counts["batches"] += 1
            loss = inner(interaction)
            counts["loss"] += loss.item()
            return loss

        self.anomaly_in_training = torch.is_anomaly_enabled()
        start = time.perf_counter()
        with contextlib.suppress(BatchCapError):
            super()._train_epoch(train_data, epoch_idx, counted_loss, show_progress)
        end = counts["end"] or time.perf_counter()
        self.epoch_log.append(
            {
                "epoch": epoch_idx + 1,
                "train_seconds": end - start,
                "train_samples": counts["samples"],
                "train_batches": counts["batches"],
                "train_batches_capped": counts["end"] is not None,
                "train_loss_sum": counts["loss"],
            }
        )
        return counts["loss"]

    def _valid_epoch(self, valid_data: Any, show_progress: bool = False) -> Any:
        start = time.perf_counter()
        score, result = super()._valid_epoch(valid_data, show_progress)
        end = time.perf_counter()
        entry = self.epoch_log[-1]
        entry.update(
            valid_seconds=end - start,
            valid_score=float(score),
            valid_metric=self.config["valid_metric"],
            valid_metrics={k: float(v) for k, v in result.items()},
            wall_seconds=end - self.fit_start,
        )
        if self.config["model"] in RANKING_MODELS:
            entry["valid_ndcg_at_10"] = float(score)
        print(
            f"epoch {entry['epoch']}: train {entry['train_seconds']:.1f}s "
            f"({entry['train_samples']} samples), valid {self.config['valid_metric']} "
            f"{score:.4f}, wall {entry['wall_seconds']:.1f}s",
            file=sys.stderr,
            flush=True,
        )
        return score, result


def link_dataset(data_dir: Path, dataset_root: Path) -> Path:
    """Link the single `.inter` file of `data_dir` (and its `.item` file, if there is one) into
    the layout RecBole reads."""
    inter_files = sorted(data_dir.glob("*.inter"))
    if len(inter_files) != 1:
        raise SystemExit(f"{data_dir}: expected exactly one *.inter file, found {len(inter_files)}")
    target = dataset_root / DATASET_NAME / f"{DATASET_NAME}.inter"
    target.parent.mkdir(parents=True)
    target.symlink_to(inter_files[0].resolve())
    items = inter_files[0].with_suffix(".item")
    if items.is_file():
        target.with_suffix(".item").symlink_to(items.resolve())
    return inter_files[0]


def timed_test(trainer: TimedTrainer, test_data: Any, repeats: int = 7) -> dict[str, Any]:
    """Test the best checkpoint, then time ``repeats`` more full-sort passes alone (median)."""
    start = time.perf_counter()
    result = trainer.evaluate(test_data, load_best_model=True)
    with_load = time.perf_counter() - start
    alone = []
    for _ in range(repeats):
        start = time.perf_counter()
        trainer.evaluate(test_data, load_best_model=False)
        alone.append(time.perf_counter() - start)
    return {
        "metrics": {k: float(v) for k, v in result.items()},
        "eval_seconds": float(np.median(alone)),
        "eval_seconds_each": alone,
        "eval_with_load_seconds": with_load,
        "users": len(test_data._dataset),
    }


def recbole_facts(
    config: Config, data: dict[str, Any], train_data: Any, test_data: Any
) -> dict[str, Any]:
    """What RecBole 1.2.1 does here, read from its objects; call after testing, since iterating
    a loader draws from the random state."""
    _, history_index, _, _ = next(iter(test_data))
    train_rows = len(train_data._dataset)
    ranking = config["model"] in RANKING_MODELS
    return {
        # sequential loaders yield no history index: only the padding id 0 is excluded
        "full_sort_masks_history": history_index is not None if ranking else None,
        "train_rows": train_rows,
        # every prefix of every sequence, less each user's first item, valid and test targets
        "train_rows_are_all_prefixes": train_rows == data["interactions"] - 3 * data["users"],
        "timestamp_dtype": str(train_data._dataset.inter_feat[config["TIME_FIELD"]].dtype),
        # min-max normalised, then float32: timestamps closer than about range / 2**24 tie
        "time_order": "stable sort on float32 timestamps; ties keep file order",
        "batch_transform": config["transform"],
    }


CONFIG_KEYS = (
    "MAX_ITEM_LIST_LENGTH",
    "embedding_size",
    "hidden_size",
    "num_layers",
    "dropout_prob",
    "selected_features",
    "pooling_mode",
    "n_layers",
    "n_heads",
    "inner_size",
    "hidden_dropout_prob",
    "attn_dropout_prob",
    "hidden_act",
    "mask_ratio",
    "ft_ratio",
    "loss_type",
    "train_batch_size",
    "eval_batch_size",
    "learning_rate",
    "learner",
    "weight_decay",
    "epochs",
    "stopping_step",
    "seed",
    "eval_args",
    "metrics",
    "topk",
    "valid_metric",
    "user_inter_num_interval",
    "item_inter_num_interval",
    "normalize_all",
    "load_col",
    "transform",
    "train_neg_sample_args",
    "metric_decimal_place",
    "embedding_size",
    "mlp_hidden_size",
    "dropout_prob",
    "pooling_mode",
    "gru_type",
    "alpha",
)


def prepare_data(config: Config, source: Path) -> tuple[dict[str, Any], Any, Any, Any]:
    """Load, filter, split and augment the data as RecBole does; return its size and loaders."""
    start = time.perf_counter()
    dataset = create_dataset(config)
    data = {
        "source": str(source),
        "interactions": int(dataset.inter_num),
        "users": int(dataset.user_num - 1),  # id 0 is padding
        "items": int(dataset.item_num - 1),
    }
    train_data, valid_data, test_data = data_preparation(config, dataset)
    data["prepare_seconds"] = time.perf_counter() - start
    return data, train_data, valid_data, test_data


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="recbole-bench-") as tmp:
        work = Path(tmp)
        os.chdir(work)  # RecBole writes log_tensorboard/ under the working directory
        source = link_dataset(args.data_dir, work / "dataset")
        settings = model_config(args.model, args.epochs, args.seed, work)
        # Config imports the model, and with it every sequential model module: sine.py turns
        # anomaly detection on for the whole process.
        config = Config(model=args.model, dataset=DATASET_NAME, config_dict=settings)
        anomaly = {"mode": args.anomaly, "enabled_after_import": torch.is_anomaly_enabled()}
        if args.anomaly == "off":
            torch.autograd.set_detect_anomaly(False)
        if get_trainer(config["MODEL_TYPE"], config["model"]) is not Trainer:
            raise SystemExit(f"{args.model} uses a special trainer; only Trainer is timed")

        init_seed(config["seed"], config["reproducibility"])
        data, train_data, valid_data, test_data = prepare_data(config, source)
        init_seed(config["seed"], config["reproducibility"])
        model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
        trainer = TimedTrainer(config, model, args.max_batches)
        trainer.fit(train_data, valid_data, verbose=False, saved=True, show_progress=False)
        test = timed_test(trainer, test_data, args.eval_repeats)
        anomaly["enabled_in_training"] = trainer.anomaly_in_training
        return {
            "library": "recbole",
            "model": args.model,
            "epochs": trainer.epoch_log,
            "test": test,
            "best_valid_score": float(trainer.best_valid_score),  # of config["valid_metric"]
            "best_valid_ndcg_at_10": float(trainer.best_valid_score),  # the same, older name
            "anomaly": anomaly,
            "data": data,
            "facts": recbole_facts(config, data, train_data, test_data),
            "config": {key: config[key] for key in CONFIG_KEYS if key in config},
            "env": environment(),
        }


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "recbole": recbole.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cpu_count": os.cpu_count(),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=[*RANKING_MODELS, "DIEN"], required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--anomaly", choices=["off", "shipped"], required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--eval-repeats", type=int, default=7, help="timed test passes")
    parser.add_argument(
        "--max-batches", type=int, default=0, help="train each epoch's first N batches only"
    )
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    args.out = args.out.resolve()
    # RecBole's Config reads `--key=value` pairs from sys.argv; it must see none of ours.
    del sys.argv[1:]
    return args


def main() -> None:
    args = parse_args()
    # pandas and torch deprecation notices raised from RecBole's own code, once per run
    warnings.filterwarnings("ignore", category=FutureWarning, module="recbole")
    # RecBole's checkpoints pickle its Config, which torch>=2.6 refuses to load by default.
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
