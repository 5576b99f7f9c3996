"""The one error type for bad input data, so callers can catch it apart from programming errors."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Input data that cannot be used as it is.

    The message names the file, the line (1-based, as an editor shows it) or the field, and what
    was expected, so the user can open the file and fix it.
    """

    @classmethod
    def at(cls, path: str | Path, where: str | int | None, problem: str) -> DataError:
        """``where``: a 1-based line number, a place such as ``"row 3"``, or None."""
        if where is None:
            return cls(f"{path}: {problem}")
        place = f"line {where}" if isinstance(where, int) else where
        return cls(f"{path}: {place}: {problem}")
