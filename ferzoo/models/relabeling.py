"""Per-sample relabeling and SCN's importance head, shared by methods.

- `LabelCorrection` (SCN, AFCN, DWMCA): the `label_table` of corrected
  labels, the labels a training batch trains on, and the relabel step
  that writes the table once the warm-up is over.
- `SelfCure` (SCN, AFCN): SCN's FC + sigmoid importance head beside the
  classifier, its arguments (beta, delta1, delta2, gamma) and Eq. 5's
  relabel of uncertain samples on `softmax(alpha * logits)`.

Both are mixins of a `NoisyLabelClassifier` subclass, listed before it:
`class SCN(SelfCure, NoisyLabelClassifier)`.
"""

import keras
from keras import ops

from ferzoo import losses
from ferzoo.layers.arguments import check_non_negative
from ferzoo.layers.arguments import check_unit_interval
from ferzoo.layers.sample_table import SampleTable

# SCN's arguments, in their `get_config` order.
SELF_CURE_ARGS = ("high_fraction", "rank_margin", "relabel_margin")


class LabelCorrection:
    """A `label_table` of corrected labels (-1 where the label is kept)."""

    warmup_tables = ("label_table",)

    def build_tables(self, num_samples):
        super().build_tables(num_samples)
        # === State ===
        self.label_table = SampleTable(
            self.num_samples,
            fill_value=-1,
            table_dtype="int32",
            name="label_table",
        )

    def current_labels(self, sample_ids, y, training=True):
        """Labels to train on: `label_table` where set, else `y`.

        Only training batches read the table: evaluation batches (whose
        `sample_ids` index another split) keep their own labels.
        """
        labels = ops.cast(y, "int32")
        if (
            not training
            or sample_ids is None
            or getattr(self, "label_table", None) is None
        ):
            return labels
        stored = self.label_table.gather(sample_ids)
        return ops.where(stored >= 0, stored, labels)

    def write_labels(self, sample_ids, new_labels, changed):
        """Store `new_labels` where `changed` (a boolean tensor)."""
        stored = self.label_table.gather(sample_ids)
        self.label_table.update(
            sample_ids, ops.where(changed, new_labels, stored)
        )

    def relabel_step(self, sample_ids, new_labels, changed, training):
        """Write `new_labels` where `changed`, once the warm-up is over.

        Training batches only (evaluation batches index another split).
        `changed=None` writes every row of the batch: `-1` resets a row
        to its given label.
        """
        if not training or sample_ids is None:
            return
        acts = self.after_warmup()
        if changed is not None:
            acts = ops.logical_and(changed, acts)
        self.write_labels(sample_ids, new_labels, acts)


class SelfCure(LabelCorrection):
    """SCN's importance weighting and relabel (Eq. 1 and Eq. 5).

    The subclass calls `set_self_cure_args` before
    `NoisyLabelClassifier.__init__` and `create_importance_head` in its
    `create_layers`, and lists `SELF_CURE_ARGS` first in its
    `config_args`.
    """

    def set_self_cure_args(self, high_fraction, rank_margin, relabel_margin):
        """Check and keep the group fraction beta and margins delta1, 2."""
        check_unit_interval(high_fraction=high_fraction)
        check_non_negative(
            rank_margin=rank_margin, relabel_margin=relabel_margin
        )
        self.high_fraction = float(high_fraction)
        self.rank_margin = float(rank_margin)
        self.relabel_margin = float(relabel_margin)

    def create_importance_head(self, backbone):
        """Eq. 1: the FC + sigmoid importance (certainty) head.

        The FC computes in the backbone's policy; the sigmoid runs in
        float32 (`importance_outputs`): under `mixed_bfloat16` a sigmoid
        in bfloat16 rounds alpha near 1 to steps of 1/256, which ties
        the per-sample scores the tables keep.
        """
        self.importance = keras.layers.Dense(
            1, dtype=backbone.dtype_policy, name="importance"
        )

    def importance_outputs(self, pooled, training=False):
        """`{"logits", "importance"}` of pooled features (one dropout)."""
        pooled = self.dropout_layer(pooled, training=training)
        alpha = ops.sigmoid(ops.cast(self.importance(pooled), "float32"))
        alpha = alpha[:, 0]
        logits = ops.cast(self.classifier(pooled), "float32")
        return {"logits": logits, "importance": alpha}

    def relabel_uncertain(
        self, ids, labels, weighted_logits, candidates, training
    ):
        """Eq. 5 on `softmax(alpha * logits)`, with `self.relabel_margin`.

        A candidate whose top probability beats its current label's by
        the margin takes the argmax (`candidates=None`: every sample).
        """
        if not training or ids is None:
            return
        new_labels, changed = losses.relabel(
            ops.softmax(ops.stop_gradient(weighted_logits)),
            labels,
            self.relabel_margin,
            candidates,
        )
        self.relabel_step(ids, new_labels, changed, training)
