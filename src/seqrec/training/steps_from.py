"""How long a final run trains: the optimizer steps of an earlier run's best validation.

The BERT4Rec authors train their final model on the validation items too, for a fixed number of
steps, so it cannot early-stop. ``training.steps_from`` names a run that did validate on the same
data set; its ``history.csv`` says how many steps it had taken when its validation metric (its
own ``early_stopping_metric``) was best, and the final run trains exactly that many, on that
run's learning-rate path (its schedule's length, unless ``training.schedule_steps`` says
otherwise): the model validated is the one at that step of that path, so the final run follows
it rather than decaying to 0 in fewer steps (on Beauty a SASRec final run decaying to 0 over its
1,926 steps tested at full NDCG@10 0.0242, the same steps on the validation run's path 0.0351).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from seqrec.config import CONFIG_FILE, load_config
from seqrec.errors import ConfigError
from seqrec.training.fit import HISTORY


@dataclass(frozen=True)
class BestStep:
    """Where an earlier run's validation was best: its epoch, optimizer steps and value, and
    the length of that run's learning-rate schedule."""

    run_dir: Path
    epoch: int
    step: int
    metric: str
    value: float
    schedule_steps: int

    def describe(self) -> str:
        return (
            f"the steps of the best validation of `{self.run_dir}` (epoch {self.epoch}, "
            f"{self.metric} {self.value:.4f})"
        )


def best_step(run_dir: str | Path, dataset: str) -> BestStep:
    """The best validation of the run in ``run_dir``, which must have validated on ``dataset``."""
    run_dir = Path(run_dir)
    where = f"training.steps_from: {run_dir}"
    if not (run_dir / CONFIG_FILE).is_file():
        raise ConfigError(f"{where}: not a run folder (no {CONFIG_FILE})")
    source = load_config(run_dir / CONFIG_FILE)
    if source.training.seeds:
        raise ConfigError(f"{where}: a run of several seeds; give one seed's folder (seed-<s>/)")
    if source.data.dataset != dataset:
        raise ConfigError(
            f"{where}: that run trained on {source.data.dataset!r}, this one on {dataset!r}"
        )
    metric = source.training.early_stopping_metric
    key = f"valid_{metric}"
    if not (run_dir / HISTORY).is_file():
        raise ConfigError(f"{where}: no {HISTORY}, the run never finished an epoch")
    with (run_dir / HISTORY).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    validated = [row for row in rows if row.get(key) and row.get("step")]
    if not validated:
        raise ConfigError(f"{where}: {HISTORY} holds no validation with its step count ({key})")
    best = validated[0]
    for row in validated[1:]:  # the first of equal values, as early stopping keeps it
        if float(row[key]) > float(best[key]):
            best = row
    t = source.training  # its schedule as training/fit.py sets it: epochs x steps of an epoch
    schedule = t.schedule_steps or t.max_steps or t.epochs * int(rows[0]["step"])
    step = int(best["step"])
    return BestStep(run_dir, int(best["epoch"]), step, metric, float(best[key]), schedule)
