"""Class-imbalance handling for the cross-entropy of a classifier.

FER data sets are imbalanced (FER2013: 436 disgust faces against 7,215
happy ones), and plain cross-entropy learns the imbalance: a rare class
is predicted rarely. Two remedies act on the training loss only; the
model's logits and probabilities at inference are left as they are.

- `"logit_adjusted"` (Menon et al., "Long-tail learning via logit
  adjustment", ICLR 2021, Eq. 10): the loss is the cross-entropy of
  `logits + tau * log(prior)`, where `prior` is the training labels'
  class frequency. A rare class must win by a margin of `-tau *
  log(prior_c)` during training, so the plain logits favour it at test
  time. `strength` is `tau` (default `1.0`).
- `"reweighted"` (Cui et al., "Class-balanced loss based on effective
  number of samples", CVPR 2019, Eq. 4): each sample's cross-entropy is
  weighted by `w_c = (1 - beta) / (1 - beta ** n_c)` for its class's
  count `n_c`, the weights scaled to sum to the number of classes.
  `strength` is `beta` (default `0.9999`).

Example:
>>> from ferzoo.models.class_balance import ClassBalance
>>> balance = ClassBalance("logit_adjusted", [100, 300], strength=1.0)
>>> [round(float(v), 4) for v in balance.offsets]
[-1.3863, -0.2877]
"""

import math

from keras import ops

KINDS = ("logit_adjusted", "reweighted")
DEFAULT_STRENGTH = {"logit_adjusted": 1.0, "reweighted": 0.9999}


class ClassBalance:
    """What `kind` does to the loss, for the classes' training `counts`."""

    def __init__(self, kind, counts, strength=None):
        if kind not in KINDS:
            raise ValueError(
                f"`class_balance` must be one of {KINDS} or None. "
                f"Received: class_balance={kind!r}"
            )
        counts = [int(c) for c in counts or ()]
        if not counts or min(counts) < 1:
            raise ValueError(
                "`class_balance` needs `class_counts`: the number of "
                "training samples of each class, every one >= 1 (ferzoo-"
                "train fills it from the training labels). Received: "
                f"class_counts={counts or None}"
            )
        strength = DEFAULT_STRENGTH[kind] if strength is None else strength
        strength = float(strength)
        if kind == "reweighted" and not 0 <= strength < 1:
            raise ValueError(
                "`class_balance_strength` is beta of the effective number, "
                f"in [0, 1). Received: class_balance_strength={strength}"
            )
        if kind == "logit_adjusted" and strength < 0:
            raise ValueError(
                "`class_balance_strength` is tau of the logit adjustment, "
                f">= 0. Received: class_balance_strength={strength}"
            )
        self.kind = kind
        self.counts = counts
        self.strength = strength
        total = float(sum(counts))
        # Python floats: constants of the traced loss on every backend.
        self.offsets = [strength * math.log(c / total) for c in counts]
        raw = [1.0 for _ in counts]
        if kind == "reweighted" and strength > 0:
            raw = [(1.0 - strength) / (1.0 - strength**c) for c in counts]
        self.weights = [w * len(counts) / sum(raw) for w in raw]

    def loss_logits(self, logits):
        """The logits the cross-entropy sees (adjusted, or as they are)."""
        if self.kind != "logit_adjusted":
            return logits
        return logits + ops.convert_to_tensor(self.offsets, logits.dtype)

    def sample_weights(self, labels):
        """Each sample's class weight `(N,)`, or None (no reweighting)."""
        if self.kind != "reweighted":
            return None
        weights = ops.convert_to_tensor(self.weights, "float32")
        return ops.take(weights, ops.cast(labels, "int32"))
