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

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_model
from torch import Tensor, nn

from seqrec import models
from seqrec.batch import SequenceBatch
from seqrec.data.batching import history_coo, pad_left
from seqrec.data.sequences import Sequences
from seqrec.errors import ModelFolderError
from seqrec.models.scoring import MAX_SCORES, block_width, score_factors
from seqrec.serving.folder import CONFIG, WEIGHTS, read_item_ids, read_json, verify_folder
from seqrec.serving.queries import Query, RawIdRecommender, Recommendation
from seqrec.serving.topk import Exclusions, running_top_k


def build_from_folder(folder: Path) -> tuple[nn.Module, list[str]]:
    """The model (eval mode, CPU) and raw item ids of a model folder, without unpickling."""
    spec = read_json(folder / CONFIG)
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
    return model.eval(), read_item_ids(folder, model.n_items)


class Recommender(RawIdRecommender):
    """Recommends raw item ids after raw-id histories with any model of the registry.

    ``item_ids[i]`` is the raw id of item code ``i + 1``. The model is used in eval mode under
    ``torch.inference_mode`` and is never changed, so one instance may serve concurrent callers
    (each call is one forward pass per input width). At most ``max_scores`` scores (histories x
    items) are held at once for a model with ``score_factors``.
    """

    backend = "torch"

    def __init__(
        self,
        model: nn.Module,
        item_ids: Sequence[str],
        metadata: dict[str, Any] | None = None,
        max_scores: int = MAX_SCORES,
    ) -> None:
        if len(item_ids) != model.n_items:
            raise ValueError(f"{len(item_ids)} item ids for a model of {model.n_items} items")
        super().__init__(item_ids, metadata)
        self.model = model.eval()
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
    def model_name(self) -> str:
        return str(self.metadata.get("model") or type(self.model).__name__.lower())

    @property
    def n_items(self) -> int:
        return int(self.model.n_items)

    @property
    def max_len(self) -> int:
        return int(self.model.max_len)

    @torch.inference_mode()
    def _top(
        self, seqs: Sequences, rows: np.ndarray, width: int, queries: list[Query]
    ) -> list[Recommendation]:
        batch = SequenceBatch(item_seq=torch.from_numpy(pad_left(seqs, rows, width)))
        excluded = _exclusions(seqs, rows, queries)
        values, codes = running_top_k(self._blocks(batch, excluded), max(q.k for q in queries))
        return self.answer(queries, values.tolist(), codes.tolist())  # -inf: excluded, padding

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
