"""The project's errors for input a user can fix: one base class, one subclass per kind of input.

Every message is one line that names the file (and line), the config key or the argument, and
what was expected. The command line prints these as ``seqrec: error: <message>`` and exits with
status 2; any other exception is a bug in seqrec and keeps its traceback.

``SeqrecError`` derives from ``ValueError`` so that code written against the older, plainer
errors keeps working.
"""

from __future__ import annotations

from pathlib import Path


class SeqrecError(ValueError):
    """Input that cannot be used as it is (the base of every error below)."""

    def __str__(self) -> str:  # KeyError would quote the message; every subclass reads the same
        return str(self.args[0]) if self.args else ""


class ConfigError(SeqrecError):
    """A config key or value that cannot be used: the message names the key path."""


class DataError(SeqrecError):
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


class ModelFolderError(SeqrecError):
    """A saved model folder whose files are missing, unreadable or do not fit together."""


class RunFolderError(SeqrecError):
    """A run folder that cannot be used for what was asked (train into, resume, evaluate)."""


class DivergedError(SeqrecError):
    """The training loss became NaN or infinite: the settings make training blow up."""


class ArgumentError(SeqrecError, TypeError):
    """A bad argument to the Python API (wrong type or out of range): names the argument."""


class UnknownIdError(SeqrecError, KeyError):
    """A raw user or item id that is not in the vocabulary (the message shows which)."""


class FetchError(RuntimeError):
    """A data set could not be obtained from any of its sources (network, files: not the user's
    input, so not a ``SeqrecError``, but still shown on one line)."""


def first_line(error: BaseException) -> str:
    """The first non-empty line of a third-party error message (they often run to many lines)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
