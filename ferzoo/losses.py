"""Pure loss terms shared by several methods (keras.ops only)."""

from keras import ops


def sparse_cross_entropy(labels, logits):
    """Per-sample cross-entropy of integer `labels` under `logits`."""
    labels = ops.cast(labels, "int32")
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    picked = ops.take_along_axis(log_probs, ops.reshape(labels, (-1, 1)), 1)
    return -picked[:, 0]


def rank_regularization(weights, high_fraction=0.7, margin=0.15):
    """SCN's rank regularization (RR-Loss) and the low-importance mask.

    Sorts the batch's importance weights in descending order, splits them
    into the top `M = int(high_fraction * N)` (high group) and the rest,
    and returns `max(0, margin - (mean_high - mean_low))` together with a
    boolean mask of the samples in the low group.

    Args:
        weights: tensor `(N,)`. Importance weights in (0, 1).
        high_fraction: float. Fraction beta in the high group.
        margin: float. Margin delta1 between the group means.

    Returns:
        `(loss, low_mask)`: a scalar and a boolean `(N,)` tensor.
    """
    weights = ops.cast(ops.reshape(weights, (-1,)), "float32")
    n = ops.shape(weights)[0]
    n_float = ops.cast(n, "float32")
    num_high = ops.floor(high_fraction * n_float)
    descending = -ops.sort(-weights)
    position = ops.cast(ops.arange(n), "float32")
    high = ops.cast(position < num_high, "float32")
    mean_high = ops.sum(descending * high) / ops.maximum(num_high, 1.0)
    mean_low = ops.sum(descending * (1.0 - high)) / ops.maximum(
        n_float - num_high, 1.0
    )
    loss = ops.maximum(0.0, margin - (mean_high - mean_low))
    # The low group: every sample ranked at or after position M.
    kth = ops.take(descending, ops.cast(ops.maximum(num_high - 1, 0), "int32"))
    low_mask = ops.logical_or(weights < kth, num_high < 1.0)
    return loss, low_mask


def relabel(probs, labels, margin=0.2, candidates=None):
    """SCN's relabel rule (Eq. 5): argmax where `p_max - p_given > margin`.

    Args:
        probs: tensor `(N, C)`. Predicted probabilities.
        labels: tensor `(N,)`. Current labels.
        margin: float. The threshold delta2.
        candidates: boolean tensor `(N,)` or None. Samples allowed to be
            relabelled (SCN: the low-importance group).

    Returns:
        `(new_labels, changed)`: int32 `(N,)` and a boolean `(N,)` mask.
    """
    labels = ops.cast(labels, "int32")
    p_max = ops.max(probs, axis=-1)
    l_max = ops.cast(ops.argmax(probs, axis=-1), "int32")
    p_given = ops.take_along_axis(probs, ops.reshape(labels, (-1, 1)), 1)[:, 0]
    changed = ops.logical_and(p_max - p_given > margin, l_max != labels)
    if candidates is not None:
        changed = ops.logical_and(changed, candidates)
    return ops.where(changed, l_max, labels), changed


def weighted_mean(values, sample_weight=None):
    """Mean of per-sample `values`, weighted by `sample_weight` if given."""
    values = ops.cast(values, "float32")
    if sample_weight is None:
        return ops.mean(values)
    weight = ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
    return ops.sum(values * weight) / ops.maximum(ops.sum(weight), 1e-12)


def given_probability(probs, labels):
    """`probs[i, labels[i]]` for each row."""
    labels = ops.cast(ops.reshape(labels, (-1, 1)), "int32")
    return ops.take_along_axis(probs, labels, axis=1)[:, 0]
