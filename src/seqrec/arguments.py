"""Checks of the Python API's arguments, shared by the pipeline and the serving code.

Each returns the value in the form the caller uses, or raises ``ArgumentError`` naming the
argument and what was expected. NumPy and the standard library only, so the light serving path
can use them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqrec.errors import ArgumentError


def path_arg(value: Any, name: str) -> Path:
    if isinstance(value, Path) or (isinstance(value, str) and value):
        return Path(value)
    raise ArgumentError(f"{name}: expected a folder path (str or Path), got {value!r}")


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ArgumentError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def id_list(value: Any, name: str, allow_empty: bool = False) -> list[str]:
    """A sequence of raw ids (str or int) as strings; a string is not a sequence here."""
    is_sequence = isinstance(value, Sequence) or (isinstance(value, np.ndarray) and value.ndim == 1)
    if isinstance(value, str | bytes) or not is_sequence:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise ArgumentError(
            f"{name}: expected a list of item ids, got {type(value).__name__} {shown}"
        )
    for index, item in enumerate(value):
        if isinstance(item, bool | np.bool_) or not isinstance(item, str | int | np.integer):
            raise ArgumentError(f"{name}[{index}]: expected an item id (str or int), got {item!r}")
    if len(value) == 0 and not allow_empty:
        raise ArgumentError(f"{name} is empty: give at least one item id")
    return [str(item) for item in value]


def names(value: Any, name: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise ArgumentError(f"{name}: expected a non-empty list of names, got {value!r}")
    if not all(isinstance(v, str) for v in value):
        raise ArgumentError(f"{name}: expected names (str), got {list(value)!r}")
    return list(value)
