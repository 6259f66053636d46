"""A validation set carved out of a training split (numpy only)."""

import numpy as np

from ferzoo.errors import DataError


def carve_val_split(labels, fraction, seed=0):
    """Split sample indices into a training and a validation part.

    Class-stratified and seeded: of each class c with n_c samples,
    `round(fraction * n_c)` (at most n_c - 1, so every class keeps a
    training sample) go to validation, chosen with
    `np.random.default_rng(seed)`. Pass the labels one actually has (the
    noisy ones): the split must not peek at clean labels.

    Args:
        labels: 1-D int array. The labels to stratify by.
        fraction: float. Fraction of each class to hold out, in `(0, 1)`.
        seed: int. Seed of the choice. Defaults to `0`.

    Returns:
        `(train_indices, val_indices)`: sorted int64 arrays that partition
        `range(len(labels))`.

    Example:
    >>> import numpy as np
    >>> from ferzoo.data import carve_val_split
    >>> train, val = carve_val_split(np.repeat([0, 1], 10), 0.2, seed=0)
    >>> len(train), len(val)
    (16, 4)
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(
            f"`labels` must be 1-D. Received: labels.shape={labels.shape}"
        )
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(
            f"`fraction` must be in (0, 1). Received: fraction={fraction}"
        )
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = min(int(round(float(fraction) * idx.size)), idx.size - 1)
        if k > 0:
            val.append(rng.choice(idx, size=k, replace=False))
    val = np.sort(np.concatenate(val)) if val else np.zeros(0, "int64")
    if not val.size:
        raise DataError(
            f"a val fraction of {fraction} leaves no validation sample out "
            f"of {labels.size} training samples; use a larger fraction, or "
            "0 to select on nothing (the last epoch)"
        )
    train = np.setdiff1d(np.arange(labels.size), val)
    return train.astype("int64"), val.astype("int64")
