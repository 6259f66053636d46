import numpy as np
import pytest

from ferzoo.mixture import BetaMixture
from ferzoo.mixture import mine_class_distributions


def two_betas(n, noisy, clean, weight, seed=0):
    rng = np.random.default_rng(seed)
    num_clean = int(round(weight * n))
    x = np.concatenate(
        [rng.beta(*noisy, n - num_clean), rng.beta(*clean, num_clean)]
    )
    is_clean = np.arange(n) >= n - num_clean
    return x, is_clean


@pytest.mark.parametrize(
    "noisy, clean, weight",
    [((2.0, 8.0), (8.0, 2.0), 0.7), ((2.0, 6.0), (5.0, 1.5), 0.7)],
)
def test_em_recovers_parameters(noisy, clean, weight):
    x, _ = two_betas(20000, noisy, clean, weight)
    bmm = BetaMixture().fit(x)
    np.testing.assert_allclose(bmm.alphas, [noisy[0], clean[0]], rtol=0.1)
    np.testing.assert_allclose(bmm.betas, [noisy[1], clean[1]], rtol=0.1)
    np.testing.assert_allclose(bmm.weights, [1 - weight, weight], atol=0.03)


def test_posterior_separates_components():
    x, is_clean = two_betas(5000, (2.0, 8.0), (8.0, 2.0), 0.6, seed=1)
    post = BetaMixture().fit(x).clean_probability(x)
    assert post.shape == x.shape
    assert np.all((post >= 0) & (post <= 1))
    assert ((post > 0.5) == is_clean).mean() > 0.95
    # Non-decreasing in x.
    assert np.all(np.diff(post[np.argsort(x)]) >= -1e-12)


def test_robust_to_exact_zeros_and_ones():
    x, _ = two_betas(1000, (2.0, 8.0), (8.0, 2.0), 0.7, seed=2)
    x = np.concatenate([np.zeros(100), x, np.ones(300)])
    bmm = BetaMixture().fit(x)
    for values in (bmm.alphas, bmm.betas, bmm.weights):
        assert np.all(np.isfinite(values)) and np.all(values > 0)
    post = bmm.clean_probability(x)
    assert np.all(np.isfinite(post))
    assert post[:100].max() < 0.05  # exact zeros are noisy
    assert post[-300:].min() > 0.95  # exact ones are clean
    assert 0.5 < bmm.weights[1] < 0.9


def test_invalid_input():
    with pytest.raises(ValueError, match="at least 2"):
        BetaMixture().fit([0.5])
    with pytest.raises(ValueError, match="max_iterations"):
        BetaMixture(max_iterations=0)


def numpy_class_distributions(dists, labels, num_classes, t):
    out = np.zeros((num_classes, num_classes))
    for c in range(num_classes):
        rows = [d for d, y in zip(dists, labels) if y == c]
        mean = np.mean(rows, axis=0) if rows else None
        if mean is not None and mean[c] >= t:
            out[c] = mean
        else:
            out[c] = (1 - t) / (num_classes - 1)
            out[c, c] = t
    return out


def test_class_distribution_mining():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 6, 60)  # class 6 has no sample
    dists = rng.dirichlet(np.ones(7) * 0.3, 60)
    dists[labels == 2, 2] += 3.0  # class 2 is stable
    dists /= dists.sum(axis=1, keepdims=True)
    got = mine_class_distributions(dists, labels, 7, 0.7)
    want = numpy_class_distributions(dists, labels, 7, 0.7)
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert got[2, 2] > 0.7
    np.testing.assert_allclose(got[6, 6], 0.7)
    np.testing.assert_allclose(got.sum(axis=1), np.ones(7), atol=1e-9)
