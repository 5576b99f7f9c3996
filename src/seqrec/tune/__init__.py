"""Hyperparameter search around a preset with Optuna (``pip install 'seqrec[tune]'``).

>>> from seqrec.tune import tune  # doctest: +SKIP
>>> result = tune("configs/sasrec-ml-100k.yaml", trials=20, budget_minutes=20)  # doctest: +SKIP
>>> result.best_config  # doctest: +SKIP
PosixPath('runs/tune-sasrec-ml-100k/best_config.yaml')
"""

from seqrec.tune.space import Param, SearchSpace, load_space
from seqrec.tune.study import TuneResult, tune

__all__ = ["Param", "SearchSpace", "TuneResult", "load_space", "tune"]
