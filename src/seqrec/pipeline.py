"""The Python API: ``train``, ``resume``, ``evaluate``, ``recommend``, ``load_run``.

>>> run = train("configs/sasrec-ml-100k.yaml", **{"training.epochs": 5})  # doctest: +SKIP
>>> evaluate(run, protocol="popular100").to_markdown()  # doctest: +SKIP
>>> recommend(run, history=["50", "172", "133"], k=5)  # doctest: +SKIP

A run lives in one folder (see ``reporting.py``): everything needed to evaluate it again or to
recommend with it is read back from there, and model loading never unpickles.

With ``training.seeds`` a run trains one model per seed into ``seed-<s>/`` folders and reports
each metric's mean and spread across the seeds at the top (``seqrec.evaluation.seeds``).

``train`` checks everything it can before it writes anything: the whole config (types, ranges,
names of protocols and metrics, the accelerator against this machine), the data (read,
preprocessed and split once, then reused), the model (built from the config and the data's item
count) and the evaluators. Only then is the run folder made, so a failed start leaves nothing
behind; a failure during the first epoch removes the folder it made. Every problem with the
input is one of ``seqrec.errors`` (one line naming the file, key or argument).

Trained on several processes (``training.devices``, torchrun, SLURM), every process runs all of
this and evaluates its share of the users; only global rank 0 writes the run folder, whose name
they agree on (``seqrec.training.distributed``).
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch
from torch import nn

from seqrec import models
from seqrec.arguments import id_list, path_arg, positive_int
from seqrec.arguments import names as name_list  # ``names`` is a common local name here
from seqrec.config import (
    CONFIG_FILE,
    Config,
    DataConfig,
    EvaluationConfig,
    ModelConfig,
    OutputConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    read_yaml,
    save_config,
)
from seqrec.data.corpus import Vocabulary
from seqrec.errors import (
    ArgumentError,
    ConfigError,
    DataError,
    RunFolderError,
    SeqrecError,
    first_line,
)
from seqrec.evaluation.evaluator import Evaluator, check_metric_name, has_gauc_users
from seqrec.evaluation.protocols import FullRanking, LabelledImpressions, Protocol, parse_protocol
from seqrec.evaluation.result import EvalResult
from seqrec.evaluation.seeds import SeedsResult, across_seeds
from seqrec.metrics.ctr import is_ctr_metric
from seqrec.models.pop import Pop
from seqrec.reporting import save_results, write_report, write_seeds_report
from seqrec.training.data import MIN_WINDOW
from seqrec.training.distributed import agreed_run_dir, handed_on, writes_run_folder
from seqrec.training.export import WEIGHTS, load_model_dir, read_json, save_model_dir
from seqrec.training.fit import LAST_CHECKPOINT, FitResult, check_training, fit, seed_everything
from seqrec.training.inputs import attach_data, derived_fields
from seqrec.training.prepare import PreparedData, prepare_data
from seqrec.training.pruning import ValidationListener
from seqrec.training.steps_from import best_step

MODEL_DIR = "model"
BASELINES = {"pop": Pop}  # fitted from counts, evaluated without a training run


@dataclass
class Run:
    """A trained model with its config, item vocabulary and test results.

    ``metrics`` (as in ``metrics.json``) is read on first use: loading a run to recommend with it
    reads only what recommending needs. A run of several seeds (``training.seeds``) has no model
    of its own: ``seeds`` holds one run per seed (its ``seed-<s>/`` folder) and ``results`` their
    metrics across seeds.
    """

    dir: Path
    config: Config
    model: nn.Module | None
    items: Vocabulary
    results: dict[str, EvalResult | SeedsResult] = field(default_factory=dict)
    fit: FitResult | None = None
    data: PreparedData | None = field(default=None, repr=False)  # rebuilt from config on demand
    saved_metrics: dict[str, Any] | None = field(default=None, repr=False)
    seeds: list[Run] = field(default_factory=list)

    def prepared(self) -> PreparedData:
        """The run's corpus and split (read once, then kept)."""
        if self.data is None:
            self.data = prepare_data(self.config.data)
        return self.data

    @property
    def metrics(self) -> dict[str, Any]:
        """The run's ``metrics.json`` ({} when there is none); invalid JSON names the file."""
        if self.saved_metrics is None:
            path = self.dir / "metrics.json"
            self.saved_metrics = read_json(path) if path.is_file() else {}
        return self.saved_metrics

    @property
    def report(self) -> Path:
        return self.dir / "report.md"

    def per_user(self, protocol: str) -> pl.DataFrame:
        """The saved per-user test values under ``protocol`` (raw user ids; seed means)."""
        path = self.dir / "per_user" / f"{protocol}.parquet"
        if not path.is_file():
            saved = sorted(p.stem for p in (self.dir / "per_user").glob("*.parquet"))
            raise RunFolderError(
                f"{self.dir} has no per-user values for {protocol!r}; saved: {', '.join(saved)}"
            )
        return pl.read_parquet(path)


# ---------------------------------------------------------------- arguments of the API


# ---------------------------------------------------------------- config and checks


ConfigLike = Config | Mapping[str, Any] | str | Path


def resolve_config(config: ConfigLike, overrides: dict[str, Any] | None = None) -> Config:
    """A ``Config`` from an object, plain data or a YAML path, with ``{"a.b": value}`` overrides.

    Keyword-style keys may use ``__`` for the dots: ``training__epochs=3``.
    """
    if not isinstance(config, Config | Mapping | str | Path):
        raise ArgumentError(
            f"config: expected a Config, a mapping or a YAML path, got {type(config).__name__}"
        )
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


def protocol_of(name: str, exclude_history: bool = True, negatives_seed: int = 12345) -> Protocol:
    """``parse_protocol`` where ``exclude_history=False`` turns ``full`` into keep-history."""
    if not isinstance(name, str):
        raise ArgumentError(f"protocol: expected a protocol name (str), got {name!r}")
    try:
        protocol = parse_protocol(name, negatives_seed)
    except ValueError as error:
        shown = str(error) if repr(name) in str(error) else f"protocol {name!r}: {error}"
        raise ConfigError(shown) from error
    if isinstance(protocol, FullRanking) and not exclude_history:
        return FullRanking(exclude_history=False)
    return protocol


def check_evaluation(config: Config) -> None:
    """Fail before any data is read on a protocol or metric name that does not exist."""
    ev = config.evaluation
    for key, names in (
        ("evaluation.protocols", ev.protocols),
        ("evaluation.valid_protocol", [ev.valid_protocol] if ev.valid_protocol else []),
    ):
        for name in names:
            try:
                parse_protocol(name)
            except ValueError as error:
                raise ConfigError(f"{key}: {error}") from error
    for key, names in (
        ("evaluation.metrics", ev.metrics),
        ("training.early_stopping_metric", [config.training.early_stopping_metric]),
    ):
        for name in names:
            try:
                check_metric_name(name)
            except ValueError as error:
                raise ConfigError(f"{key}: {error}") from error
    _check_labelled(config)


def _is_labelled(name: str) -> bool:
    return isinstance(parse_protocol(name), LabelledImpressions)


def _check_labelled(config: Config) -> None:
    """The labelled protocol measures click-through metrics only, in its test and validation."""
    ev = config.evaluation
    early = config.training.early_stopping_metric
    if _is_labelled(ev.valid_protocol or ev.protocols[0]) and not is_ctr_metric(early):
        raise ConfigError(
            f"training.early_stopping_metric: {early} ranks candidates, and validation runs "
            "under the labelled protocol: use AUC, GAUC or LogLoss"
        )
    ranking = [m for m in ev.metrics if not is_ctr_metric(m)]
    if any(_is_labelled(name) for name in ev.protocols) and ranking:
        raise ConfigError(
            f"evaluation.metrics: {', '.join(ranking)} rank candidates, and the labelled protocol "
            "has none: give AUC, GAUC or LogLoss only (rank in another run)"
        )


def device_for(config: Config) -> str:
    wants_gpu = config.training.accelerator in ("auto", "gpu", "cuda")
    return "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------- the checks before a run


def _model_args(config: Config, data: PreparedData) -> dict[str, Any]:
    """The model's build arguments: the config's, plus what comes from the data (``n_items``,
    the item feature spec); saved as the model folder's ``config.json``."""
    return config.model.kwargs() | derived_fields(config.model.name, data)


def build_run_model(config: Config, data: PreparedData) -> nn.Module:
    """The config's model for the data, with its feature tables and training statistics
    attached; the model's own argument checks become ``ConfigError``."""
    try:
        model = models.build_model(config.model.name, **_model_args(config, data))
    except (ValueError, TypeError, RuntimeError, ZeroDivisionError) as error:  # its own checks
        # "SASRecConfig.n_negatives: ..." -> "model.n_negatives: ..."
        message = re.sub(r"\b\w+Config\.(\w+)", r"model.\1", first_line(error))
        n_items = data.corpus.n_items
        raise ConfigError(f"model ({config.model.name}, {n_items:,} items): {message}") from error
    attach_data(model, data)
    return model


def _evaluator(
    ev: EvaluationConfig, data: PreparedData, name: str, valid: bool, metrics: tuple[str, ...]
) -> Evaluator:
    eval_set = data.split.valid if valid else data.split.test
    key = "evaluation.valid_protocol" if valid else "evaluation.protocols"
    if len(eval_set) == 0:
        notes = "; ".join(data.split.notes) or "no user has an interaction to hold out"
        raise DataError(
            f"data.split: the {'validation' if valid else 'test'} set is empty ({notes})"
        )
    try:
        return Evaluator(
            eval_set, protocol_of(name, ev.exclude_history, ev.negatives_seed),
            data.corpus.n_items, data.corpus.item_counts(), metrics=metrics,
            batch_size=ev.batch_size, bootstrap=ev.bootstrap,
        )  # fmt: skip
    except ValueError as error:  # e.g. fewer items left than the protocol's negatives
        if isinstance(error, SeqrecError):
            raise
        raise ConfigError(f"{key}: {name}: {error}") from error


def _validator(config: Config, data: PreparedData) -> Evaluator | None:
    ev = config.evaluation
    if len(data.split.valid) == 0 or config.training.eval_every == 0:
        return None
    early = config.training.early_stopping_metric
    metrics = tuple(dict.fromkeys((*ev.metrics, early)))
    protocol = ev.valid_protocol or ev.protocols[0]
    if _is_labelled(protocol) and not has_gauc_users(data.split.valid) and early.upper() != "GAUC":
        # few held-out interactions per user (a ratio split of short sequences): validation
        # goes without GAUC, which it would not stop on; the test set may still have it
        metrics = tuple(m for m in metrics if m.upper() != "GAUC")
    return _evaluator(ev, data, protocol, True, metrics)


def _test_evaluator(ev: EvaluationConfig, data: PreparedData, protocol: str) -> Evaluator:
    return _evaluator(ev, data, protocol, False, ev.metrics)


def _check_trainable(data: PreparedData) -> None:
    if not (data.split.train.lengths >= MIN_WINDOW).any():
        raise DataError(
            f"{data.corpus.n_users:,} users, but none has {MIN_WINDOW} or more training "
            "interactions after the split: nothing to train on"
        )


@dataclass
class _Plan:
    """Everything a run needs, built and checked before anything is written."""

    config: Config
    data: PreparedData
    model: nn.Module
    validator: Evaluator | None
    testers: dict[str, Evaluator]


def _steps_from(config: Config) -> Config:
    """``training.max_steps`` and, unless given, ``training.schedule_steps`` set from
    ``training.steps_from`` (see ``steps_from.py``)."""
    t = config.training
    if t.steps_from is None:
        return config
    best = best_step(t.steps_from, config.data.dataset)
    if t.max_steps not in (None, best.step):
        raise ConfigError(
            f"training.max_steps {t.max_steps} and training.steps_from {t.steps_from} "
            f"({best.step} steps) disagree: give one of them"
        )
    schedule = t.schedule_steps or best.schedule_steps
    training = dataclasses.replace(t, max_steps=best.step, schedule_steps=schedule)
    return dataclasses.replace(config, training=training)


def _plan(config: Config) -> _Plan:
    config = _steps_from(config)
    check_evaluation(config)
    check_training(config.training)
    data = prepare_data(config.data)
    _check_trainable(data)
    seed_everything(config.training.seed)  # before the weights are initialised
    model = build_run_model(config, data)
    validator = _validator(config, data)
    ev = config.evaluation
    testers = {name: _test_evaluator(ev, data, name) for name in ev.protocols}
    return _Plan(config, data, model, validator, testers)


# ---------------------------------------------------------------- run folders


def _holds_training(run_dir: Path) -> bool:
    return (run_dir / "checkpoints" / LAST_CHECKPOINT).is_file() or (run_dir / MODEL_DIR).is_dir()


def _check_free(run_dir: Path) -> None:
    """A folder to train into: new, empty, or left by a start that never finished an epoch."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"output.dir: {run_dir} exists and is not a folder")
    if not run_dir.is_dir():
        return
    if _holds_training(run_dir):
        raise RunFolderError(
            f"{run_dir} already holds a run; continue it with: seqrec train --resume {run_dir}, "
            "or set output.dir to another folder"
        )
    if any(run_dir.iterdir()) and not (run_dir / CONFIG_FILE).is_file():
        raise RunFolderError(f"output.dir: {run_dir} is not empty and holds no seqrec run")


def _first_missing(path: Path) -> Path | None:
    """The outermost folder that ``mkdir(parents=True)`` of ``path`` would create, if any."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def _make_run_dir(config: Config) -> tuple[Path, Path | None]:
    """(run folder, the outermost folder this call created, if any).

    Default names are unique even for runs started in the same second: a random suffix, and a
    ``mkdir`` that fails rather than share a folder. A process other than global rank 0 of a
    data-parallel run creates nothing: it takes the folder rank 0 names.
    """
    dataset = Path(config.data.dataset).stem or config.data.dataset
    stem = Path("runs") / f"{config.model.name}-{dataset}"
    agreed = Path(config.output.dir) if config.output.dir else agreed_run_dir(str(stem))
    if agreed is not None:
        _check_free(agreed)
        if not writes_run_folder():
            return agreed, None
        created = _first_missing(agreed)
        agreed.mkdir(parents=True, exist_ok=True)
        return agreed, created
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for _ in range(100):  # 65,536 suffixes a second: a clash is rare, a hundred never happen
        run_dir = Path(f"{stem}-{stamp}-{secrets.token_hex(2)}")
        created = _first_missing(run_dir)
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            run_dir.mkdir(exist_ok=False)
            return run_dir, created
        except FileExistsError:
            continue
    raise RunFolderError(f"no free run folder name under runs/ for {run_dir.name[:-5]}")


@contextmanager
def _removed_on_failure(run_dir: Path, created: Path | None) -> Iterator[None]:
    """Folders this call made are removed again if the run fails before its first checkpoint.

    The run folder goes with its contents; folders above it (e.g. ``runs/``) only while empty,
    so a run started beside this one at the same moment is never touched.
    """
    try:
        yield
    except BaseException:
        if created is not None and not _holds_training(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
            for folder in run_dir.parents:
                if folder == created.parent or not folder.is_dir() or any(folder.iterdir()):
                    break
                folder.rmdir()
        raise


# ---------------------------------------------------------------- training


def _evaluate(evaluator: Evaluator, model: nn.Module, config: Config) -> EvalResult:
    device = device_for(config)
    return evaluator.evaluate(model.to(device), device)


def train(
    config: ConfigLike, on_validation: ValidationListener | None = None, **overrides: Any
) -> Run:
    """Train, evaluate on the test set under every configured protocol, write the run folder.

    With ``training.seeds``, one model per seed (``seed-<s>/``) and their spread at the top.
    ``on_validation(epoch, value)`` is called after each validation of a single-seed run; an
    exception it raises (a pruned tuning trial) stops the run before its test evaluation.
    """
    config = resolve_config(config, overrides)
    if config.training.seeds and on_validation is not None:
        raise ConfigError("on_validation follows one training: give no training.seeds")
    plan = _plan(config)
    run_dir, created = _make_run_dir(plan.config)
    with _removed_on_failure(run_dir, created), handed_on(run_dir):
        plan.config = dataclasses.replace(plan.config, output=OutputConfig(str(run_dir)))
        if writes_run_folder():
            save_config(plan.config, run_dir / CONFIG_FILE)
        if plan.config.training.seeds:
            return _train_seeds(plan, run_dir, resume=False)
        return _train_in(plan, run_dir, resume=False, on_validation=on_validation)


def resume(run_dir: str | Path) -> Run:
    """Continue an interrupted run from its last checkpoint, exactly where it stopped.

    A run of several seeds skips the seeds that finished and continues the interrupted one.
    """
    run_dir = path_arg(run_dir, "run_dir")
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise RunFolderError(f"{run_dir} is not a run folder: {CONFIG_FILE} is missing")
    config = load_config(config_path)
    if config.training.seeds:
        return _train_seeds(_plan(config), run_dir, resume=True)
    if not (run_dir / "checkpoints" / LAST_CHECKPOINT).is_file():
        raise RunFolderError(
            f"{run_dir}: nothing to resume, training never finished an epoch "
            f"(no checkpoints/{LAST_CHECKPOINT}); start it again with: seqrec train {config_path}"
        )
    return _train_in(_plan(config), run_dir, resume=True)


def _fit_model(
    plan: _Plan, run_dir: Path, resume: bool, on_validation: ValidationListener | None = None
) -> FitResult:
    """Train with Lightning; a model with nothing to train (a count baseline) is not trained.

    What the model takes from the data (feature tables, statistics of the training split) was
    attached when it was built (``training.inputs.attach_data``).
    """
    model, config = plan.model, plan.config
    if not any(p.requires_grad for p in model.parameters()):
        return FitResult.untrained(config.training.early_stopping_metric)
    return fit(
        model, plan.data.split.train, plan.validator, config.training, run_dir, resume,
        on_validation,
    )  # fmt: skip


def _train_in(
    plan: _Plan, run_dir: Path, resume: bool, on_validation: ValidationListener | None = None
) -> Run:
    config, data, model = plan.config, plan.data, plan.model
    fitted = _fit_model(plan, run_dir, resume, on_validation)
    if writes_run_folder():
        save_model_dir(
            run_dir / MODEL_DIR, model, config.model.name, _model_args(config, data),
            data.corpus.items,
        )  # fmt: skip
    # every process of a data-parallel run scores its share of the users and sees all results
    results = {name: _evaluate(ev, model, config) for name, ev in plan.testers.items()}
    metrics = None
    if writes_run_folder():
        metrics = save_results(run_dir, results, data.corpus.users)
        write_report(run_dir, config, data, fitted, results)
    return Run(run_dir, config, model, data.corpus.items, results, fitted, data, metrics)


def _train_seeds(plan: _Plan, run_dir: Path, resume: bool) -> Run:
    """One model per seed in ``run_dir/seed-<s>/``, then each metric across the seeds on top.

    The data and evaluators are built once. Resuming skips the seeds that finished (their saved
    model is evaluated again) and continues the one that was interrupted.
    """
    config, data = plan.config, plan.data
    seeds = config.training.seeds
    runs = [_seed_run(plan, run_dir, seed, resume) for seed in seeds]
    results = {
        name: across_seeds([run.results[name] for run in runs], seeds)
        for name in config.evaluation.protocols
    }
    metrics = None
    if writes_run_folder():
        metrics = save_results(run_dir, results, data.corpus.users)
        write_seeds_report(run_dir, config, data, [run.fit for run in runs], results)
    return Run(run_dir, config, None, data.corpus.items, results, None, data, metrics, runs)


def _seed_run(plan: _Plan, run_dir: Path, seed: int, resume: bool) -> Run:
    seed_dir = run_dir / f"seed-{seed}"
    if resume and (seed_dir / "metrics.json").is_file():
        done = load_run(seed_dir)
        done.data = plan.data
        done.results = {n: _evaluate(ev, done.model, plan.config) for n, ev in plan.testers.items()}
        return done
    training = dataclasses.replace(plan.config.training, seed=seed, seeds=())
    config = dataclasses.replace(plan.config, training=training, output=OutputConfig(str(seed_dir)))
    seed_everything(seed)  # before the weights are initialised
    model = build_run_model(config, plan.data)
    interrupted = resume and (seed_dir / "checkpoints" / LAST_CHECKPOINT).is_file()
    if not interrupted and writes_run_folder():
        seed_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, seed_dir / CONFIG_FILE)
    seed_plan = _Plan(config, plan.data, model, plan.validator, plan.testers)
    return _train_in(seed_plan, seed_dir, interrupted)


# ---------------------------------------------------------------- using a run


def _load_model(run_dir: Path) -> tuple[nn.Module, Vocabulary]:
    """The model of a run folder (or of a model folder given directly)."""
    if (run_dir / WEIGHTS).is_file():
        model, items, _ = load_model_dir(run_dir)
        return model, items
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: no such run folder")
    if not (run_dir / MODEL_DIR).is_dir():
        seed_dirs = sorted(str(p) for p in run_dir.glob("seed-*") if p.is_dir())
        if seed_dirs:
            raise RunFolderError(
                f"{run_dir} holds one model per seed: use one of {', '.join(seed_dirs)}"
            )
        if (run_dir / "checkpoints" / LAST_CHECKPOINT).is_file():
            raise RunFolderError(
                f"{run_dir}: training did not finish (a checkpoint, no model yet); "
                f"continue it with: seqrec train --resume {run_dir}"
            )
        raise RunFolderError(
            f"{run_dir} holds no trained model (no {MODEL_DIR}/ folder)"
            + (f"; start it again with: seqrec train {run_dir / CONFIG_FILE}"
               if (run_dir / CONFIG_FILE).is_file() else "")
        )  # fmt: skip
    model, items, _ = load_model_dir(run_dir / MODEL_DIR)
    return model, items


def load_run(path: str | Path) -> Run:
    """A run folder's config and model (safetensors, no unpickling); metrics load on first use.

    A run of several seeds loads each ``seed-<s>/`` run into ``Run.seeds``. ``Run.per_user``
    gives the saved per-user test values back.
    """
    run_dir = path_arg(path, "run")
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: no such run folder")
    if not (run_dir / CONFIG_FILE).is_file():
        raise RunFolderError(f"{run_dir} is not a run folder: {CONFIG_FILE} is missing")
    config = load_config(run_dir / CONFIG_FILE)
    if config.training.seeds:
        seeds = [load_run(run_dir / f"seed-{seed}") for seed in config.training.seeds]
        return Run(run_dir, config, None, seeds[0].items, seeds=seeds)
    model, items = _load_model(run_dir)
    return Run(run_dir, config, model, items)


def _as_run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else load_run(path_arg(run, "run"))


def evaluate(run: Run | str | Path, protocol: str | None = None) -> EvalResult | SeedsResult:
    """Test metrics of a run under ``protocol`` (default: the run's first protocol).

    The data and split are rebuilt from the run's config (deterministic) and kept on the run. A
    run of several seeds gives each seed's result and their spread (a ``SeedsResult``).
    """
    run = _as_run(run)
    name = run.config.evaluation.protocols[0] if protocol is None else protocol
    protocol_of(name)  # an unknown name fails before the data is read
    if run.seeds:
        for seed_run in run.seeds:
            seed_run.data = run.prepared()  # one data set for every seed
        per_seed = [evaluate(seed_run, name) for seed_run in run.seeds]
        return across_seeds(per_seed, run.config.training.seeds)
    data = run.prepared()
    if data.corpus.n_items != run.model.n_items:
        raise RunFolderError(
            f"{run.dir}: the data now has {data.corpus.n_items:,} items but the model was "
            f"trained on {run.model.n_items:,}: the data set changed since the run"
        )
    evaluator = _test_evaluator(run.config.evaluation, data, name)
    return _evaluate(evaluator, run.model, run.config)


def evaluate_baseline(
    name: str, data: Config | DataConfig | str, protocols: Sequence[str] | None = None
) -> tuple[dict[str, EvalResult], Vocabulary]:
    """Fit a count baseline on a training split and test it, without a run folder.

    ``data`` is a run's ``Config`` (its data, preprocessing, split and evaluation settings are
    used, so the baseline is scored on exactly the run's test users), a ``DataConfig`` (format,
    columns, filters), or a data set name or path (default preprocessing, leave-one-out).
    ``protocols`` default to the config's. Returns the results per protocol and the user
    vocabulary (for per-user files).
    """
    if name not in BASELINES:
        raise ArgumentError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
    if isinstance(data, str):
        data = DataConfig(dataset=data)
    if isinstance(data, DataConfig):
        data = Config(data=data, model=ModelConfig(name))
    elif not isinstance(data, Config):
        raise ArgumentError(f"data: expected a Config, a DataConfig or a name, got {data!r}")
    ev = data.evaluation
    wanted = name_list(list(ev.protocols) if protocols is None else protocols, "protocols")
    for protocol in wanted:
        protocol_of(protocol)
    prepared = prepare_data(data.data)
    model = BASELINES[name].fit(prepared.split.train, prepared.corpus.n_items)
    results = {p: _test_evaluator(ev, prepared, p).evaluate(model) for p in wanted}
    return results, prepared.corpus.users


def recommend(
    run: Run | str | Path, history: Sequence[str], k: int = 10, exclude_history: bool = True
) -> list[tuple[str, float]]:
    """Top ``k`` (raw item id, score) after a history of raw item ids (oldest first).

    ``run`` may be a ``Run`` or a run folder (only its ``model/`` is read). An id the model has
    never seen is an error that names it. Scoring is the serving path's
    (``seqrec.serving.Recommender``), which equals the evaluation path's for the same history.
    """
    from seqrec.serving.recommender import Recommender

    history = id_list(history, "history")
    k = positive_int(k, "k")
    if not isinstance(exclude_history, bool):
        raise ArgumentError(f"exclude_history: expected True or False, got {exclude_history!r}")
    if isinstance(run, Run):
        if run.model is None:
            folders = ", ".join(str(r.dir) for r in run.seeds)
            raise RunFolderError(f"{run.dir} holds one model per seed: use one of {folders}")
        model, items = run.model, run.items
    else:
        model, items = _load_model(path_arg(run, "run"))
    recommender = Recommender(model.cpu(), items.raw.tolist())
    answer = recommender.recommend(history, k, exclude_seen=exclude_history, unknown="reject")
    return answer.items
