"""Fixtures of the training tests: the tiny model registered, and a small synthetic data file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_run import one_thread, register, write_interactions


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Makes ``model: {name: tiny}`` buildable from configs; one torch thread for tiny models."""
    register(monkeypatch)
    with one_thread():
        yield


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    return write_interactions(tmp_path / "tiny.tsv")
