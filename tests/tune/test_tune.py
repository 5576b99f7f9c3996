"""``seqrec tune`` on the tiny model: the study on disk, the preset as trial 0, the objective is
the best validation value, resuming, the budget, pruning, the best config and its confirmation."""

from __future__ import annotations

import sys

import optuna
import polars as pl
import pytest
import yaml
from tiny_preset import SPACE, write_preset
from tiny_run import one_thread, register

from seqrec.cli import main
from seqrec.comparison import compare_runs
from seqrec.config import ConfigError, load_config
from seqrec.tune import tune
from seqrec.tune.space import load_space
from seqrec.tune.study import STUDY_NAME, _objective

optuna.logging.set_verbosity(optuna.logging.WARNING)


def quiet(line: str) -> None:
    pass


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory):
    """Two trials and the confirmation with seeds 1 and 2."""
    root = tmp_path_factory.mktemp("tune")
    preset, space = write_preset(root)
    with pytest.MonkeyPatch.context() as patch, one_thread():
        register(patch)
        patch.setattr("seqrec.reporting.plot_history", lambda *args, **kwargs: None)
        result = tune(preset, 2, 5, space=space, output=root / "out", confirm_seeds=[1, 2],
                      log=quiet)  # fmt: skip
    return preset, space, result


def _study(result):
    return optuna.load_study(study_name=STUDY_NAME, storage=result.storage)


def test_the_study_is_an_sqlite_file_optuna_opens(searched):
    _, _, result = searched
    assert (result.out / "study.db").is_file()
    study = _study(result)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert study.best_value == result.best_value


def test_trial_zero_is_the_preset_and_values_are_best_validations(searched):
    _, _, result = searched
    trials = _study(result).trials
    assert trials[0].params == {"training.lr": 0.01, "model.hidden_size": 16}
    assert trials[0].user_attrs["preset"] is True and result.preset_value == trials[0].value
    for t in trials:
        history = pl.read_csv(result.out / "trials" / f"trial-{t.number:03d}" / "history.csv")
        assert t.value == history["valid_NDCG@10"].max()
        assert t.intermediate_values == dict(zip(history["epoch"], history["valid_NDCG@10"],
                                                 strict=True))  # fmt: skip


def test_trials_table_and_best_config_ready_for_train(searched):
    preset, _, result = searched
    table = pl.read_csv(result.out / "trials.csv")
    assert table["trial"].to_list() == [0, 1]
    assert table["value"].to_list() == [t.value for t in _study(result).trials]
    assert "| trial | state | value |" in result.trials_md.read_text()
    best = load_config(result.best_config)
    wanted = load_config(preset, [f"{k}={v}" for k, v in result.best_params.items()])
    assert best.training == wanted.training and best.model == wanted.model
    assert best.data == wanted.data and best.evaluation == wanted.evaluation
    assert best.output.dir is None  # seqrec train makes a new run folder


def test_the_confirmation_retrains_both_configs_with_every_seed(searched):
    _, _, result = searched
    c = result.confirmation
    assert c.seeds == (1, 2)
    for side in (c.preset, c.best):
        for seed, value in zip(c.seeds, side.valid, strict=True):
            history = pl.read_csv(side.run_dir / f"seed-{seed}" / "history.csv")
            assert value == history["valid_NDCG@10"].max()
    (direct,) = compare_runs(c.best.run_dir, c.preset.run_dir, ["NDCG@10"], ["full"])
    assert c.comparison[0] == direct
    assert "| preset |" in c.path.read_text() and "| best |" in c.path.read_text()


def test_rerunning_resumes_the_study(searched, tmp_path):
    preset, space, result = searched
    before = [(t.params, t.value) for t in _study(result).trials]
    again = tune(preset, 3, 5, space=space, output=result.out, confirm_seeds=[], log=quiet)
    trials = _study(again).trials
    assert len(trials) == 3 and [(t.params, t.value) for t in trials[:2]] == before
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**SPACE, "model.dropout": {"type": "float", "low": 0,
                                                                 "high": 0.5}}))  # fmt: skip
    with pytest.raises(ConfigError, match="holds a study of another preset or space"):
        tune(preset, 4, 5, space=other, output=result.out, log=quiet)


def test_no_trial_starts_after_the_budget(tmp_path):
    preset, space = write_preset(tmp_path)
    result = tune(preset, 5, 1e-4, space=space, output=tmp_path / "out", log=quiet)
    assert result.n_trials == 1  # the first started at once; none after the budget


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_a_pruned_trial_stops_at_its_first_validation(tmp_path):
    preset, space = write_preset(tmp_path, epochs=4)
    config = load_config(preset)
    study = optuna.create_study(direction="maximize", pruner=AlwaysPrune())
    study.optimize(_objective(config, load_space(space), tmp_path / "out"), n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]
    assert not (tmp_path / "out" / "trials" / "trial-000" / "metrics.json").exists()


def test_the_cli_prints_the_trials_and_the_best_config(searched, capsys):
    preset, space, result = searched
    args = ["tune", str(preset), "--trials", "2", "--budget-minutes", "1", "--space", str(space),
            "--output", str(result.out)]  # fmt: skip
    before = len(_study(result).trials)
    assert main(args) == 0  # the study has its trials: nothing to run
    assert len(_study(result).trials) == before
    out = capsys.readouterr().out
    assert "| trial | state |" in out and f"best config: {result.best_config}" in out
    assert main([*args[:3], "0", *args[4:]]) == 2
    assert "--trials must be >= 1" in capsys.readouterr().err
    assert main([*args[:2], "training.epochs=3", *args[2:]]) == 2  # overrides change the preset
    assert "another preset or space (training.epochs: 2 there, 3" in capsys.readouterr().err


def test_without_optuna_the_error_says_what_to_install(tmp_path, monkeypatch):
    preset, space = write_preset(tmp_path)
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ConfigError, match=r"pip install 'seqrec\[tune\]'"):
        tune(preset, 1, 1, space=space, output=tmp_path / "out")


def test_a_preset_that_never_validates_is_refused_before_any_trial(tmp_path):
    preset, space = write_preset(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"training\.eval_every: 0 never validates"):
        tune(preset, 2, 5, space=space, output=out, overrides={"training.eval_every": 0})
    assert not out.exists()
