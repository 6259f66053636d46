"""Ranking training images by how likely their label is wrong: cleanlab's
confident learning combined with the method's clean score (the rule is in
`ferzoo.audit`'s docstring), and the detection metrics against known
flips."""

import numpy as np

RULES = ("rank_average", "flagged_first")


def _require_cleanlab():
    try:
        import cleanlab.filter
        import cleanlab.rank
    except ImportError as e:
        raise ImportError(
            "ferzoo-audit needs cleanlab (confident learning): "
            "`pip install cleanlab` (or `pip install ferzoo`, which "
            "depends on it)."
        ) from e
    return cleanlab


def percentile_rank(values):
    """Average ranks of `values` divided by N (in (0, 1]); NaN stays NaN."""
    from scipy.stats import rankdata

    values = np.asarray(values, "float64")
    out = np.full(values.shape, np.nan)
    seen = ~np.isnan(values)
    if seen.any():
        out[seen] = rankdata(values[seen], method="average") / seen.sum()
    return out


def rank_issues(labels, probs, method_scores=None, rule="rank_average"):
    """Rank images by how likely their label is wrong (see module doc).

    Args:
        labels: int array `(N,)`. The given labels.
        probs: float array `(N, C)`. Out-of-sample class probabilities.
        method_scores: float array `(N,)` or None. The method's clean
            score (higher means more likely clean); NaN where missing.
        rule: str. `"rank_average"` or `"flagged_first"`.

    Returns:
        A dict of arrays: `order` (sample indices, most suspect first),
        `rank` (1-based rank of each sample), `issue_score`,
        `label_quality` (cleanlab's self-confidence), `cleanlab_issue`
        (cleanlab's verdict) and `suggested` (the out-of-sample argmax).

    Example:
    >>> import numpy as np
    >>> probs = np.array([[.9, .1], [.8, .2], [.2, .8], [.3, .7],
    ...                   [.1, .9], [.9, .1]])
    >>> labels = np.array([0, 0, 1, 1, 1, 1])
    >>> r = ferzoo.audit.rank_issues(labels, probs)
    >>> int(r["order"][0]), bool(r["cleanlab_issue"][5])
    (5, True)
    """
    if rule not in RULES:
        raise ValueError(
            f"`rule` must be one of {list(RULES)}. Received: rule={rule!r}"
        )
    cleanlab = _require_cleanlab()
    labels = np.asarray(labels).astype(int)
    probs = np.asarray(probs, "float64")
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(
            "`probs` must have shape (N, C) with N = len(labels). Received: "
            f"probs.shape={probs.shape}, len(labels)={labels.shape[0]}"
        )
    probs = probs / probs.sum(axis=1, keepdims=True)
    quality = cleanlab.rank.get_label_quality_scores(
        labels, probs, method="self_confidence"
    )
    flagged = cleanlab.filter.find_label_issues(
        labels, probs, filter_by="prune_by_noise_rate", n_jobs=1
    )
    combined = percentile_rank(quality)
    if method_scores is not None:
        method_rank = percentile_rank(method_scores)
        method_rank = np.where(np.isnan(method_rank), combined, method_rank)
        combined = (combined + method_rank) / 2.0
    if rule == "flagged_first":
        # lexsort: the last key is the primary one.
        order = np.lexsort((np.arange(len(labels)), combined, ~flagged))
    else:
        order = np.lexsort((np.arange(len(labels)), combined))
    rank = np.empty(len(labels), "int64")
    rank[order] = np.arange(1, len(labels) + 1)
    return {
        "order": order,
        "rank": rank,
        "issue_score": 1.0 - combined,
        "label_quality": np.asarray(quality, "float64"),
        "cleanlab_issue": np.asarray(flagged, bool),
        "suggested": probs.argmax(axis=1),
    }


def detection_metrics(ranked_first, flipped, k=None):
    """Precision, recall and F1 of the first `k` of a ranking.

    Args:
        ranked_first: int array. Sample indices, most suspect first (a
            flagged set may be shorter than `k`).
        flipped: bool array `(N,)`. The truly wrong labels.
        k: int or None. Defaults to the number of flipped labels.
    """
    flipped = np.asarray(flipped, bool)
    k = int(flipped.sum()) if k is None else int(k)
    top = np.asarray(ranked_first, int)[:k]
    hits = int(flipped[top].sum())
    precision = hits / len(top) if len(top) else 0.0
    recall = hits / max(int(flipped.sum()), 1)
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision + recall
        else 0.0
    )
    return {
        "k": k,
        "flagged": int(len(top)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def roc_auc(suspicion, flipped):
    """ROC-AUC of a suspicion score (higher = more likely flipped)."""
    from sklearn.metrics import roc_auc_score

    flipped = np.asarray(flipped, bool)
    suspicion = np.asarray(suspicion, "float64")
    seen = ~np.isnan(suspicion)
    if flipped[seen].all() or not flipped[seen].any():
        return None
    return float(roc_auc_score(flipped[seen], suspicion[seen]))
