import keras
from keras import ops

from ferzoo import losses
from ferzoo.layers.arguments import check_positive_int
from ferzoo.layers.cam import FlipClassActivationMaps
from ferzoo.layers.channel_attention import ChannelAttention
from ferzoo.losses import weighted_mean
from ferzoo.models.flip_attention import flip_attention_forward
from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier


@keras.saving.register_keras_serializable(package="ferzoo")
class DacFER(NoisyLabelClassifier):
    """DacFER: dual attention correction (channel + flip-CAM consistency).

    Local attention correction (LAC) rescales the channels of the last
    feature map with squeeze-and-excitation channel attention before the
    GAP + linear head. Global attention correction (GAC) runs `x` and
    `flip(x)` through the network (two forward passes, as EAC's code),
    takes the class activation maps of both (all classes; no gradient
    into the classifier kernel), mirrors the second set back and
    penalises their squared difference. The cross-entropy uses
    the logits of `x` only; the flip branch runs only when training (or
    when a batch carries `sample_ids`), never when serving. The clean
    score is minus the per-sample consistency error (higher = the two
    attention maps agree better).

    Args:
        backbone: `ferzoo.backbones.Backbone`. The feature extractor
            (SE-ResNet-50 in the paper).
        num_classes: int. Number of classes. Defaults to `7`.
        num_samples: int or None. Training samples (table rows). Defaults
            to `None` (inferred in `fit`).
        warmup_epochs: int. Unused by the loss (DacFER has no warm-up);
            kept for the common interface. Defaults to `0`.
        dropout: float. Dropout before the classifier. Defaults to `0.0`.
        consistency_weight: float. Weight lambda of the attention
            consistency loss. Defaults to `1.0` (the paper).
        use_channel_attention: bool. Apply LAC channel attention to the
            last feature map. Defaults to `True`.
        attention_reduction: int. Bottleneck ratio of the channel
            attention. Defaults to `16`.

    Paper mapping:
        U = F_tr(X), z_c = F_sq(u_c) and the excitation -> `ChannelAttention`
        (LAC, `use_channel_attention`, `attention_reduction`).
        M_ij = sum_k w_kj A_k (CAM) -> `FlipClassActivationMaps`.
        L_s (softmax cross-entropy) -> `loss_ce`.
        L_c = 1/(MKHW) sum ||M_ij - Flip(M'_ij)||^2 -> `loss_consistency`.
        L_total = L_s + lambda L_c -> `consistency_weight` (lambda).

    Example:
    >>> import numpy as np
    >>> model = ferzoo.models.DacFER.from_preset("dacfer_small_cnn_synthetic")
    >>> images = np.random.uniform(0, 255, (2, 48, 48, 3))
    >>> sorted(model(images))  # serving bare images: no flip branch
    ['logits']
    >>> paired = model({"images": images, "sample_ids": np.arange(2)})
    >>> tuple(model.consistency_errors(paired).shape)  # minus the clean score
    (2,)

    Reference:
        "DacFER: Dual Attention Correction for Facial Expression
        Recognition" (seed dacfer_000); flip-CAM consistency after Zhang
        et al., "Learn From All: Erasing Attention Consistency for Noisy
        Label Facial Expression Recognition", ECCV 2022.
    """

    loss_terms = ("ce", "consistency")
    config_args = (
        "consistency_weight",
        "use_channel_attention",
        "attention_reduction",
    )
    warmup_tables = ()
    score_name = "minus the flip attention-consistency error"
    score_uses_label = False

    def __init__(
        self,
        backbone,
        consistency_weight=1.0,
        use_channel_attention=True,
        attention_reduction=16,
        **kwargs,
    ):
        if consistency_weight < 0:
            raise ValueError(
                "`consistency_weight` must be >= 0. Received: "
                f"consistency_weight={consistency_weight}"
            )
        check_positive_int(attention_reduction=attention_reduction)
        # === Config ===
        self.consistency_weight = float(consistency_weight)
        self.use_channel_attention = bool(use_channel_attention)
        self.attention_reduction = int(attention_reduction)
        super().__init__(backbone, **kwargs)

    def create_layers(self, backbone):
        # === Layers ===
        self.channel_attention = None
        if self.use_channel_attention:
            self.channel_attention = ChannelAttention(
                self.attention_reduction,
                dtype=backbone.dtype_policy,
                name="channel_attention",
            )
        self.cam = FlipClassActivationMaps(name="cam")

    def call(self, inputs, training=False):
        def head(pooled):
            return {"logits": self.classify(pooled, training=training)}

        return flip_attention_forward(
            self, inputs, training, head, attend=self.channel_attention
        )

    def feature_map(self, images):
        """The backbone's map after LAC's channel attention."""
        features = super().feature_map(images)
        if self.channel_attention is not None:
            features = self.channel_attention(features)
        return features

    def consistency_errors(self, y_pred):
        """Per-sample mean of (M - Flip(M'))^2 over classes, h and w."""
        diff = y_pred["cam"] - y_pred["cam_flipped"]
        return ops.mean(ops.square(diff), axis=(1, 2, 3))

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        ids = self.sample_ids(x, training)
        labels = ops.cast(y, "int32")
        # L_s: softmax cross-entropy on the logits of x.
        ce = weighted_mean(
            losses.sparse_cross_entropy(labels, y_pred["logits"]),
            sample_weight,
        )
        # L_c: flip attention consistency, 1/(MKHW) sum ||M - Flip(M')||^2.
        if "cam" in y_pred:
            errors = self.consistency_errors(y_pred)
            consistency = weighted_mean(errors, sample_weight)
            self.record_scores(ids, -errors, training)
        else:  # bare images outside training: no flip branch
            consistency = ops.zeros((), "float32")
        # L_total = L_s + lambda L_c.
        total = ce + self.consistency_weight * consistency
        self.track(ce=ce, consistency=consistency)
        return self.with_regularization(total)
