"""Fixtures of the search tests: the tiny model registered, one torch thread."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))  # the tiny test model

from tiny_run import one_thread, register


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch: pytest.MonkeyPatch):
    register(monkeypatch)
    # each run's own training.png (tested with the pipeline) is most of a tiny run's time
    monkeypatch.setattr("seqrec.reporting.plot_history", lambda *args, **kwargs: None)
    with one_thread():
        yield
