"""Train / validation / test splits that keep every evaluation target out of training.

Three ways to split a ``SequenceCorpus``:

- ``leave_one_out``: per user, the last item is the test target and the second-to-last the
  validation target; training sees neither. The test context includes the validation item.
- ``temporal_split``: one global time cut-off (and an optional earlier one for validation); training
  sees only interactions before the first cut-off.
- ``ratio_split``: per user in time order, the newest shares of the interactions are test and
  validation (RecBole's ``RS`` split grouped by user).
- ``labelled_split``: every interaction carries a user-given label ``train``/``valid``/``test``.

Users that cannot be evaluated (too short, or nothing after a cut-off) stay in training where their
data allows and are counted in ``Split.notes``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqrec.data.corpus import SequenceCorpus, Sequences


@dataclass(frozen=True)
class EvalSet:
    """Users to evaluate: what the model is shown (``context``) and what it must find (``targets``).

    Row ``r`` of ``context`` and ``targets`` belongs to user code ``users[r]``. ``context`` is in
    time order, newest last; it is also the history excluded from full-ranking candidates.
    """

    users: np.ndarray  # (U,) int64 user codes
    context: Sequences  # (U rows)
    targets: Sequences  # (U rows), each with at least one item

    def __len__(self) -> int:
        return len(self.users)


@dataclass(frozen=True)
class Split:
    """``train`` has one row per user code (possibly empty); nothing in it is a later target."""

    train: Sequences
    valid: EvalSet
    test: EvalSet
    notes: tuple[str, ...] = ()


def _eval_set(users: np.ndarray, context: Sequences, targets: Sequences) -> EvalSet:
    keep = (context.lengths > 0) & (targets.lengths > 0)
    rows = np.flatnonzero(keep)
    return EvalSet(users[rows], context.take(rows), targets.take(rows))


def leave_one_out(corpus: SequenceCorpus) -> Split:
    """Last item -> test, second-to-last -> validation, the rest -> training.

    Users with fewer than 3 interactions are not evaluated (they need a context, a validation and a
    test item); their interactions stay in training, and the count is reported in ``notes``.
    """
    seqs = corpus.sequences
    n = seqs.lengths
    evaluable = n >= 3
    train = seqs.slice_rows(np.zeros_like(n), np.where(evaluable, n - 2, n))
    users = np.flatnonzero(evaluable)
    rows, m = seqs.take(users), n[evaluable]
    start = np.zeros_like(m)
    valid = EvalSet(users, rows.slice_rows(start, m - 2), rows.slice_rows(m - 2, m - 1))
    test = EvalSet(users, rows.slice_rows(start, m - 1), rows.slice_rows(m - 1, m))
    notes = ()
    if (~evaluable).any():
        notes = (
            f"{int((~evaluable).sum()):,} users with fewer than 3 interactions are not evaluated "
            "(their interactions stay in training)",
        )
    return Split(train, valid, test, notes)


def _window(seqs: Sequences, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the position range of interactions with lo <= t < hi (rows are time-sorted)."""
    if seqs.timestamps is None:
        raise ValueError("a temporal split needs timestamps")
    rows = seqs.row_ids()
    before_lo = np.bincount(rows, weights=seqs.timestamps < lo, minlength=len(seqs))
    before_hi = np.bincount(rows, weights=seqs.timestamps < hi, minlength=len(seqs))
    return before_lo.astype(np.int64), before_hi.astype(np.int64)


def _targets_after(seqs: Sequences, start: np.ndarray, stop: np.ndarray, targets: str) -> Sequences:
    if targets == "next":
        stop = np.minimum(stop, start + 1)
    elif targets != "all":
        raise ValueError(f"targets must be 'next' or 'all', got {targets!r}")
    return seqs.slice_rows(start, stop)


def temporal_split(
    corpus: SequenceCorpus,
    test_time: float,
    valid_time: float | None = None,
    targets: str = "next",
) -> Split:
    """Global time cut-offs: train < valid_time <= valid targets < test_time <= test targets.

    ``targets="next"`` makes the first interaction after a cut-off the target; ``"all"`` makes every
    interaction after it relevant (for Recall/Precision/MAP with several relevant items). Without
    ``valid_time`` the validation set is empty and training uses everything before ``test_time``.
    """
    seqs = corpus.sequences
    n = seqs.lengths
    valid_time = test_time if valid_time is None else valid_time
    if valid_time > test_time:
        raise ValueError(f"valid_time ({valid_time}) must not be after test_time ({test_time})")
    n_before_valid, n_before_test = (
        _window(seqs, -np.inf, valid_time)[1],
        _window(seqs, -np.inf, test_time)[1],
    )
    users = np.arange(corpus.n_users)
    train = seqs.slice_rows(np.zeros_like(n), n_before_valid)
    valid = _eval_set(
        users,
        seqs.slice_rows(np.zeros_like(n), n_before_valid),
        _targets_after(seqs, n_before_valid, n_before_test, targets),
    )
    test = _eval_set(
        users,
        seqs.slice_rows(np.zeros_like(n), n_before_test),
        _targets_after(seqs, n_before_test, n, targets),
    )
    dropped = int(n.sum() - n_before_test.sum()) - int(test.targets.lengths.sum())
    notes = (
        f"{len(test):,} of {corpus.n_users:,} users have history before and interactions after the "
        f"test cut-off",
    )
    if dropped:
        notes += (
            f"{dropped:,} interactions after the test cut-off are not test targets "
            f"(users with no earlier history, or targets={targets!r})",
        )
    return Split(train, valid, test, notes)


def ratio_counts(lengths: np.ndarray, ratios: tuple[float, float, float]) -> np.ndarray:
    """(train, valid, test) interaction counts per user (U, 3), RecBole's ``_calcu_split_ids``:
    the shares normalised to sum 1, valid and test rounded down, training the rest; then test,
    and after it validation, get one interaction where its share is above 0 but below one
    interaction, while training keeps more than one."""
    shares = np.asarray(ratios, dtype=np.float64) / float(sum(ratios))
    exact = shares[None, :] * lengths[:, None]  # (U, 3)
    counts = exact.astype(np.int64)
    counts[:, 0] = lengths - counts[:, 1:].sum(1)
    for part in (2, 1):
        bump = (counts[:, 0] > 1) & (exact[:, part] > 0) & (exact[:, part] < 1)
        counts[:, part] += bump
        counts[:, 0] -= bump
    return counts


def ratio_split(corpus: SequenceCorpus, ratios: tuple[float, float, float]) -> Split:
    """Per user in time order: training, then validation, then test interactions, in the
    shares ``ratios`` (see ``ratio_counts``). Every held-out interaction is a target; the
    validation context is the user's training part, the test context adds the validation part.
    """
    seqs = corpus.sequences
    n = seqs.lengths
    counts = ratio_counts(n, ratios)
    train_end, valid_end = counts[:, 0], counts[:, 0] + counts[:, 1]
    start = np.zeros_like(n)
    users = np.arange(corpus.n_users)
    train = seqs.slice_rows(start, train_end)
    valid = _eval_set(users, train, seqs.slice_rows(train_end, valid_end))
    test = _eval_set(users, seqs.slice_rows(start, valid_end), seqs.slice_rows(valid_end, n))
    notes = ()
    unevaluated = corpus.n_users - len(test)
    if unevaluated:
        notes = (
            f"{unevaluated:,} users have no test interaction at ratios {list(ratios)} "
            "(too few interactions); theirs stay in training",
        )
    return Split(train, valid, test, notes)


def time_quantile(corpus: SequenceCorpus, q: float) -> float:
    """The timestamp below which a share ``q`` of all interactions fall (to pick a cut-off)."""
    if corpus.sequences.timestamps is None:
        raise ValueError("the corpus has no timestamps")
    return float(np.quantile(corpus.sequences.timestamps, q))


def labelled_split(corpus: SequenceCorpus, labels: np.ndarray) -> Split:
    """A split given by the user: ``labels`` holds 'train'/'valid'/'test' per stored interaction.

    ``labels`` is aligned with ``corpus.sequences.items``. Context for validation is the user's
    training interactions; context for test adds the validation ones. Each keeps time order.
    """
    labels = np.asarray(labels).astype(str)
    if len(labels) != len(corpus.sequences.items):
        raise ValueError(
            f"{len(labels)} split labels for {len(corpus.sequences.items)} interactions"
        )
    unknown = sorted(set(np.unique(labels)) - {"train", "valid", "test"})
    if unknown:
        raise ValueError(f"split labels must be train/valid/test, found {unknown[:5]}")
    seqs = corpus.sequences
    users = np.arange(corpus.n_users)
    is_train, is_valid, is_test = labels == "train", labels == "valid", labels == "test"
    train = _mask_rows(seqs, is_train)
    valid = _eval_set(users, train, _mask_rows(seqs, is_valid))
    test = _eval_set(users, _mask_rows(seqs, is_train | is_valid), _mask_rows(seqs, is_test))
    return Split(train, valid, test)


def _mask_rows(seqs: Sequences, keep: np.ndarray) -> Sequences:
    """The stored interactions where ``keep`` is True, rows preserved (possibly empty)."""
    counts = np.bincount(seqs.row_ids(), weights=keep, minlength=len(seqs)).astype(np.int64)
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return seqs.at_positions(offsets, keep)


def _stacked(first: np.ndarray | None, second: np.ndarray | None) -> np.ndarray | None:
    return None if first is None or second is None else np.concatenate([first, second])


def train_on_validation(split: Split) -> Split:
    """The split with its validation targets moved into training and no validation set.

    Every test user's training row becomes its test context (training + validation items, in
    time order); other users keep their training row. This is how the BERT4Rec authors train the
    model they test: nothing is left for early stopping, so training runs a fixed length.
    """
    train, test = split.train, split.test
    stacked = Sequences(
        np.concatenate([train.offsets, test.context.offsets[1:] + train.offsets[-1]]),
        np.concatenate([train.items, test.context.items]),
        *(_stacked(getattr(train, name), getattr(test.context, name))
          for name in ("timestamps", "labels")),
    )  # fmt: skip
    rows = np.arange(len(train))
    rows[test.users] = len(train) + np.arange(len(test))
    empty = Sequences(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64))
    no_validation = EvalSet(np.zeros(0, dtype=np.int64), empty, empty)
    note = (
        f"validation targets of {len(split.valid):,} users are trained on "
        "(train_on_validation): no validation set"
    )
    return Split(stacked.take(rows), no_validation, test, (*split.notes, note))
