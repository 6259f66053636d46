"""Beta mixture model and class-distribution mining (NumPy, host side).

DualBranch fits it once per epoch, in an epoch-end callback, on every
training sample's cosine similarity between prediction and given label.
It runs on the host on a few thousand scalars, so it is plain NumPy and
identical on every Keras backend. The class-distribution mining of the
same epoch-end step lives here too.
"""

import math

import numpy as np
from scipy import special


class BetaMixture:
    """Two-component beta mixture on [0, 1], fitted by EM.

    The E-step computes each component's responsibility in log space; the
    M-step sets each component's parameters to their weighted maximum
    likelihood (Newton steps on the weighted means of `log x` and
    `log(1 - x)`, started from the method of moments) and its mixing
    weight to the mean responsibility. Values are clipped to
    `[eps, 1 - eps]`, so exact 0 and 1 are safe. After `fit`, component 0
    has the lower mean (noisy) and component 1 the higher (clean).

    Args:
        max_iterations: int. EM iterations at most. Defaults to `100`.
        tolerance: float. Stop when the mean log-likelihood improves by
            less than this. Defaults to `1e-6`.
        eps: float. Clipping margin from 0 and 1. Defaults to `1e-4`.

    Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.beta(2, 8, 300), rng.beta(8, 2, 700)])
    >>> bmm = ferzoo.mixture.BetaMixture().fit(x)
    >>> round(float(bmm.weights[1]), 1)
    0.7
    >>> bmm.clean_probability(x).shape
    (1000,)
    """

    def __init__(self, max_iterations=100, tolerance=1e-6, eps=1e-4):
        if not isinstance(max_iterations, int) or max_iterations < 1:
            raise ValueError(
                "`max_iterations` must be a positive int. Received: "
                f"max_iterations={max_iterations}"
            )
        if not 0 < eps < 0.5:
            raise ValueError(f"`eps` must be in (0, 0.5). Received: eps={eps}")
        self.max_iterations = max_iterations
        self.tolerance = float(tolerance)
        self.eps = float(eps)
        self.alphas = np.array([2.0, 8.0])
        self.betas = np.array([8.0, 2.0])
        self.weights = np.array([0.5, 0.5])
        self.num_iterations = 0

    def _clip(self, x):
        x = np.asarray(x, dtype="float64").reshape(-1)
        return np.clip(x, self.eps, 1.0 - self.eps)

    def log_pdf(self, x):
        """`(2, n)` log density of each component at `x`."""
        x = self._clip(x)
        rows = []
        for a, b in zip(self.alphas, self.betas):
            norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
            rows.append(norm + (a - 1) * np.log(x) + (b - 1) * np.log1p(-x))
        return np.stack(rows)

    def _joint(self, x):
        return (
            self.log_pdf(x) + np.log(np.maximum(self.weights, 1e-12))[:, None]
        )

    def responsibilities(self, x):
        """`(2, n)` posterior of each component (E-step)."""
        joint = self._joint(x)
        return np.exp(joint - special.logsumexp(joint, axis=0))

    def log_likelihood(self, x):
        """Mean log-likelihood of `x` under the mixture."""
        return float(np.mean(special.logsumexp(self._joint(x), axis=0)))

    def fit(self, x):
        """Fit to the values `x` in [0, 1]; returns `self`."""
        x = self._clip(x)
        if x.size < 2:
            raise ValueError(
                f"BetaMixture needs at least 2 values. Received: {x.size}"
            )
        # Start from a split at the median (hard responsibilities).
        high = (x > np.median(x)).astype("float64")
        if high.sum() in (0, x.size):
            high = (x >= np.median(x)).astype("float64")
        resp = np.stack([1.0 - high, high])
        previous = -np.inf
        for step in range(self.max_iterations):
            self._m_step(x, resp)
            current = self.log_likelihood(x)
            resp = self.responsibilities(x)
            self.num_iterations = step + 1
            if abs(current - previous) < self.tolerance:
                break
            previous = current
        order = np.argsort(self.alphas / (self.alphas + self.betas))
        self.alphas = self.alphas[order]
        self.betas = self.betas[order]
        self.weights = self.weights[order]
        return self

    def _m_step(self, x, resp):
        """Weighted maximum likelihood of each beta, by Newton steps."""
        total = resp.sum(axis=1)
        safe = np.maximum(total, 1e-12)
        log_x = (resp @ np.log(x)) / safe
        log_1mx = (resp @ np.log1p(-x)) / safe
        # Start from the weighted method of moments.
        mean = np.clip((resp @ x) / safe, self.eps, 1.0 - self.eps)
        var = (resp * (x[None, :] - mean[:, None]) ** 2).sum(axis=1) / safe
        common = np.maximum(mean * (1.0 - mean) / np.maximum(var, 1e-8), 1.1)
        a = np.clip(mean * (common - 1.0), 1e-2, 1e4)
        b = np.clip((1.0 - mean) * (common - 1.0), 1e-2, 1e4)
        for _ in range(50):
            both = special.digamma(a + b)
            grad_a = both - special.digamma(a) + log_x
            grad_b = both - special.digamma(b) + log_1mx
            tri = special.polygamma(1, a + b)
            h_aa = tri - special.polygamma(1, a)
            h_bb = tri - special.polygamma(1, b)
            det = h_aa * h_bb - tri * tri
            step_a = (h_bb * grad_a - tri * grad_b) / det
            step_b = (h_aa * grad_b - tri * grad_a) / det
            # Newton on a concave objective; halve steps that leave (0, inf).
            scale = np.ones_like(a)
            for _ in range(30):
                bad = (a - scale * step_a <= 0) | (b - scale * step_b <= 0)
                if not bad.any():
                    break
                scale = np.where(bad, scale / 2, scale)
            a = np.clip(a - scale * step_a, 1e-2, 1e4)
            b = np.clip(b - scale * step_b, 1e-2, 1e4)
            if np.all(np.abs(scale * step_a) + np.abs(scale * step_b) < 1e-8):
                break
        self.alphas, self.betas = a, b
        self.weights = np.clip(total / total.sum(), 1e-6, 1.0)
        self.weights = self.weights / self.weights.sum()

    def means(self):
        """Mean of each component, `(2,)`."""
        return self.alphas / (self.alphas + self.betas)

    def clean_probability(self, x):
        """Posterior of the clean (higher-mean) component at `x`.

        Made non-decreasing in `x` in the tails: above the clean mean it
        is the running maximum from the left, below the noisy mean the
        running minimum from the right, so a wide noisy component cannot
        claim values near 1 (nor a wide clean one values near 0).
        """
        x = self._clip(x)
        post = self.responsibilities(x)[1]
        order = np.argsort(x, kind="stable")
        sorted_post = post[order]
        rising = np.maximum.accumulate(sorted_post)
        falling = np.minimum.accumulate(sorted_post[::-1])[::-1]
        noisy_mean, clean_mean = self.means()
        sorted_x = x[order]
        sorted_post = np.where(sorted_x >= clean_mean, rising, sorted_post)
        sorted_post = np.where(sorted_x <= noisy_mean, falling, sorted_post)
        result = np.empty_like(post)
        result[order] = sorted_post
        return result


def threshold_distribution(num_classes, threshold):
    """`(C, C)`: t on the diagonal, `(1 - t) / (C - 1)` elsewhere."""
    off = (1.0 - threshold) / (num_classes - 1)
    dist = np.full((num_classes, num_classes), off)
    np.fill_diagonal(dist, threshold)
    return dist


def mine_class_distributions(distributions, labels, num_classes, threshold):
    """Eq. 7-8: each class's mean label distribution, if stable.

    Row c is the mean of `distributions` over the samples labelled c when
    its own entry (the description degree of c) reaches `threshold`;
    otherwise (or with no sample) it is the threshold distribution.
    """
    onehot = np.eye(num_classes)[np.asarray(labels, "int64")]
    counts = onehot.sum(axis=0)
    means = onehot.T @ np.asarray(distributions, "float64")
    means = means / np.maximum(counts, 1.0)[:, None]
    stable = (counts > 0) & (np.diag(means) >= threshold)
    fallback = threshold_distribution(num_classes, threshold)
    return np.where(stable[:, None], means, fallback)


def epoch_end_state(similarity, labels, distributions, clean, threshold):
    """DualBranch's epoch-end step on its tables (NumPy).

    Fits a `BetaMixture` to the similarities of the samples seen (label
    >= 0, finite similarity) and mines the class distributions.

    Returns:
        `None` if fewer than 2 samples were seen, else float32
        `(clean, scores, class_distributions)`: `clean` is the previous
        clean table with the seen rows replaced by the BMM posterior,
        `scores` the same with NaN for unseen rows.
    """
    num_classes = distributions.shape[-1]
    seen = (labels >= 0) & np.isfinite(similarity)
    if seen.sum() < 2:
        return None
    clean = np.array(clean, dtype="float32")
    bmm = BetaMixture().fit(similarity[seen])
    clean[seen] = bmm.clean_probability(similarity[seen])
    scores = np.where(seen, clean, np.nan).astype("float32")
    class_distributions = mine_class_distributions(
        distributions[seen], labels[seen], num_classes, threshold
    )
    return clean, scores, class_distributions.astype("float32")
