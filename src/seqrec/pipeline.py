"""The Python API: ``train``, ``resume``, ``evaluate``, ``recommend``, ``load_run``.

>>> run = train("configs/sasrec-ml-100k.yaml", **{"training.epochs": 5})  # doctest: +SKIP
>>> evaluate(run, protocol="popular100").to_markdown()  # doctest: +SKIP
>>> recommend(run, history=["50", "172", "133"], k=5)  # doctest: +SKIP

A run lives in one folder (see ``reporting.py``): everything needed to evaluate it again or to
recommend with it is read back from there, and model loading never unpickles.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seqrec import models
from seqrec.batch import SequenceBatch
from seqrec.config import (
    Config,
    ConfigError,
    DataConfig,
    EvaluationConfig,
    OutputConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    read_yaml,
    save_config,
)
from seqrec.data.batching import pad_left
from seqrec.data.corpus import Sequences, Vocabulary
from seqrec.evaluation.evaluator import Evaluator, check_metric_name
from seqrec.evaluation.protocols import FullRanking, Protocol, parse_protocol
from seqrec.evaluation.result import EvalResult
from seqrec.models.pop import Pop
from seqrec.reporting import save_results, write_report
from seqrec.training.export import load_model_dir, save_model_dir
from seqrec.training.fit import FitResult, fit, seed_everything
from seqrec.training.prepare import PreparedData, prepare_data

MODEL_DIR = "model"
BASELINES = {"pop": Pop}  # fitted from counts, evaluated without a training run


@dataclass
class Run:
    """A trained model with its config, item vocabulary and test results."""

    dir: Path
    config: Config
    model: nn.Module
    items: Vocabulary
    results: dict[str, EvalResult] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)  # as in metrics.json
    fit: FitResult | None = None
    data: PreparedData | None = field(default=None, repr=False)  # rebuilt from config on demand

    def prepared(self) -> PreparedData:
        """The run's corpus and split (read once, then kept)."""
        if self.data is None:
            self.data = prepare_data(self.config.data)
        return self.data

    @property
    def report(self) -> Path:
        return self.dir / "report.md"


# ---------------------------------------------------------------- config and checks


ConfigLike = Config | Mapping[str, Any] | str | Path


def resolve_config(config: ConfigLike, overrides: dict[str, Any] | None = None) -> Config:
    """A ``Config`` from an object, plain data or a YAML path, with ``{"a.b": value}`` overrides.

    Keyword-style keys may use ``__`` for the dots: ``training__epochs=3``.
    """
    pairs = [(k.replace("__", "."), v) for k, v in (overrides or {}).items()]
    if isinstance(config, Config):
        raw = config_to_dict(config)
    else:
        raw = dict(config) if isinstance(config, Mapping) else read_yaml(config)
    try:
        return config_from_dict(apply_overrides(raw, pairs))
    except ConfigError as error:
        where = f"{config}: " if isinstance(config, str | Path) else ""
        raise ConfigError(f"{where}{error}") from error


def protocol_of(name: str, exclude_history: bool = True) -> Protocol:
    """``parse_protocol`` where ``exclude_history=False`` turns ``full`` into keep-history."""
    protocol = parse_protocol(name)
    if isinstance(protocol, FullRanking) and not exclude_history:
        return FullRanking(exclude_history=False)
    return protocol


def check_evaluation(config: Config) -> None:
    """Fail before any data is read on a protocol or metric name that does not exist."""
    ev = config.evaluation
    try:
        for name in (*ev.protocols, *([ev.valid_protocol] if ev.valid_protocol else [])):
            parse_protocol(name)
        for name in (*ev.metrics, config.training.early_stopping_metric):
            check_metric_name(name)
    except ValueError as error:
        raise ConfigError(f"evaluation: {error}") from error
    if not ev.protocols:
        raise ConfigError("evaluation.protocols: give at least one protocol")


def _run_dir(config: Config) -> Path:
    if config.output.dir:
        return Path(config.output.dir)
    dataset = Path(config.data.dataset).stem or config.data.dataset
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.model.name}-{dataset}-{stamp}"


def device_for(config: Config) -> str:
    wants_gpu = config.training.accelerator in ("auto", "gpu", "cuda")
    return "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------- training


def _model_args(config: Config, n_items: int) -> dict[str, Any]:
    return {**config.model.kwargs(), "n_items": n_items}


def _validator(config: Config, data: PreparedData) -> Evaluator | None:
    ev = config.evaluation
    if len(data.split.valid) == 0:
        return None
    metrics = tuple(dict.fromkeys((*ev.metrics, config.training.early_stopping_metric)))
    protocol = protocol_of(ev.valid_protocol or ev.protocols[0], ev.exclude_history)
    return Evaluator(
        data.split.valid, protocol, data.corpus.n_items, data.corpus.item_counts(),
        metrics=metrics, batch_size=ev.batch_size,
    )  # fmt: skip


def _evaluate(evaluator: Evaluator, model: nn.Module, config: Config) -> EvalResult:
    device = device_for(config)
    return evaluator.evaluate(model.to(device), device)


def _start(config: ConfigLike, overrides: dict[str, Any]) -> tuple[Config, Path]:
    config = resolve_config(config, overrides)
    check_evaluation(config)
    run_dir = _run_dir(config)
    if (run_dir / "config.yaml").exists():
        raise FileExistsError(f"{run_dir} already holds a run; resume it or set another output.dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(config, output=OutputConfig(str(run_dir)))
    save_config(config, run_dir / "config.yaml")
    return config, run_dir


def train(config: ConfigLike, **overrides: Any) -> Run:
    """Train, evaluate on the test set under every configured protocol, write the run folder."""
    config, run_dir = _start(config, overrides)
    return _train_in(config, run_dir, resume=False)


def resume(run_dir: str | Path) -> Run:
    """Continue an interrupted run from its last checkpoint, exactly where it stopped."""
    run_dir = Path(run_dir)
    config = load_config(run_dir / "config.yaml")
    return _train_in(config, run_dir, resume=True)


def _train_in(config: Config, run_dir: Path, resume: bool) -> Run:
    data = prepare_data(config.data)
    seed_everything(config.training.seed)  # before the weights are initialised
    model = models.build_model(config.model.name, **_model_args(config, data.corpus.n_items))
    validator = _validator(config, data)
    if hasattr(model, "prepare_from_training"):  # e.g. item counts for popularity sampling
        model.prepare_from_training(data.split.train)
    fitted = fit(model, data.split.train, validator, config.training, run_dir, resume)
    save_model_dir(
        run_dir / MODEL_DIR, model, config.model.name,
        _model_args(config, data.corpus.n_items), data.corpus.items,
    )  # fmt: skip
    results = {
        name: _evaluate(_test_evaluator(config, data, name), model, config)
        for name in config.evaluation.protocols
    }
    metrics = save_results(run_dir, results, data.corpus.users)
    write_report(run_dir, config, data, fitted, results)
    return Run(run_dir, config, model, data.corpus.items, results, metrics, fitted, data)


def _test_evaluator(config: Config, data: PreparedData, protocol: str) -> Evaluator:
    ev = config.evaluation
    return Evaluator(
        data.split.test, protocol_of(protocol, ev.exclude_history), data.corpus.n_items,
        data.corpus.item_counts(), metrics=ev.metrics, batch_size=ev.batch_size,
    )  # fmt: skip


# ---------------------------------------------------------------- using a run


def load_run(path: str | Path) -> Run:
    """A run folder's config, model (safetensors, no unpickling), vocabulary and metrics."""
    run_dir = Path(path)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder: config.yaml is missing")
    config = load_config(run_dir / "config.yaml")
    model, items, _ = load_model_dir(run_dir / MODEL_DIR)
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return Run(run_dir, config, model, items, metrics=metrics)


def _as_run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else load_run(run)


def evaluate(run: Run | str | Path, protocol: str | None = None) -> EvalResult:
    """Test metrics of a run under ``protocol`` (default: the run's first protocol).

    The data and split are rebuilt from the run's config (deterministic) and kept on the run.
    """
    run = _as_run(run)
    name = protocol or run.config.evaluation.protocols[0]
    protocol_of(name)  # an unknown name fails before the data is read
    data = run.prepared()
    if data.corpus.n_items != run.model.n_items:
        raise ValueError(
            f"the data now has {data.corpus.n_items} items but the model was trained on "
            f"{run.model.n_items}: the data set changed since the run"
        )
    return _evaluate(_test_evaluator(run.config, data, name), run.model, run.config)


def evaluate_baseline(
    name: str, dataset: str, protocols: Sequence[str] = ("full",)
) -> tuple[dict[str, EvalResult], Vocabulary]:
    """Fit a count-based baseline on the leave-one-out training split and test it; no run folder.

    Returns the results per protocol and the user vocabulary (for per-user files).
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
    for protocol in protocols:
        protocol_of(protocol)
    data = prepare_data(DataConfig(dataset=dataset))
    model = BASELINES[name].fit(data.split.train, data.corpus.n_items)
    config = EvaluationConfig()
    results = {
        protocol: Evaluator(
            data.split.test, protocol_of(protocol), data.corpus.n_items,
            data.corpus.item_counts(), metrics=config.metrics, batch_size=config.batch_size,
        ).evaluate(model)
        for protocol in protocols
    }  # fmt: skip
    return results, data.corpus.users


@torch.no_grad()
def recommend(
    run: Run | str | Path, history: list[str], k: int = 10, exclude_history: bool = True
) -> list[tuple[str, float]]:
    """Top ``k`` (raw item id, score) after a history of raw item ids (oldest first).

    An id the model has never seen is an error that names it.
    """
    run = _as_run(run)
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    if len(history) == 0:
        raise ValueError("history is empty: give at least one item id")
    codes = run.items.encode([str(h) for h in history], what="item id")
    seqs = Sequences(np.array([0, len(codes)], dtype=np.int64), codes)
    item_seq = torch.from_numpy(pad_left(seqs, np.array([0]), run.model.max_len))
    model = run.model.cpu().eval()
    scores = model.full_sort_predict(SequenceBatch(item_seq=item_seq)).float()[0].clone()
    scores[0] = -torch.inf  # padding
    if exclude_history and len(codes):
        scores[torch.from_numpy(codes)] = -torch.inf
    k = min(k, int(torch.isfinite(scores).sum()))
    top = torch.topk(scores, k)
    raw = run.items.decode(top.indices.numpy())
    return [(str(r), float(s)) for r, s in zip(raw, top.values.tolist(), strict=True)]
