"""``OnnxRecommender``: the ``Recommender`` answers from an exported ``model.onnx``, without torch.

An exported folder written with ``seqrec export RUN OUT_DIR --onnx`` holds the model's scoring
graph (``seqrec.serving.onnx``: item ids (B, max_len) -> scores (B, n_items + 1)), checked at
export against PyTorch within ``ATOL``. This back end runs it with onnxruntime and does the rest
in numpy: padding, the history and candidate exclusions, top-k. It imports neither torch nor
polars, so a cold ``seqrec recommend`` on such a folder starts in a fraction of the time PyTorch
takes to import.

It differs from ``Recommender`` in two ways: histories are always read ``max_len`` wide (the
graph's width is fixed; left padding does not change a model's scores, which the contract tests
check), and the graph scores the whole catalogue at once (no item blocks). Equal scores come by
ascending item code, as in ``seqrec.serving.topk``; scores agree with PyTorch's within ``ATOL``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqrec.data.batching import history_coo, pad_left
from seqrec.data.sequences import Sequences
from seqrec.errors import ModelFolderError
from seqrec.serving.folder import ONNX, read_item_ids, verify_folder
from seqrec.serving.queries import Query, RawIdRecommender, Recommendation


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` best (scores, columns), best first; equal scores by ascending column."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # the k best, in no order
    kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
    values, codes = [], []
    for row, threshold in zip(scores, kth[:, 0], strict=True):
        # every column at or above the k-th score, so a tie at the boundary keeps the lowest codes
        tied = np.flatnonzero(row >= threshold)
        order = np.lexsort((tied, -row[tied]))[:k]
        values.append(row[tied[order]])
        codes.append(tied[order])
    return np.stack(values), np.stack(codes)


class OnnxRecommender(RawIdRecommender):
    """Recommends raw item ids with onnxruntime; the same API and answers as ``Recommender``."""

    backend = "onnx"

    def __init__(
        self,
        session: Any,
        item_ids: Sequence[str],
        max_len: int,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(item_ids, metadata)
        self.session = session
        self.n_items = len(self.item_ids)
        self.max_len = int(max_len)
        self.input_name = session.get_inputs()[0].name

    @classmethod
    def load(cls, folder: str | Path, threads: int | None = None) -> OnnxRecommender:
        """An exported folder that holds ``model.onnx``, after checking its checksums.

        ``threads``: onnxruntime's intra-op threads (its default: one per core).
        """
        folder = Path(folder)
        meta = verify_folder(folder)
        if not (folder / ONNX).is_file():
            raise ModelFolderError(
                f"{folder / ONNX} is missing: export with `seqrec export RUN OUT_DIR --onnx`"
            )
        try:
            import onnxruntime
        except ImportError as error:
            raise ModelFolderError(
                "the ONNX back end needs onnxruntime: pip install 'seqrec[onnx]'"
            ) from error
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: a served process has no one to warn
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(folder / ONNX), options, providers=["CPUExecutionProvider"]
        )
        n_items, max_len = meta.get("n_items"), meta.get("max_len")
        if not isinstance(n_items, int) or not isinstance(max_len, int):
            raise ModelFolderError(f"{folder}: metadata.json must give n_items and max_len")
        return cls(session, read_item_ids(folder, n_items), max_len, meta)

    @property
    def model_name(self) -> str:
        return str(self.metadata.get("model", "onnx"))

    def input_widths(self, lengths: np.ndarray) -> np.ndarray:
        return np.full(len(lengths), self.max_len, dtype=np.int64)  # the graph's fixed width

    def _top(
        self, seqs: Sequences, rows: np.ndarray, width: int, queries: list[Query]
    ) -> list[Recommendation]:
        item_seq = pad_left(seqs, rows, width)  # (B, max_len) int64
        (scores,) = self.session.run(None, {self.input_name: item_seq})
        scores = np.nan_to_num(
            scores.astype(np.float32), nan=-np.inf, posinf=np.inf, neginf=-np.inf
        )
        self._exclude(scores, seqs, rows, queries)
        values, codes = top_k(scores, max(q.k for q in queries))
        return self.answer(queries, values.tolist(), codes.tolist())

    @staticmethod
    def _exclude(
        scores: np.ndarray, seqs: Sequences, rows: np.ndarray, queries: list[Query]
    ) -> None:
        """-inf at padding, at seen items (``exclude_seen``) and outside given candidates."""
        scores[:, 0] = -np.inf
        seen_rows = np.array([q.exclude_seen for q in queries])
        if seen_rows.any():
            batch_row, item = history_coo(seqs, rows[seen_rows])
            scores[np.flatnonzero(seen_rows)[batch_row], item] = -np.inf
        for b, q in enumerate(queries):
            if q.candidates is not None:
                allowed = np.zeros(scores.shape[1], dtype=bool)
                allowed[q.candidates] = True
                scores[b, ~allowed] = -np.inf
