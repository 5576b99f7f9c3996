"""Rank every evaluation user's targets and turn the ranks into metrics with confidence intervals.

One path for every model: histories are cut to the model's ``max_len`` and left-padded, the model
scores candidates (``full_sort_predict`` for full ranking, ``predict`` for sampled ranking), and
ranks are computed by counting (``seqrec.metrics.ranking.ranks_from_scores``): a relevant item's
rank is 1 + the number of competing candidates scoring at least as high, so ties never flatter a
model. Users are processed in chunks of ``batch_size`` users with histories of similar length, each
chunk only as wide as its histories need; nothing depends on the chunking, so results are
identical for any batch size.

In a ``torch.distributed`` process group (data-parallel training), each process scores every
``world``-th chunk, no user twice and none padded in, and the chunks' ranks (and impressions) are
gathered to every process and put back in user order: the metrics, their confidence intervals
and so early stopping are exactly one process's, on every process. Every process of the group
must then call ``evaluate`` (or ``ranks``) together.

Blocks of items: when a chunk's full-ranking scores (users x (n_items + 1)) would exceed
``max_scores`` (``EVAL_SCORES``, 2**20: 4 MiB of float32), a model that exposes its output layer
(``score_factors``: SASRec, BERT4Rec, GRU4Rec, GRU4RecF, Pop) is scored one block of items at a
time and each target's rank is counted block by block (``ranks_from_blocks``): the same ranks,
tie rule and history exclusion, in O(users x block) memory, each block counted while it is still
in cache (on Beauty, 256 users x 54,543 items a chunk, 0.55-0.58x the time of one dense pass per
chunk, ``benchmarks/eval_blocks.py``). Other models (DIEN, DIN, a user's own) go through
``full_sort_predict`` whatever the catalogue size.

Click-through metrics (``AUC``, ``GAUC``, ``LogLoss``, see ``seqrec.metrics.ctr``) can be asked
for beside the ranking metrics under a sampled protocol: every scored candidate is then an
impression, the user's target(s) clicked (label 1) and the sampled negatives not (label 0). They
come from the same ``predict`` scores as the ranks, in the same pass. ``LogLoss`` needs scores
that are probabilities: only models with ``predicts_probabilities = True`` get it. Under the
``labelled`` protocol the impressions are the held-out interactions themselves, each with its
click label from the data, and only these metrics apply.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from seqrec.batch import SequenceBatch
from seqrec.config import BootstrapConfig
from seqrec.data.batching import history_coo, pad_left, pad_targets
from seqrec.data.sampling import sample_negatives
from seqrec.data.splits import EvalSet
from seqrec.evaluation.distributed import all_gather, world
from seqrec.evaluation.protocols import FullRanking, LabelledImpressions, Protocol, SampledRanking
from seqrec.evaluation.result import EvalResult, Impressions
from seqrec.metrics.accumulators import RankingMetrics
from seqrec.metrics.ctr import canonical_name, is_ctr_metric
from seqrec.metrics.ranking import parse_metric_name, ranks_from_blocks, ranks_from_scores
from seqrec.models.protocol import SequentialRecommender
from seqrec.models.scoring import block_width, score_factors

WIDTH_STEP = 8  # input widths are multiples of this (or max_len), see Evaluator._chunks
EVAL_SCORES = 2**20  # full-ranking scores held at once by a model with factors (a cached block)
DEFAULT_METRICS = (
    "HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR", "Recall@10", "Precision@10", "MAP@10",
)  # fmt: skip


def check_metric_name(name: str) -> None:
    """A ranking metric (``NDCG@10``) or a CTR metric (``AUC``); otherwise a ValueError."""
    if not is_ctr_metric(name):
        try:
            parse_metric_name(name)
        except ValueError as error:
            raise ValueError(f"{error}; CTR metrics: AUC, GAUC, LogLoss") from error


def _excluded_blocks(
    blocks: Iterator[tuple[int, Tensor]], history: tuple[Tensor, Tensor] | None
) -> Iterator[tuple[int, Tensor]]:
    """The score blocks with the history's items at -inf (targets compete all the same: the
    blocked ranking counts them by their own scores)."""
    for start, scores in blocks:
        if history is not None:
            row, item = history
            inside = (item >= start) & (item < start + scores.shape[1])
            scores[row[inside], item[inside] - start] = -math.inf
        yield start, scores


def _distinct(targets: Tensor) -> Tensor:
    """Each row's distinct target items (a repeated item is relevant once); 0 pads: (B, T)."""
    ordered = targets.sort(dim=1, descending=True).values  # (B, T)
    repeat = torch.zeros_like(ordered, dtype=torch.bool)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    return ordered.masked_fill(repeat, 0)


def has_gauc_users(eval_set: EvalSet) -> bool:
    """Whether some user of a labelled evaluation set has held-out interactions of both labels
    (GAUC skips every other user)."""
    targets = eval_set.targets
    if targets.labels is None or len(eval_set) == 0:
        return False
    clicks = np.add.reduceat(targets.labels, targets.offsets[:-1])
    return bool(((clicks > 0) & (clicks < targets.lengths)).any())


class Evaluator:
    """Evaluates models on one evaluation set under one protocol.

    Sampled negatives are drawn once (seeded; cached in ``cache_dir`` when given) and reused for
    every model and every call, so comparisons and validation curves see the same candidates.
    ``item_counts`` (n_items + 1,) are the popularity weights for ``popular`` sampling.
    Full ranking holds at most ``max_scores`` scores (users x items) at once for models with
    ``score_factors`` (see the module docstring); other models are scored densely.
    """

    def __init__(
        self,
        eval_set: EvalSet,
        protocol: Protocol,
        n_items: int,
        item_counts: np.ndarray | None = None,
        metrics: tuple[str, ...] = DEFAULT_METRICS,
        batch_size: int = 256,
        cache_dir: Path | None = None,
        bootstrap: BootstrapConfig | None = None,
        max_scores: int = EVAL_SCORES,
    ) -> None:
        if len(eval_set) == 0:
            raise ValueError("the evaluation set has no users")
        self.eval_set, self.protocol, self.n_items = eval_set, protocol, n_items
        self.metrics, self.batch_size = tuple(metrics), batch_size
        self.max_scores = max_scores
        self.bootstrap = bootstrap or BootstrapConfig()
        for name in self.metrics:
            check_metric_name(name)
        self.ctr_metrics = tuple(canonical_name(m) for m in self.metrics if is_ctr_metric(m))
        self.ranking_metrics = tuple(m for m in self.metrics if not is_ctr_metric(m))
        if isinstance(protocol, LabelledImpressions):
            self._check_labelled()
        elif self.ctr_metrics and not isinstance(protocol, SampledRanking):
            raise ValueError(
                f"{', '.join(self.ctr_metrics)} need a sampled protocol (uniformN or popularN) "
                f"or labelled, not {protocol.name!r}: only there is every user's set of "
                "non-clicked items given"
            )
        self.negatives: np.ndarray | None = None
        weights = None
        if isinstance(protocol, SampledRanking):
            if protocol.sampler == "popular" and item_counts is None:
                raise ValueError("popularity sampling needs item_counts")
            weights = item_counts if protocol.sampler == "popular" else None
            self.negatives = self._negatives(weights, cache_dir)
        self.fingerprint = self._fingerprint(weights)

    def _check_labelled(self) -> None:
        """The labelled protocol needs click labels, CTR metrics only and, for GAUC, a user
        with both labels."""
        labels = self.eval_set.targets.labels
        if labels is None:
            raise ValueError(
                "the labelled protocol scores held-out interactions against their click labels, "
                "and the data has none: set data.click_labels"
            )
        if self.ranking_metrics or not self.ctr_metrics:
            shown = ", ".join(self.ranking_metrics) or "no metric"
            raise ValueError(
                f"the labelled protocol gives AUC, GAUC and LogLoss only, not {shown}: it has no "
                "candidates to rank (rank under full, uniformN or popularN in another run)"
            )
        if "GAUC" in self.ctr_metrics and not has_gauc_users(self.eval_set):
            raise ValueError(
                "GAUC: no user has both a clicked and a non-clicked held-out interaction (with "
                "leave_one_out each has one; use a ratio split or a temporal one with targets: all)"
            )

    def _negatives(self, weights: np.ndarray | None, cache_dir: Path | None) -> np.ndarray:
        protocol = self.protocol
        assert isinstance(protocol, SampledRanking)
        path = None
        if cache_dir is not None:
            path = Path(cache_dir) / f"negatives-{self._fingerprint(weights)}.npy"
            if path.exists():
                return np.load(path, allow_pickle=False)
        negatives = sample_negatives(
            self.eval_set.context, self.n_items, protocol.n_negatives, weights,
            seed=protocol.seed, also_exclude=self.eval_set.targets,
        )  # fmt: skip
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, negatives)
            tmp.replace(path)
        return negatives

    def _fingerprint(self, weights: np.ndarray | None) -> str:
        digest = hashlib.sha256()
        es = self.eval_set
        for array in (
            es.users,
            es.context.offsets,
            es.context.items,
            es.targets.offsets,
            es.targets.items,
        ):
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        if isinstance(self.protocol, LabelledImpressions):
            digest.update(np.ascontiguousarray(es.targets.labels, dtype=np.float64).tobytes())
        if weights is not None:
            digest.update(np.ascontiguousarray(weights, dtype=np.float64).tobytes())
        digest.update(f"{self.protocol}|{self.n_items}".encode())
        return digest.hexdigest()[:20]

    def _chunks(self, max_len: int) -> list[tuple[np.ndarray, int]]:
        """Users in chunks of at most ``batch_size`` that share one input width, with that width.

        A user's width is the history length rounded up to a multiple of ``WIDTH_STEP``, at most
        ``max_len``: short histories are not padded to ``max_len`` (most of a short-sequence data
        set's cost would be padding), and a user's width depends on that user alone, so results
        do not depend on the batch size.
        """
        lengths = np.maximum(np.diff(self.eval_set.context.offsets), 1)
        widths = np.minimum(-(-lengths // WIDTH_STEP) * WIDTH_STEP, max_len)
        chunks = []
        for width in np.unique(widths):
            rows = np.flatnonzero(widths == width)
            for start in range(0, len(rows), self.batch_size):
                chunks.append((rows[start : start + self.batch_size], int(width)))
        return chunks

    @torch.no_grad()
    def ranks(self, model: SequentialRecommender, device: str | torch.device = "cpu") -> np.ndarray:
        """Rank of every target of every user: (U, T) float, ``inf`` padding for fewer targets."""
        return self._score(model, device, impressions=False)[0]

    @torch.no_grad()
    def _score(
        self, model: SequentialRecommender, device: str | torch.device, impressions: bool
    ) -> tuple[np.ndarray, Impressions | None]:
        """Ranks (U, T) and, if asked (sampled protocols), every scored candidate."""
        was_training = getattr(model, "training", False)
        if hasattr(model, "eval"):
            model.eval()
        rank, size = world()
        mine = []  # (chunk index, rows, ranks, impressions) of this process's chunks
        try:
            for index, (rows, width) in enumerate(self._chunks(model.max_len)):
                if index % size != rank:
                    continue
                ranks, shown = self._rank_chunk(model, rows, width, device, impressions)
                mine.append((index, rows, ranks.cpu().numpy(), shown))
        finally:
            if was_training:
                model.train()
        chunks = sorted((c for part in all_gather(mine) for c in part), key=lambda c: c[0])
        ranks = np.full((len(self.eval_set), max(c[2].shape[1] for c in chunks)), np.inf)
        for _, rows, chunk, _ in chunks:
            ranks[rows, : chunk.shape[1]] = chunk
        if not impressions:
            return ranks, None
        seen = [c[3] for c in chunks]
        scores, labels, users = (torch.cat(parts) for parts in zip(*seen, strict=True))
        return ranks, Impressions(scores, labels, users)

    def _rank_chunk(
        self,
        model: SequentialRecommender,
        rows: np.ndarray,
        width: int,
        device: str | torch.device,
        impressions: bool = False,
    ) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor] | None]:
        es = self.eval_set
        item_seq = torch.from_numpy(pad_left(es.context, rows, width))
        users = torch.from_numpy(es.users[rows])
        batch = SequenceBatch(item_seq=item_seq, users=users).to(device)
        if isinstance(self.protocol, LabelledImpressions):
            return self._labelled_chunk(model, batch, rows, device)
        targets = _distinct(torch.from_numpy(pad_targets(es.targets, rows))).to(device)  # (B, T)
        if isinstance(self.protocol, FullRanking):
            return self._full_ranks(model, batch, rows, targets), None
        negatives = torch.from_numpy(self.negatives[rows]).to(device)  # (B, N)
        candidates = torch.cat([targets, negatives], dim=1)  # (B, T + N)
        scores = model.predict(batch, candidates).float()
        relevant = torch.zeros_like(candidates, dtype=torch.bool)
        relevant[:, : targets.shape[1]] = targets > 0
        ranks = ranks_from_scores(scores, relevant, candidates > 0)
        if not impressions:
            return ranks, None
        shown = candidates > 0  # (B, T + N): padding targets are no impressions
        row = torch.from_numpy(rows).to(device)[:, None].expand_as(candidates)  # eval-set row
        return ranks, (scores[shown].cpu(), relevant[shown].cpu().long(), row[shown].cpu())

    def _labelled_chunk(
        self,
        model: SequentialRecommender,
        batch: SequenceBatch,
        rows: np.ndarray,
        device: str | torch.device,
    ) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        """No ranks (B, 0); every held-out interaction (a repeated item too) as an impression."""
        targets = self.eval_set.targets
        shown_items = torch.from_numpy(pad_targets(targets, rows)).to(device)  # (B, T), 0 pads
        labels = torch.from_numpy(pad_targets(targets, rows, targets.labels))  # (B, T)
        scores = model.predict(batch, shown_items).float().cpu()
        shown = (shown_items > 0).cpu()
        row = torch.from_numpy(rows)[:, None].expand_as(shown)  # eval-set row
        no_ranks = torch.zeros((len(rows), 0))
        return no_ranks, (scores[shown], labels[shown].long(), row[shown])

    def _full_ranks(
        self, model: SequentialRecommender, batch: SequenceBatch, rows: np.ndarray, targets: Tensor
    ) -> Tensor:
        width = block_width(len(rows), self.n_items + 1, self.max_scores)
        factors = None if width is None else score_factors(model, batch)
        if factors is None:
            return self._dense_full_ranks(model, batch, rows, targets)
        history = self._history(rows, targets.device)
        blocks = _excluded_blocks(factors.blocks(width), history)
        return ranks_from_blocks(factors.of(targets).float(), targets, blocks)

    def _history(self, rows: np.ndarray, device: torch.device) -> tuple[Tensor, Tensor] | None:
        """(batch row, item) of every history item to leave out, or None if none is."""
        if not self.protocol.exclude_history:
            return None
        batch_row, item = history_coo(self.eval_set.context, rows)
        return torch.from_numpy(batch_row).to(device), torch.from_numpy(item).to(device)

    def _dense_full_ranks(
        self, model: SequentialRecommender, batch: SequenceBatch, rows: np.ndarray, targets: Tensor
    ) -> Tensor:
        # a private copy: excluded candidates are overwritten with -inf instead of carrying a
        # (B, n_items + 1) candidate mask through the counting pass
        scores = model.full_sort_predict(batch).float().clone()  # (B, n_items + 1)
        relevant = torch.zeros_like(scores, dtype=torch.bool)
        relevant.scatter_(1, targets, targets > 0)
        relevant[:, 0] = False
        target_scores = scores.gather(1, targets)  # (B, T)
        history = self._history(rows, scores.device)
        if history is not None:
            scores[history] = -math.inf
        scores.scatter_(1, targets, target_scores)  # a target the user had before still competes
        scores[:, 0] = -math.inf  # padding is never a candidate (nor a target: 0 pads `targets`)
        return ranks_from_scores(scores, relevant)

    def evaluate(
        self, model: SequentialRecommender, device: str | torch.device = "cpu"
    ) -> EvalResult:
        """Ranks -> per-user metric values -> means with 95% bootstrap confidence intervals;
        CTR metrics from the impressions of the same pass."""
        if "LogLoss" in self.ctr_metrics and not getattr(model, "predicts_probabilities", False):
            raise ValueError(
                f"LogLoss needs click probabilities, and {type(model).__name__} scores are not "
                "probabilities (its predicts_probabilities is not True); drop LogLoss"
            )
        ranks, shown = self._score(model, device, impressions=bool(self.ctr_metrics))
        per_user = {}
        if self.ranking_metrics:
            # the ranks are every process's already: no second gather (in another user order)
            accumulator = RankingMetrics(list(self.ranking_metrics), sync_on_compute=False)
            accumulator.update(torch.from_numpy(ranks))
            per_user = {name: values.numpy() for name, values in accumulator.per_user().items()}
        return EvalResult(
            self.protocol.name, self.eval_set.users, per_user, ranks,
            self.bootstrap, self.fingerprint, impressions=shown, ctr_metrics=self.ctr_metrics,
        )  # fmt: skip
