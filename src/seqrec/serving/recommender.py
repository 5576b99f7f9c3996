"""``Recommender``: the top items after any history of raw item ids, from an exported model.

Scoring follows the evaluation path exactly (``seqrec.evaluation.evaluator``): a history is cut to
its newest items and left-padded to the width the evaluator gives a history of that length, the
model's ``full_sort_predict`` scores every item, and the history's items are removed from the
candidates when ``exclude_seen``. So a recommendation list is the evaluator's ranking for that
history, best first. Ties: equal scores are listed by ascending item code.

Large catalogues: when a batch's scores (histories x (n_items + 1)) would exceed ``max_scores``
(``seqrec.models.scoring.MAX_SCORES``), a model with ``score_factors`` is scored one block of
items at a time and the answer is a running top-k over the blocks (``seqrec.serving.topk``),
the same answer as the dense path.

This module imports torch, safetensors and the models only: neither Lightning nor the training or
evaluation code, so a process that serves starts fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_model
from torch import Tensor, nn

from seqrec import models
from seqrec.arguments import id_list, positive_int
from seqrec.batch import SequenceBatch
from seqrec.data.batching import history_coo, pad_left
from seqrec.data.corpus import Sequences
from seqrec.errors import ArgumentError, UnknownIdError
from seqrec.models.scoring import MAX_SCORES, block_width, score_factors
from seqrec.serving.export import (
    CONFIG,
    FORMAT,
    FORMAT_VERSION,
    ITEMS,
    METADATA,
    REQUIRED,
    WEIGHTS,
    ModelFolderError,
    sha256_of,
)
from seqrec.serving.topk import Exclusions, running_top_k

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


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFolderError(f"{path}: not readable JSON ({error})") from error


def verify_folder(folder: Path) -> dict[str, Any]:
    """``metadata.json`` of an exported folder after checking its format and every checksum."""
    path = folder / METADATA
    if not path.is_file():
        raise ModelFolderError(
            f"{path} is missing: {folder} is not an exported model folder "
            f"(write one with `seqrec export RUN OUT_DIR`)"
        )
    meta = _read_json(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFolderError(f"{path}: not a seqrec model folder (format is not {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFolderError(
            f"{path}: format_version {meta.get('format_version')!r}, this seqrec reads "
            f"{FORMAT_VERSION}"
        )
    files = meta.get("files")
    if not isinstance(files, dict) or not set(REQUIRED) <= set(files):
        raise ModelFolderError(f"{path}: 'files' must list the sha256 of {', '.join(REQUIRED)}")
    for name, expected in files.items():
        part = folder / name
        if Path(name).name != name or not part.is_file():
            raise ModelFolderError(f"{part}: listed in {METADATA} but missing")
        actual = sha256_of(part)
        if actual != expected:
            raise ModelFolderError(
                f"{part}: checksum mismatch (sha256 {actual}, {METADATA} says {expected}): "
                "the file changed after export"
            )
    return meta


def build_from_folder(folder: Path) -> tuple[nn.Module, list[str]]:
    """The model (eval mode, CPU) and raw item ids of a model folder, without unpickling."""
    spec = _read_json(folder / CONFIG)
    if not isinstance(spec, dict) or not {"name", "config"} <= set(spec):
        raise ModelFolderError(f"{folder / CONFIG}: expected {{'name': ..., 'config': {{...}}}}")
    try:
        model = models.build_model(spec["name"], **spec["config"])
    except (TypeError, ValueError) as error:
        raise ModelFolderError(f"{folder / CONFIG}: {error}") from error
    try:
        load_model(model, str(folder / WEIGHTS), device="cpu")
    except (SafetensorError, RuntimeError, OSError) as error:
        raise ModelFolderError(f"{folder / WEIGHTS}: {error}") from error
    raw = _read_json(folder / ITEMS)
    if (
        not isinstance(raw, list)
        or len(raw) != model.n_items
        or len(set(map(str, raw))) != len(raw)
    ):
        raise ModelFolderError(
            f"{folder / ITEMS}: expected {model.n_items} distinct item ids for a model of "
            f"{model.n_items} items"
        )
    return model.eval(), [str(r) for r in raw]


class Recommender:
    """Recommends raw item ids after raw-id histories with any model of the registry.

    ``item_ids[i]`` is the raw id of item code ``i + 1``. The model is used in eval mode under
    ``torch.inference_mode`` and is never changed, so one instance may serve concurrent callers
    (each call is one forward pass per input width). At most ``max_scores`` scores (histories x
    items) are held at once for a model with ``score_factors``.
    """

    def __init__(
        self,
        model: nn.Module,
        item_ids: Sequence[str],
        metadata: dict[str, Any] | None = None,
        max_scores: int = MAX_SCORES,
    ) -> None:
        if len(item_ids) != model.n_items:
            raise ValueError(f"{len(item_ids)} item ids for a model of {model.n_items} items")
        self.model = model.eval()
        self.item_ids = np.asarray([str(r) for r in item_ids], dtype=object)
        self.index = {raw: code for code, raw in enumerate(self.item_ids.tolist(), start=1)}
        self.metadata = dict(metadata or {})
        self.max_scores = max_scores

    @classmethod
    def load(cls, folder: str | Path) -> Recommender:
        """An exported folder (``seqrec export``), after checking its format and checksums."""
        folder = Path(folder)
        meta = verify_folder(folder)
        model, item_ids = build_from_folder(folder)
        return cls(model, item_ids, meta)

    @classmethod
    def from_run(cls, run_dir: str | Path) -> Recommender:
        """The model of a run folder (``RUN/model``, written by training; it has no checksums)."""
        from seqrec.serving.export import _run_model

        model, item_ids, spec = _run_model(Path(run_dir))
        return cls(model, item_ids, {"model": spec["name"], "run": str(run_dir)})

    @property
    def n_items(self) -> int:
        return int(self.model.n_items)

    @property
    def max_len(self) -> int:
        return int(self.model.max_len)

    # ------------------------------------------------------------ raw ids -> queries

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

    # ------------------------------------------------------------ scoring

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
        widths = input_widths(lengths, self.max_len)
        answers: list[Recommendation | None] = [None] * len(queries)
        for width in np.unique(widths):
            rows = np.flatnonzero(widths == width)
            block = self._top(seqs, rows, int(width), [queries[r] for r in rows])
            for row, answer in zip(rows.tolist(), block, strict=True):
                answers[row] = answer
        return answers  # type: ignore[return-value]

    @torch.inference_mode()
    def _top(
        self, seqs: Sequences, rows: np.ndarray, width: int, queries: list[Query]
    ) -> list[Recommendation]:
        batch = SequenceBatch(item_seq=torch.from_numpy(pad_left(seqs, rows, width)))
        excluded = _exclusions(seqs, rows, queries)
        top = running_top_k(self._blocks(batch, excluded), max(q.k for q in queries))
        keep = torch.isfinite(top[0])  # -inf: excluded, padding or not a candidate
        values, codes = top[0].tolist(), top[1].tolist()
        kept = keep.sum(dim=1).tolist()
        out = []
        for b, q in enumerate(queries):
            n = min(q.k, kept[b])
            raw = self.item_ids[np.asarray(codes[b][:n], dtype=np.int64) - 1].tolist()
            pairs = list(zip(raw, values[b][:n], strict=True))
            out.append(Recommendation(pairs, list(q.unknown), list(q.unknown_candidates)))
        return out

    def _blocks(self, batch: SequenceBatch, excluded: Exclusions) -> Iterator[tuple[int, Tensor]]:
        """Score blocks (start, (B, w)) with the exclusions at -inf: one dense block, or blocks
        of items when the scores would exceed ``max_scores`` and the model has factors."""
        width = block_width(len(batch), self.n_items + 1, self.max_scores)
        factors = None if width is None else score_factors(self.model, batch)
        if factors is None:
            blocks: Iterable[tuple[int, Tensor]] = [(0, self.model.full_sort_predict(batch))]
        else:
            blocks = factors.blocks(width)
        for start, scores in blocks:
            # a fresh tensor (a model may return a view of its own buffer)
            scores = torch.nan_to_num(
                scores.float(), nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf
            )
            excluded.apply(scores, start)
            yield start, scores


def _exclusions(seqs: Sequences, rows: np.ndarray, queries: list[Query]) -> Exclusions:
    """Seen items (``exclude_seen``) and given candidates of a batch of queries."""
    seen_rows = np.array([q.exclude_seen for q in queries])
    batch_row, item = history_coo(seqs, rows[seen_rows])  # every item of the history
    restricted = [b for b, q in enumerate(queries) if q.candidates is not None]
    cand = [queries[b].candidates for b in restricted]
    allowed_row = np.repeat(np.arange(len(restricted)), [len(c) for c in cand])
    allowed_code = np.concatenate(cand).astype(np.int64) if cand else np.zeros(0, np.int64)
    return Exclusions(
        torch.from_numpy(np.flatnonzero(seen_rows)[batch_row]),
        torch.from_numpy(item.astype(np.int64)),
        torch.tensor(restricted, dtype=torch.long),
        torch.from_numpy(allowed_row.astype(np.int64)),
        torch.from_numpy(allowed_code),
    )
