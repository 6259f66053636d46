import math

import keras
from keras import ops

from ferzoo import losses
from ferzoo.layers.arguments import check_non_negative
from ferzoo.layers.arguments import check_unit_interval
from ferzoo.layers.cam import FlipClassActivationMaps
from ferzoo.losses import weighted_mean
from ferzoo.models.flip_attention import flip_attention_forward
from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier
from ferzoo.models.relabeling import SELF_CURE_ARGS
from ferzoo.models.relabeling import SelfCure


@keras.saving.register_keras_serializable(package="ferzoo")
class AFCN(SelfCure, NoisyLabelClassifier):
    """AFCN: certainty-weighted CE, label correction, fusion consistency.

    A FC + sigmoid head gives each sample a certainty alpha (optionally
    blended with the normalised prediction entropy) that scales its logits
    in the cross-entropy and is spread by SCN's rank regularization. From
    epoch `warmup_epochs` on (counted from 1), low-certainty samples whose
    top probability beats the given label's by `relabel_margin` are
    relabelled; the label persists in `label_table`. Class activation
    maps of `x` and of `flip(x)` (two forward passes as in EAC's code,
    flipped back) are fused by averaging, and each map is pulled toward
    the fused map. The clean score is alpha.

    Args:
        backbone: `ferzoo.backbones.Backbone`. The feature extractor.
        num_classes: int. Number of classes. Defaults to `7`.
        num_samples: int or None. Training samples (table rows). Defaults
            to `None` (inferred in `fit`).
        warmup_epochs: int. The epoch (counted from 1) from which labels
            are corrected, as SCN's `relabel_epoch`. Defaults to `10`.
        dropout: float. Dropout before both heads. Defaults to `0.0`.
        high_fraction: float. Fraction of a batch in the high-certainty
            group. Defaults to `0.7`.
        rank_margin: float. Margin between the groups' mean certainty.
            Defaults to `0.15`.
        relabel_margin: float. Probability margin to relabel. Defaults to
            `0.2`.
        rank_weight: float. Weight lambda1 of the rank loss. Defaults to
            `0.5`.
        consistency_weight: float. Weight lambda2 of the fusion
            consistency loss. Defaults to `3.0`.
        entropy_weight: float. Share of `1 - H(p) / log C` in the
            certainty: `(1 - w) alpha_head + w (1 - H / log C)`. Defaults
            to `0.0` (the head alone).

    Paper mapping:
        2.1 / 3.4 Grad-CAM attention -> `FlipClassActivationMaps`.
        2.2 / 3.2 weighted CE on alpha * logits, certainty alpha ->
        `importance` head, `entropy_weight`; rank loss -> `high_fraction`,
        `rank_margin`. 3.3 label correction -> `relabel_margin`,
        `warmup_epochs`, `label_table`. 3.5 fusion consistency ->
        `loss_consistency`. 3.6 L = L_wce + lambda1 L_rank + lambda2 L_cons
        -> `rank_weight`, `consistency_weight`.

    Reconstruction:
        The paper's body text is unavailable (only its headings); this is
        the reconstruction in `specs/afcn.md`: SCN-style certainty and
        relabeling, CAMs of x and flip(x), fused map F = (M + Flip(M'))/2,
        L_cons = mean over both maps, classes, h, w of (map - F)^2.
        Relabeling uses softmax(alpha * logits), as SCN's Eq. 5 does; the
        entropy term uses softmax(logits).

    Example:
    >>> import numpy as np
    >>> model = ferzoo.models.AFCN.from_preset(
    ...     "afcn_small_cnn_synthetic", num_samples=8, entropy_weight=0.5)
    >>> out = model({"images": np.random.uniform(0, 255, (4, 48, 48, 3)),
    ...              "sample_ids": np.arange(4)})
    >>> sorted(out)  # the CAMs of x and of flip(x), mirrored back
    ['cam', 'cam_flipped', 'importance', 'logits']
    >>> tuple(model.certainty(out).shape)  # alpha blended with 1 - H(p) / log C
    (4,)

    Reference:
        Wei, Pei and Mao, "AFCN: An Attention-Based Fusion Consistency
        Network for Facial Emotion Recognition", Electronics 14(17), 2025.
    """

    loss_terms = ("wce", "rank", "consistency")
    config_args = SELF_CURE_ARGS + (
        "rank_weight",
        "consistency_weight",
        "entropy_weight",
    )
    score_name = "sample certainty alpha"
    score_uses_label = False
    # A zero classifier: the certainty-weighted CE starts at log C whatever
    # alpha is. With Keras' Glorot kernel on a pretrained backbone's large
    # features the first logits are confident and wrong (CE > log C), and
    # the quickest way down is alpha -> 0, where the sigmoid saturates and
    # alpha * logits carries no gradient: the model never learns (docs).
    classifier_initializer = "zeros"

    def __init__(
        self,
        backbone,
        warmup_epochs=10,
        high_fraction=0.7,
        rank_margin=0.15,
        relabel_margin=0.2,
        rank_weight=0.5,
        consistency_weight=3.0,
        entropy_weight=0.0,
        **kwargs,
    ):
        # === Config ===
        self.set_self_cure_args(high_fraction, rank_margin, relabel_margin)
        check_unit_interval(entropy_weight=entropy_weight)
        check_non_negative(
            rank_weight=rank_weight, consistency_weight=consistency_weight
        )
        self.rank_weight = float(rank_weight)
        self.consistency_weight = float(consistency_weight)
        self.entropy_weight = float(entropy_weight)
        super().__init__(backbone, warmup_epochs=warmup_epochs, **kwargs)

    def create_layers(self, backbone):
        # === Layers ===
        self.create_importance_head(backbone)
        self.cam = FlipClassActivationMaps(name="cam")

    def call(self, inputs, training=False):
        def head(pooled):
            return self.importance_outputs(pooled, training=training)

        return flip_attention_forward(self, inputs, training, head)

    def certainty(self, y_pred):
        """alpha = (1 - w) alpha_head + w (1 - H(p) / log C)."""
        alpha = y_pred["importance"]
        if self.entropy_weight == 0:
            return alpha
        probs = ops.softmax(ops.stop_gradient(y_pred["logits"]))
        entropy = -ops.sum(probs * ops.log(ops.maximum(probs, 1e-12)), -1)
        confidence = 1.0 - entropy / math.log(self.num_classes)
        w = self.entropy_weight
        return (1.0 - w) * alpha + w * confidence

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        ids = self.sample_ids(x, training)
        labels = self.current_labels(ids, y, training)
        logits = y_pred["logits"]
        # 3.2 sample certainty, 2.2 weighted CE on alpha * logits.
        alpha = self.certainty(y_pred)
        wce = weighted_mean(
            losses.sparse_cross_entropy(labels, alpha[:, None] * logits),
            sample_weight,
        )
        rank, low_group = losses.rank_regularization(
            alpha, self.high_fraction, self.rank_margin
        )
        # 3.3 label correction of low-certainty samples after the warm-up.
        # On the certainty-weighted logits, as SCN: a low certainty
        # flattens p, so only a confident prediction relabels.
        self.relabel_uncertain(
            ids, labels, alpha[:, None] * logits, low_group, training
        )
        # 3.4-3.5 attention generation and fusion consistency.
        if "cam" in y_pred:
            maps, flipped = y_pred["cam"], y_pred["cam_flipped"]
            fused = 0.5 * (maps + flipped)
            per_sample = 0.5 * (
                ops.mean(ops.square(maps - fused), axis=(1, 2, 3))
                + ops.mean(ops.square(flipped - fused), axis=(1, 2, 3))
            )
            consistency = weighted_mean(per_sample, sample_weight)
        else:  # bare images outside training: no flip branch
            consistency = ops.zeros((), "float32")
        # 3.6 joint optimization.
        total = (
            wce
            + self.rank_weight * rank
            + self.consistency_weight * consistency
        )
        self.track(wce=wce, rank=rank, consistency=consistency)
        self.record_scores(ids, alpha, training)
        return self.with_regularization(total)
