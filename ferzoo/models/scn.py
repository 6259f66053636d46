import keras

from ferzoo import losses
from ferzoo.layers.arguments import check_unit_interval
from ferzoo.losses import weighted_mean
from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier
from ferzoo.models.relabeling import SELF_CURE_ARGS
from ferzoo.models.relabeling import SelfCure


@keras.saving.register_keras_serializable(package="ferzoo")
class SCN(SelfCure, NoisyLabelClassifier):
    """Self-Cure Network: importance weighting, rank regularization, relabel.

    An FC + sigmoid head gives each sample an importance weight alpha
    that scales its logits (logit-weighted cross-entropy). Rank
    regularization keeps the mean weight of the top `high_fraction` of a
    batch `rank_margin` above the rest. From epoch `warmup_epochs` on
    (counted from 1, as SCN's official loop), a sample of
    the low-importance group whose max probability beats the probability
    of its label by `relabel_margin` is relabelled to the argmax; the new
    label is kept in `label_table` (indexed by `sample_ids`), saved with the
    weights, and used by every later epoch. The clean score is alpha.

    Args:
        backbone: `ferzoo.backbones.Backbone`. The feature extractor.
        num_classes: int. Number of classes. Defaults to `7`.
        num_samples: int or None. Training samples (table rows). Defaults
            to `None` (inferred in `fit`).
        warmup_epochs: int. The epoch (counted from 1) from which samples
            are relabelled, as the official loop's `relabel_epoch`.
            Defaults to `10` (the paper: 9 epochs of warm-up).
        dropout: float. Dropout before both heads. Defaults to `0.0`.
        high_fraction: float. Fraction of a batch in the high-importance
            group. Defaults to `0.7`.
        rank_margin: float. Margin between the groups' mean weights.
            Defaults to `0.15` (the official code's variant: `0.07`).
        relabel_margin: float. Probability margin to relabel. Defaults to
            `0.2`.
        rank_weight: float. Trade-off gamma in
            `gamma * RR + (1 - gamma) * WCE`. Defaults to `0.5` (1:1).
        relabel_low_group_only: bool. Relabel only the low-importance
            group (paper) rather than the whole batch (some official code
            versions). Defaults to `True`.

    Paper mapping:
        Eq. 1 alpha = sigmoid(W_a^T x) -> `importance` head.
        Eq. 2 WCE on alpha * logits; Eq. 3-4 RR-Loss -> `high_fraction`
        (beta), `rank_margin` (delta1); Eq. 5 -> `relabel_margin` (delta2);
        L = gamma RR + (1 - gamma) WCE -> `rank_weight` (gamma).

    Example:
    >>> import numpy as np
    >>> model = ferzoo.models.SCN.from_preset(
    ...     "scn_small_cnn_synthetic", num_samples=8)
    >>> out = model(np.random.uniform(0, 255, (8, 48, 48, 3)))
    >>> tuple(out["importance"].shape)  # alpha, scaling each sample's logits
    (8,)
    >>> model.relabels()  # the label table: -1 until a label is corrected
    array([-1, -1, -1, -1, -1, -1, -1, -1], dtype=int32)

    Reference:
        Wang et al., "Suppressing Uncertainties for Large-Scale Facial
        Expression Recognition", CVPR 2020.
    """

    loss_terms = ("wce", "rank")
    config_args = SELF_CURE_ARGS + ("rank_weight", "relabel_low_group_only")
    score_name = "importance weight alpha"
    score_uses_label = False

    def __init__(
        self,
        backbone,
        warmup_epochs=10,
        high_fraction=0.7,
        rank_margin=0.15,
        relabel_margin=0.2,
        rank_weight=0.5,
        relabel_low_group_only=True,
        **kwargs,
    ):
        # === Config ===
        self.set_self_cure_args(high_fraction, rank_margin, relabel_margin)
        check_unit_interval(rank_weight=rank_weight)
        self.rank_weight = float(rank_weight)
        self.relabel_low_group_only = bool(relabel_low_group_only)
        super().__init__(backbone, warmup_epochs=warmup_epochs, **kwargs)

    def create_layers(self, backbone):
        # === Layers ===
        self.create_importance_head(backbone)

    def call(self, inputs, training=False):
        images, _ = self.unpack_inputs(inputs)
        _, pooled = self.extract(images, training=training)
        return self.importance_outputs(pooled, training=training)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        ids = self.sample_ids(x, training)
        labels = self.current_labels(ids, y, training)
        alpha = y_pred["importance"]
        weighted_logits = alpha[:, None] * y_pred["logits"]
        # Eq. 2: logit-weighted cross-entropy.
        wce = weighted_mean(
            losses.sparse_cross_entropy(labels, weighted_logits),
            sample_weight,
        )
        # Eq. 3-4: rank regularization.
        rank, low_group = losses.rank_regularization(
            alpha, self.high_fraction, self.rank_margin
        )
        total = self.rank_weight * rank + (1.0 - self.rank_weight) * wce
        self.track(wce=wce, rank=rank)
        # Eq. 5: relabel uncertain samples after the warm-up.
        candidates = low_group if self.relabel_low_group_only else None
        self.relabel_uncertain(
            ids, labels, weighted_logits, candidates, training
        )
        self.record_scores(ids, alpha, training)
        return self.with_regularization(total)
