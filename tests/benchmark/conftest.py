"""Fixtures of the benchmark tests: the tiny model registered, one tiny suite run per module."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))  # the tiny test model

from tiny_run import one_thread, register
from tiny_suite import write_suite


def skip_training_plots(patch: pytest.MonkeyPatch) -> None:
    """Each run's own training.png (tested with the pipeline) is most of a tiny run's time."""
    patch.setattr("seqrec.reporting.plot_history", lambda *args, **kwargs: None)


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch: pytest.MonkeyPatch):
    register(monkeypatch)
    skip_training_plots(monkeypatch)
    with one_thread():
        yield


@pytest.fixture
def no_suite_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests about training and resuming: the suite's figures are checked once, above."""
    monkeypatch.setattr("seqrec.benchmark.plots.time_to_quality", lambda *args: None)
    monkeypatch.setattr("seqrec.benchmark.plots.bars", lambda *args: None)


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory: pytest.TempPathFactory):
    """The tiny suite run once for the module (2 seeds x 2 tiny models + popularity)."""
    from seqrec.benchmark import load_suite, run_suite

    root = tmp_path_factory.mktemp("suite")
    with pytest.MonkeyPatch.context() as patch, one_thread():
        register(patch)
        skip_training_plots(patch)
        suite = load_suite(write_suite(root))
        results = run_suite(suite, output=root / "out", log=lambda line: None)
    return suite, results
