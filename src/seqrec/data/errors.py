"""The data layer's error, ``DataError``; the whole hierarchy lives in ``seqrec.errors``."""

from __future__ import annotations

from seqrec.errors import DataError, SeqrecError, UnknownIdError, first_line

__all__ = ["DataError", "SeqrecError", "UnknownIdError", "first_line"]
