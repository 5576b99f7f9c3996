import itertools

import numpy as np
import pytest

from seqrec.metrics import stats
from seqrec.metrics.stats import PairedResult, bootstrap_ci, paired_comparison, summarise


def hits(n_users: int, rate: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(n_users) < rate).astype(np.float64)


def test_bootstrap_ci_contains_the_mean_and_is_seeded() -> None:
    values = hits(500, 0.3, seed=0)
    mean, low, high = bootstrap_ci(values, seed=3)
    assert mean == values.mean()
    assert low < mean < high
    assert bootstrap_ci(values, seed=3) == (mean, low, high)
    assert bootstrap_ci(values, seed=4) != (mean, low, high)


def test_bootstrap_ci_width_matches_the_normal_approximation() -> None:
    values = hits(5000, 0.3, seed=1)
    _, low, high = bootstrap_ci(values, n_resamples=2000)
    normal_width = 2 * 1.96 * values.std() / np.sqrt(len(values))  # 0.0254 for p = 0.3
    assert high - low == pytest.approx(normal_width, rel=0.1)


def test_bootstrap_ci_shrinks_with_more_users() -> None:
    _, low_small, high_small = bootstrap_ci(hits(100, 0.3, seed=2))
    _, low_large, high_large = bootstrap_ci(hits(10_000, 0.3, seed=2))
    ratio = (high_small - low_small) / (high_large - low_large)
    assert 6 < ratio < 14  # width scales as 1 / sqrt(n): sqrt(10000 / 100) = 10


def test_resampling_in_small_chunks_gives_every_resample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats, "_CHUNK_ELEMENTS", 50)  # 2 resamples of 20 users per chunk
    values = np.arange(20, dtype=np.float64)
    means = stats._bootstrap_means(values, 101, np.random.default_rng(0))
    assert means.shape == (101,)
    assert len(np.unique(means)) > 50  # chunks draw fresh resamples, not one repeated
    assert values.min() <= means.min() and means.max() <= values.max()


def test_identical_runs_differ_by_nothing() -> None:
    values = hits(300, 0.4, seed=5)
    assert paired_comparison(values, values.copy()) == PairedResult(0.0, 0.0, 0.0, 1.0)


def test_symmetric_differences_give_p_value_one() -> None:
    a = np.array([0.5, 0.2, 0.9, 0.1])
    b = np.array([0.3, 0.4, 0.6, 0.4])  # differences 0.2, -0.2, 0.3, -0.3 sum to 0
    assert paired_comparison(a, b).p_value == 1.0


def test_clearly_different_runs_give_a_small_p_value() -> None:
    rng = np.random.default_rng(6)
    b = rng.random(400)
    a = b + 0.1 + rng.normal(0.0, 0.05, 400)
    result = paired_comparison(a, b, n_resamples=999)
    assert result.mean_diff == pytest.approx(0.1, abs=0.01)
    assert 0 < result.low < result.mean_diff < result.high
    assert result.p_value == 1 / 1000  # no sign flip is as extreme: the smallest possible p


def test_sign_flip_p_value_matches_exact_enumeration() -> None:
    diff = np.random.default_rng(7).normal(0.3, 1.0, 10)
    flips = np.array(list(itertools.product([-1.0, 1.0], repeat=10)))  # all 1024 sign patterns
    exact = np.mean(np.abs(flips @ diff) >= abs(diff.sum()) - 1e-12)
    result = paired_comparison(diff, np.zeros(10), n_resamples=20_000, seed=1)
    assert result.p_value == pytest.approx(exact, abs=0.015)  # Monte Carlo sd <= 0.0035


def test_paired_comparison_needs_equal_lengths() -> None:
    with pytest.raises(ValueError, match="a has 3 users but b has 2"):
        paired_comparison(np.ones(3), np.ones(2))


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"contains NaN or inf \(first at index 1\)"):
        bootstrap_ci([0.5, np.nan])
    with pytest.raises(ValueError, match="non-empty 1-D array"):
        bootstrap_ci(np.ones((2, 2)))
    with pytest.raises(ValueError, match="confidence must lie strictly between 0 and 1"):
        bootstrap_ci([1.0], confidence=95)


def test_summarise_reports_each_metric() -> None:
    per_user = {"HR@10": hits(200, 0.5, seed=8), "NDCG@10": hits(200, 0.2, seed=9) * 0.6}
    summary = summarise(per_user, seed=2)
    assert list(summary) == ["HR@10", "NDCG@10"]
    mean, low, high = bootstrap_ci(per_user["NDCG@10"], seed=2)
    assert summary["NDCG@10"] == {"mean": mean, "ci_low": low, "ci_high": high, "n": 200}


def test_resampled_means_equal_the_means_of_the_drawn_users() -> None:
    values = hits(50, 0.3, seed=11) * np.linspace(0.1, 1.0, 50)
    table = np.stack([values, values**2], axis=1)
    means = stats._bootstrap_means(table, 7, np.random.default_rng(4))
    draws = np.random.default_rng(4).integers(0, 50, size=(7, 50))  # the same draws, by hand
    np.testing.assert_allclose(means, table[draws].mean(axis=1), rtol=1e-12)
    alone = stats._bootstrap_means(values**2, 7, np.random.default_rng(4))
    assert np.array_equal(alone, means[:, 1])  # a column does not depend on the others


def test_summarise_rejects_metrics_of_different_users() -> None:
    with pytest.raises(ValueError, match="same users"):
        summarise({"HR@10": np.ones(3), "NDCG@10": np.ones(4)})
