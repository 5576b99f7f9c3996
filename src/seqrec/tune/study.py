"""``seqrec tune CONFIG``: a seeded Optuna TPE search around a preset, pruned per epoch.

Every trial trains the preset with one sampled set of overrides (one seed, the preset's) and is
scored by its best validation value of the early-stopping metric; the test set is never looked at
while searching. After each validation the value goes to Optuna's median pruner, which stops a
trial whose curve lies below the median of the earlier trials at the same epoch. Trial 0 is the
preset itself (its values of the searched keys), so the search starts from what it must beat.

Study folder (default ``runs/tune-<config name>/``; running the same command again resumes)::

    study.db            Optuna's SQLite storage, study "seqrec-tune" (open it with optuna's tools)
    preset.yaml         the resolved preset; space.yaml the search space
    trials/trial-NNN/   one run folder per trial
    trials.csv, trials.md   every trial: state, validation value, epochs, seconds, parameters
    best_config.yaml    the preset with the best trial's values: ready for ``seqrec train``
    confirm/, confirm.md    with ``confirm_seeds``: preset and best config retrained per seed

``trials`` counts the study's finished trials (complete or pruned), so a resumed search runs only
the missing ones. ``budget_minutes`` stops starting new trials after that much time; a running
trial finishes or is pruned. The confirmation runs after the budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from seqrec.benchmark.runner import config_difference, flatten
from seqrec.config import (
    Config,
    ConfigError,
    OutputConfig,
    config_to_dict,
    load_config,
    save_config,
)
from seqrec.pipeline import ConfigLike, resolve_config, train
from seqrec.tune.confirm import Confirmation, confirm
from seqrec.tune.space import SearchSpace, default_space_path, load_space
from seqrec.tune.trials import write_trials

STUDY_NAME = "seqrec-tune"
PRUNE_STARTUP_TRIALS = 3  # trials that run to the end before the median means anything


@dataclass(frozen=True)
class TuneResult:
    out: Path
    storage: str
    n_trials: int  # finished trials in the study (complete or pruned)
    best_value: float
    best_params: dict[str, Any]
    preset_value: float | None  # trial 0, the preset's own values
    best_config: Path
    trials_md: Path
    confirmation: Confirmation | None


def optuna_module():
    try:
        import optuna
    except ImportError:
        raise ConfigError("seqrec tune needs Optuna: pip install 'seqrec[tune]'") from None
    return optuna


def default_output(config: ConfigLike) -> Path:
    name = Path(config).stem if isinstance(config, str | Path) else "config"
    return Path("runs") / f"tune-{name}"


def _check_space(preset: Config, space: SearchSpace) -> None:
    """Every searched key must exist: try the space's first value of each on the preset."""
    try:
        resolve_config(preset, {p.key: p.first() for p in space.params})
    except ConfigError as error:
        raise ConfigError(f"{space.path}: {error}") from None


def _start_folder(out: Path, preset: Config, space: SearchSpace) -> None:
    """Write the preset and space, or check that a resumed study was started with the same."""
    saved_space = {p.key: dataclasses.asdict(p) for p in space.params}
    if (out / "preset.yaml").is_file():
        difference = config_difference(load_config(out / "preset.yaml"), preset)
        old_space = yaml.safe_load((out / "space.yaml").read_text(encoding="utf-8"))
        if difference or old_space != yaml.safe_load(yaml.safe_dump(saved_space)):
            what = difference or "the search space differs"
            raise ConfigError(
                f"{out} holds a study of another preset or space ({what}); "
                "give another --output to start a new one"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    save_config(preset, out / "preset.yaml")
    (out / "space.yaml").write_text(yaml.safe_dump(saved_space, sort_keys=False), encoding="utf-8")


def _enqueue_preset(study: Any, preset: Config, space: SearchSpace, log: Callable) -> None:
    """Trial 0 = the preset's own values (those that lie in the space)."""
    values = flatten(config_to_dict(preset))
    inside = {p.key: values[p.key] for p in space.params if p.contains(values.get(p.key))}
    outside = [p.key for p in space.params if p.key not in inside]
    if outside:
        log(f"the preset's {', '.join(outside)} lie outside the space: trial 0 samples them")
    study.enqueue_trial(inside, user_attrs={"preset": not outside})


def _objective(preset: Config, space: SearchSpace, out: Path) -> Callable[[Any], float]:
    optuna = optuna_module()
    metric = preset.training.early_stopping_metric

    def objective(trial: Any) -> float:
        overrides = space.suggest(trial)
        trial_dir = out / "trials" / f"trial-{trial.number:03d}"
        trial.set_user_attr("run_dir", str(trial_dir))

        def report(epoch: int, value: float) -> None:
            trial.report(value, epoch)
            trial.set_user_attr("epochs", epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"validation {metric} {value:.4f} at epoch {epoch}")

        fixed = {"output.dir": str(trial_dir), "training.seeds": []}
        run = train(preset, on_validation=report, **overrides, **fixed)
        if run.fit is None or run.fit.best_value is None:
            raise ConfigError(
                f"{trial_dir}: training gave no validation value (the split has no validation "
                "users, or the model is fitted from counts and has nothing to tune)"
            )
        trial.set_user_attr("epochs", run.fit.epochs_run)
        trial.set_user_attr("best_epoch", run.fit.best_epoch)
        return float(run.fit.best_value)

    return objective


def _finished(study: Any) -> int:
    states = _finished_states()
    return sum(1 for t in study.trials if t.state in states)


def _finished_states() -> tuple:
    state = optuna_module().trial.TrialState
    return (state.COMPLETE, state.PRUNED)


def open_study(out: Path, sampler_seed: int, prune_warmup_epochs: int) -> Any:
    """The folder's study (created or loaded): maximise, seeded TPE, median pruner."""
    optuna = optuna_module()
    return optuna.create_study(
        study_name=STUDY_NAME,
        storage=f"sqlite:///{out / 'study.db'}",
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=sampler_seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=PRUNE_STARTUP_TRIALS, n_warmup_steps=prune_warmup_epochs
        ),
    )


def tune(
    config: ConfigLike,
    trials: int,
    budget_minutes: float,
    space: str | Path | None = None,
    output: str | Path | None = None,
    sampler_seed: int = 0,
    confirm_seeds: Sequence[int] | None = None,
    prune_warmup_epochs: int = 4,
    log: Callable[[str], None] = print,
    overrides: Mapping[str, Any] | None = None,
) -> TuneResult:
    """Search, then write the trials table and ``best_config.yaml`` (see the module docstring).

    ``overrides`` (``{"training.epochs": 10}``) change the preset before the search starts.
    ``confirm_seeds`` None retrains preset and best config with the preset's ``training.seeds``
    (none: no confirmation); a list of seeds uses those.
    """
    optuna = optuna_module()
    if trials < 1 or budget_minutes <= 0:
        raise ConfigError(
            f"--trials must be >= 1 and --budget-minutes > 0, got {trials} and {budget_minutes}"
        )
    original = dataclasses.replace(resolve_config(config, overrides), output=OutputConfig())
    # the trials train one seed each; the best config keeps the preset's seeds
    preset = dataclasses.replace(
        original, training=dataclasses.replace(original.training, seeds=())
    )
    if preset.training.eval_every == 0:
        raise ConfigError(
            "training.eval_every: 0 never validates, and seqrec tune scores every trial by its "
            "validation value; set it to 1 or more"
        )
    space = load_space(space or default_space_path(preset.model.name))
    _check_space(preset, space)
    out = Path(output) if output is not None else default_output(config)
    _start_folder(out, preset, space)
    study = open_study(out, sampler_seed, prune_warmup_epochs)
    if not study.trials:
        _enqueue_preset(study, preset, space, log)
    missing = trials - _finished(study)
    if missing > 0:
        log(f"{out}: {missing} trial(s) to run, at most {budget_minutes:g} minutes")
        stop = optuna.study.MaxTrialsCallback(trials, states=_finished_states())
        study.optimize(_objective(preset, space, out), timeout=budget_minutes * 60,
                       callbacks=[stop])  # fmt: skip
    seeds = original.training.seeds if confirm_seeds is None else tuple(confirm_seeds)
    return _finish(study, config, original, out, seeds, log)


def _finish(
    study: Any, config: ConfigLike, original: Config, out: Path, seeds: Sequence[int],
    log: Callable,
) -> TuneResult:  # fmt: skip
    """Trials table, best config, and (with ``seeds``) the confirmation of preset and best."""
    complete = [t for t in study.trials if t.state == _finished_states()[0]]
    if not complete:
        raise ConfigError(f"{out}: no trial finished within the budget; give more minutes")
    best = study.best_trial
    trials_md = write_trials(study.trials, out, original.training.early_stopping_metric)
    best_config = write_best_config(original, best, len(complete), config, out)
    preset_trial = next((t for t in study.trials if t.user_attrs.get("preset")), None)
    preset_value = preset_trial.value if preset_trial is not None else None
    confirmation = None
    if seeds:
        confirmation = confirm(original, load_config(best_config), seeds, out, log)
    return TuneResult(
        out, f"sqlite:///{out / 'study.db'}", _finished(study), float(best.value),
        dict(best.params), preset_value, best_config, trials_md, confirmation,
    )  # fmt: skip


def write_best_config(
    preset: Config, best: Any, n_complete: int, config: ConfigLike, out: Path
) -> Path:
    """The preset with the best trial's values, a new run folder each time it is trained."""
    resolved = resolve_config(preset, dict(best.params))
    path = save_config(resolved, out / "best_config.yaml")
    metric = preset.training.early_stopping_metric
    source = config if isinstance(config, str | Path) else "the given config"
    header = (
        f"# seqrec tune: the best of {n_complete} complete trials for {source}\n"
        f"# (trial {best.number}, validation {metric} {best.value:.4f}; "
        f"study: {out / 'study.db'}).\n"
        f"# Train it with: seqrec train {path}\n"
    )
    path.write_text(header + path.read_text(encoding="utf-8"), encoding="utf-8")
    return path
