"""Uncertainty of per-user metrics: bootstrap confidence intervals and paired run comparisons.

Users are the resampling unit: a metric is a mean over users, so its sampling error comes from
which users happened to be in the test set. Inputs are 1-D per-user values (numpy arrays, or
anything ``np.asarray`` accepts, such as CPU tensors). Resampling is vectorised and done in chunks
of at most ``_CHUNK_ELEMENTS`` draws, so memory stays bounded (~70 MB) whatever the number of
users; the metrics of one evaluation share their draws. Results are deterministic for a given
``seed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

_CHUNK_ELEMENTS = 1 << 22  # draws per chunk: (resamples in chunk) x (users)


@dataclass(frozen=True)
class PairedResult:
    """Run ``a`` minus run ``b`` on the same users: mean difference, its CI and a p-value."""

    mean_diff: float
    low: float
    high: float
    p_value: float


def _as_values(values: object, label: str = "values") -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"{label} must be a non-empty 1-D array of per-user values, got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        index = int(np.argmin(np.isfinite(array)))
        raise ValueError(f"{label} contains NaN or inf (first at index {index})")
    return array


def _check_settings(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def _chunks(n_resamples: int, n_users: int) -> list[int]:
    per_chunk = max(1, _CHUNK_ELEMENTS // n_users)
    return [min(per_chunk, n_resamples - start) for start in range(0, n_resamples, per_chunk)]


def _bootstrap_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_resamples`` resamples, drawn with replacement, of the rows of ``values``.

    ``values`` is (n,) or (n, m): every column is resampled with the same draws, so metrics of one
    evaluation share them (as separate calls with one seed would) and are drawn once. A resample
    is a row of draw counts; each column's means are ``counts . column``, computed column by
    column so that a column's result does not depend on the others. Returns (n_resamples,) or
    (n_resamples, m).
    """
    n_users = len(values)
    columns = np.ascontiguousarray(values.reshape(n_users, -1).T)  # (m, n), one row per column
    means = np.empty((n_resamples, len(columns)))
    start = 0
    for size in _chunks(n_resamples, n_users):
        draws = rng.integers(0, n_users, size=(size, n_users))  # (size, n)
        draws += n_users * np.arange(size)[:, None]  # one bin range per resample
        counts = np.bincount(draws.ravel(), minlength=size * n_users).reshape(size, n_users)
        counts = counts.astype(np.float64)
        for j, column in enumerate(columns):
            # einsum's own loop, not BLAS: numpy's BLAS threads keep spinning for a while after a
            # call and would take a core from the model's next forward pass
            means[start : start + size, j] = np.einsum("rn,n->r", counts, column) / n_users
        start += size
    return means.reshape(n_resamples, *values.shape[1:])


def _percentile_ci(
    values: np.ndarray, n_resamples: int, confidence: float, rng: np.random.Generator
) -> tuple[float, float, float]:
    means = _bootstrap_means(values, n_resamples, rng)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(values.mean()), float(low), float(high)


def bootstrap_ci(
    values: object, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its percentile bootstrap interval.

    Users are resampled with replacement ``n_resamples`` times; ``low``/``high`` are the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled means.
    """
    _check_settings(n_resamples, confidence)
    return _percentile_ci(_as_values(values), n_resamples, confidence, np.random.default_rng(seed))


def _sign_flip_p_value(diff: np.ndarray, n_resamples: int, rng: np.random.Generator) -> float:
    observed = abs(diff.sum())
    # sums of the same numbers in another order differ by rounding; do not count that as smaller
    tolerance = 1e-9 * np.abs(diff).sum()
    extreme = 0
    for size in _chunks(n_resamples, len(diff)):
        signs = rng.integers(0, 2, size=(size, len(diff)), dtype=np.int8) * 2 - 1  # (size, n)
        flipped = np.abs(np.einsum("rn,n->r", signs, diff))  # (size,); no BLAS: _bootstrap_means
        extreme += int(np.count_nonzero(flipped >= observed - tolerance))
    return (extreme + 1) / (n_resamples + 1)


def paired_comparison(
    a: object, b: object, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> PairedResult:
    """Compare two runs scored on the same users (``a[i]`` and ``b[i]`` belong to user ``i``).

    ``mean_diff`` is ``mean(a - b)`` with a percentile bootstrap interval over users (pairs kept
    together). ``p_value`` is two-sided, from a paired randomisation (sign-flip) test: under the
    null hypothesis that, for every user, the two runs' values are exchangeable, each difference
    ``a[i] - b[i]`` is as likely negated, so ``p = (1 + #{resamples with |sum(s * d)| >=
    |sum(d)|}) / (1 + n_resamples)`` with ``s`` random signs. Counting the observed assignment
    keeps the test valid and ``p >= 1 / (n_resamples + 1)``; identical runs give exactly 1.
    """
    _check_settings(n_resamples, confidence)
    first, second = _as_values(a, "a"), _as_values(b, "b")
    if len(first) != len(second):
        raise ValueError(
            f"a has {len(first)} users but b has {len(second)}: a paired comparison needs the "
            "per-user values of both runs on the same users, in the same order"
        )
    diff = first - second
    rng = np.random.default_rng(seed)
    mean_diff, low, high = _percentile_ci(diff, n_resamples, confidence, rng)
    return PairedResult(mean_diff, low, high, _sign_flip_p_value(diff, n_resamples, rng))


def summarise(
    per_user: Mapping[str, object],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """For each metric: ``mean``, ``ci_low``, ``ci_high`` (percentile bootstrap) and ``n`` users.

    The metrics are values of the same users, so they share one set of resamples: each metric's
    interval equals ``bootstrap_ci(values, n_resamples, confidence, seed)``.
    """
    _check_settings(n_resamples, confidence)
    arrays = {
        name: _as_values(values, f"per-user values of {name!r}")
        for name, values in per_user.items()
    }
    if not arrays:
        return {}
    n_users = {name: len(array) for name, array in arrays.items()}
    if len(set(n_users.values())) > 1:
        raise ValueError(f"per-user values must cover the same users; counts: {n_users}")
    table = np.stack(list(arrays.values()), axis=1)  # (n, m)
    means = _bootstrap_means(table, n_resamples, np.random.default_rng(seed))  # (R, m)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail], axis=0)  # (m,) each
    return {
        name: {
            "mean": float(array.mean()),
            "ci_low": float(low[j]),
            "ci_high": float(high[j]),
            "n": len(array),
        }
        for j, (name, array) in enumerate(arrays.items())
    }
