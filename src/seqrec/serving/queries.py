"""Raw-id requests and answers, shared by every recommender back end (PyTorch or ONNX).

``RawIdRecommender`` turns raw item ids into item codes, checks the arguments, groups the
histories by input width and hands each group to its back end's ``_top``. It needs numpy alone,
so a back end that does not import torch keeps a cold ``seqrec recommend`` fast.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from seqrec.arguments import id_list, positive_int
from seqrec.data.sequences import Sequences
from seqrec.errors import ArgumentError, UnknownIdError

# The evaluator's input widths (``Evaluator._chunks``): a history of n items is read
# ceil(n / WIDTH_STEP) * WIDTH_STEP columns wide, at most max_len. Repeated here because the
# evaluator's module pulls torchmetrics in; tests/serving checks the two rules agree.
WIDTH_STEP = 8

Unknown = Literal["drop", "reject"]


class UnknownItemError(UnknownIdError):
    """Raw item ids the model does not know, with ``unknown="reject"``."""


def input_widths(lengths: np.ndarray, max_len: int) -> np.ndarray:
    """Input width of each history length, as the evaluator chooses it: (B,) int64."""
    lengths = np.maximum(np.asarray(lengths, dtype=np.int64), 1)
    return np.minimum(-(-lengths // WIDTH_STEP) * WIDTH_STEP, max_len)


@dataclass(frozen=True)
class Query:
    """One encoded request: item codes of the known history (oldest first) and the options."""

    history: np.ndarray  # (n,) int64 codes 1..n_items
    k: int = 10
    exclude_seen: bool = True
    candidates: np.ndarray | None = None  # (c,) int64 codes, or None for the whole catalogue
    unknown: tuple[str, ...] = ()
    unknown_candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recommendation:
    """Top items, best first, as (raw item id, score); the ids that were dropped as unknown."""

    items: list[tuple[str, float]]
    unknown: list[str] = field(default_factory=list)
    unknown_candidates: list[str] = field(default_factory=list)


class RawIdRecommender(ABC):
    """Recommends raw item ids after raw-id histories; a back end supplies ``_top``.

    ``item_ids[i]`` is the raw id of item code ``i + 1``. Subclasses set ``n_items`` and
    ``max_len`` and score one group of histories of one input width in ``_top``.
    """

    backend: str  # what scores: "torch" or "onnx"
    n_items: int
    max_len: int

    def __init__(self, item_ids: Sequence[str], metadata: dict[str, Any] | None = None) -> None:
        self.item_ids = np.asarray([str(r) for r in item_ids], dtype=object)
        self.index = {raw: code for code, raw in enumerate(self.item_ids.tolist(), start=1)}
        self.metadata = dict(metadata or {})

    @property
    @abstractmethod
    def model_name(self) -> str:
        """The registry name of the model (``sasrec``, ...), for ``GET /model``."""

    def encode(
        self, raw_ids: Sequence[Any], unknown: Unknown, what: str
    ) -> tuple[np.ndarray, list]:
        """(codes of the known ids in order, the unknown ids); ``reject`` raises on any unknown."""
        index = self.index
        keys = [str(r) for r in raw_ids]
        codes = [index.get(key, 0) for key in keys]
        missing = [key for key, code in zip(keys, codes, strict=True) if code == 0]
        if missing and unknown == "reject":
            shown = ", ".join(repr(m) for m in missing[:5])
            raise UnknownItemError(f"unknown item id in {what}: {shown} ({len(missing)} unknown)")
        known = np.fromiter((c for c in codes if c), dtype=np.int64)
        return known, missing

    def query(
        self,
        history: Sequence[Any],
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Sequence[Any] | None = None,
        unknown: Unknown = "drop",
    ) -> Query:
        """A raw-id request encoded for :meth:`run`; unknown ids dropped (or rejected)."""
        if unknown not in ("drop", "reject"):
            raise ArgumentError(f"unknown must be 'drop' or 'reject', got {unknown!r}")
        k = positive_int(k, "k")
        history = id_list(history, "history", allow_empty=True)
        codes, missing = self.encode(history, unknown, "history")
        cand, missing_cand = None, []
        if candidates is not None:
            candidates = id_list(candidates, "candidates")
            cand, missing_cand = self.encode(candidates, unknown, "candidates")
        return Query(codes, int(k), bool(exclude_seen), cand, tuple(missing), tuple(missing_cand))

    def recommend(
        self,
        history: Sequence[Any],
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Sequence[Any] | None = None,
        unknown: Unknown = "drop",
    ) -> Recommendation:
        """Top ``k`` (raw id, score) after ``history`` (raw ids, oldest first).

        Only the newest items a model reads are used (``max_len``); an empty history (or one of
        unknown ids only) gets the model's answer for a history of padding. ``candidates``
        restricts the answer to those items. Fewer than ``k`` come back when fewer candidates
        are left.
        """
        return self.run([self.query(history, k, exclude_seen, candidates, unknown)])[0]

    def recommend_many(
        self,
        histories: Sequence[Sequence[Any]],
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Sequence[Any] | None = None,
        unknown: Unknown = "drop",
    ) -> list[Recommendation]:
        """:meth:`recommend` for many histories, one forward pass per input width."""
        return self.run([self.query(h, k, exclude_seen, candidates, unknown) for h in histories])

    def run(self, queries: Sequence[Query]) -> list[Recommendation]:
        """Answer encoded queries; histories of one input width share one forward pass."""
        if not queries:
            return []
        lengths = np.array([len(q.history) for q in queries], dtype=np.int64)
        offsets = np.zeros(len(queries) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        seqs = Sequences(offsets, np.concatenate([q.history for q in queries]).astype(np.int64))
        widths = self.input_widths(lengths)
        answers: list[Recommendation | None] = [None] * len(queries)
        for width in np.unique(widths):
            rows = np.flatnonzero(widths == width)
            block = self._top(seqs, rows, int(width), [queries[r] for r in rows])
            for row, answer in zip(rows.tolist(), block, strict=True):
                answers[row] = answer
        return answers  # type: ignore[return-value]

    def input_widths(self, lengths: np.ndarray) -> np.ndarray:
        """The width each history is read at: the evaluator's rule."""
        return input_widths(lengths, self.max_len)

    def answer(
        self, queries: list[Query], values: list[list[float]], codes: list[list[int]]
    ) -> list[Recommendation]:
        """Recommendations from each row's best (score, code) lists, non-finite scores dropped."""
        out = []
        for q, row_values, row_codes in zip(queries, values, codes, strict=True):
            n = min(q.k, sum(1 for v in row_values if np.isfinite(v)))
            raw = self.item_ids[np.asarray(row_codes[:n], dtype=np.int64) - 1].tolist()
            pairs = list(zip(raw, row_values[:n], strict=True))
            out.append(Recommendation(pairs, list(q.unknown), list(q.unknown_candidates)))
        return out

    @abstractmethod
    def _top(
        self, seqs: Sequences, rows: np.ndarray, width: int, queries: list[Query]
    ) -> list[Recommendation]:
        """The answers to ``queries`` (rows ``rows`` of ``seqs``), read ``width`` items wide."""
