import keras
from keras import ops

from ferzoo.backbones.backbone import Backbone
from ferzoo.layers.apcl import APCL
from ferzoo.layers.apcl import anchor_center_loss
from ferzoo.layers.apcl import anchor_separation_loss
from ferzoo.layers.arguments import check_positive_int
from ferzoo.layers.cross_attention import DynamicWeightedCrossAttention
from ferzoo.layers.cross_attention import MultiScaleTokens
from ferzoo.losses import given_probability
from ferzoo.losses import weighted_mean
from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier
from ferzoo.models.relabeling import LabelCorrection
from ferzoo.trunk import compute_in_variable_dtype

# Constructor arguments kept as same-named attributes (`config_args`).
_ARGS = (
    "token_dim num_heads channel_reduction num_scales fusion_dim "
    "embedding_dim anchors_per_class similarity_temperature anchor_margin "
    "cls_weight anchor_weight center_weight freeze_landmark_backbone"
).split()


@keras.saving.register_keras_serializable(package="ferzoo")
class DWMCA(LabelCorrection, NoisyLabelClassifier):
    """Two-stream dynamic-weighted cross-attention with APCL correction.

    Image-stream maps (the last `num_scales` stages when `backbone` has
    `stage_output_names`) and landmark-stream maps become tokens,
    reweighted per channel and fused by gated cross-attention within each
    sample; their pooled tokens give a `fusion_dim` vector and an
    `embedding_dim` embedding. APCL fuses the primary MLP, anchor and
    attention distributions by entropy confidence; `"logits"` is the log
    of the result, the clean score its probability of the given label.
    After the warm-up `label_table` keeps its argmax where it differs
    from the label (a report; the loss uses the given labels).

    Args:
        backbone: `ferzoo.backbones.Backbone`. Image stream (IR-50).
        landmark_backbone: `ferzoo.backbones.Backbone`. Landmark stream
            (MobileFaceNet); images are resized to its input size.
        num_classes: int. Number of classes. Defaults to `7`.
        num_samples: int or None. Table rows. Defaults to `None`.
        warmup_epochs: int. The epoch (counted from 1) from which
            `label_table` is written. Defaults to `0`.
        dropout: float. Dropout before the primary classifier. Defaults
            to `0.0`.
        token_dim: int. Width D of the tokens of both streams. Defaults
            to `256`.
        num_heads: int. Heads of the cross- and self-attention. Defaults
            to `8`.
        channel_reduction: int. D / H of the channel-weighting MLP.
            Defaults to `4`.
        num_scales: int. Image-backbone stages used as tokens (1 = the
            last map only). Defaults to `3`.
        fusion_dim: int. Width of the fused vector. Defaults to `768`.
        embedding_dim: int. Width of the APCL embedding. Defaults to
            `128`.
        anchors_per_class: int. Trainable anchors K per class. Defaults to
            `10`.
        similarity_temperature: float. delta of the anchor softmax.
            Defaults to `1.0`.
        anchor_margin: float. Distance beyond which two anchors of
            different classes no longer repel. Defaults to `20.0`.
        cls_weight: float. lambda_cls. Defaults to `1.0`.
        anchor_weight: float. lambda_a. Defaults to `1.0`.
        center_weight: float. lambda_c. Defaults to `0.01`.
        freeze_landmark_backbone: bool. Freeze the landmark stream (for
            converted pretrained landmark weights). Defaults to `False`.

    Paper mapping:
        g = GAP(X), alpha = sigmoid(W2 relu(W1 g)) -> `channel_reduction`;
        DW-MCA = Concat(head_1..h) W^O -> `num_heads`, `token_dim`;
        768 -> 128 -> MLP -> `fusion_dim`, `embedding_dim`; anchors a_ij
        -> `anchors_per_class`; s_ij = softmax(-d/delta) ->
        `similarity_temperature`; L_total = lambda_cls L_cls + lambda_a L_a
        + lambda_c L_c -> `cls_weight`, `anchor_weight` (L_a bounded by
        `anchor_margin`), `center_weight`.

    Example:
    >>> import numpy as np
    >>> model = ferzoo.models.DWMCA.from_preset(
    ...     "dwmca_small_cnn_synthetic", num_samples=8)
    >>> out = model(np.random.uniform(0, 255, (2, 48, 48, 3)))
    >>> tuple(out["final"].shape), tuple(out["embedding"].shape)  # p, APCL
    ((2, 7), (2, 64))

    Reference:
        Sun, "Facial Expression Recognition Method Based on Dynamic
        Weighted Attention and Noise Label Optimization", 2025.
    """

    loss_terms = ("cls", "anchor", "center")
    config_args = _ARGS
    score_name = "fused probability of the given label"
    relabels_train = False  # `label_table` is a report only

    def __init__(
        self,
        backbone,
        landmark_backbone,
        warmup_epochs=0,
        token_dim=256,
        num_heads=8,
        channel_reduction=4,
        num_scales=3,
        fusion_dim=768,
        embedding_dim=128,
        anchors_per_class=10,
        similarity_temperature=1.0,
        anchor_margin=20.0,
        cls_weight=1.0,
        anchor_weight=1.0,
        center_weight=0.01,
        freeze_landmark_backbone=False,
        **kwargs,
    ):
        if not isinstance(landmark_backbone, Backbone):
            raise ValueError(
                "`landmark_backbone` must be a `ferzoo.backbones.Backbone`. "
                f"Received: landmark_backbone={landmark_backbone!r}"
            )
        sizes = dict(
            token_dim=token_dim,
            num_heads=num_heads,
            channel_reduction=channel_reduction,
            num_scales=num_scales,
            fusion_dim=fusion_dim,
            embedding_dim=embedding_dim,
            anchors_per_class=anchors_per_class,
        )
        scalars = dict(
            similarity_temperature=float(similarity_temperature),
            anchor_margin=float(anchor_margin),
            cls_weight=float(cls_weight),
            anchor_weight=float(anchor_weight),
            center_weight=float(center_weight),
        )
        _check_args(sizes, scalars)
        # === Config ===
        for arg, value in {**sizes, **scalars}.items():
            setattr(self, arg, value)
        self.freeze_landmark_backbone = bool(freeze_landmark_backbone)
        # Held untracked until `create_layers` assigns it, so the model
        # tracks its layers in their usual order (backbone first).
        object.__setattr__(self, "_landmark_arg", landmark_backbone)
        super().__init__(backbone, warmup_epochs=warmup_epochs, **kwargs)

    def create_layers(self, backbone):
        # === Layers ===
        policy = backbone.dtype_policy
        token_dim, num_heads = self.token_dim, self.num_heads
        names = list(getattr(backbone, "stage_output_names", None) or [])
        names = names[-self.num_scales :] if self.num_scales > 1 else []
        self.image_features = None
        if len(names) > 1:
            self.image_features = keras.Model(
                backbone.input,
                [backbone.get_layer(n).output for n in names],
                name="image_features",
            )
        self.image_tokens = MultiScaleTokens(
            token_dim, dtype=policy, name="image_tokens"
        )
        self.landmark_backbone = self.__dict__.pop("_landmark_arg")
        if self.freeze_landmark_backbone:
            self.landmark_backbone.trainable = False
            if self.trunk_split is not None:
                # Cached with the trunk: computed in float32 whatever the
                # policy, as the trunk is (`ferzoo.trunk`).
                compute_in_variable_dtype(self.landmark_backbone.layers)
        self.landmark_tokens = MultiScaleTokens(
            token_dim, dtype=policy, name="landmark_tokens"
        )
        self.cross_attention = DynamicWeightedCrossAttention(
            num_heads,
            token_dim // self.channel_reduction,
            dtype=policy,
            name="cross_attention",
        )
        self.fusion = keras.layers.Dense(
            self.fusion_dim, activation="relu", dtype=policy, name="fusion"
        )
        self.reduction = keras.layers.Dense(
            self.embedding_dim, dtype=policy, name="reduction"
        )
        self.primary_hidden = keras.layers.Dense(
            self.embedding_dim,
            activation="relu",
            dtype=policy,
            name="primary_mlp",
        )
        self.apcl = APCL(
            self.num_classes,
            self.anchors_per_class,
            self.similarity_temperature,
            num_heads,
            dtype=policy,
            name="apcl",
        )

    def _scale_layers(self):
        """Layer names of the image scales, and those in the frozen trunk."""
        if self.image_features is None:
            names = [self.backbone.layers[-1].name]
        else:
            names = [
                t._keras_history[0].name for t in self.image_features.outputs
            ]
        trunk = {layer.name for layer in self.trunk_split.trunk.layers}
        return names, [n in trunk for n in names]

    def trunk_outputs(self, images):
        """The trunk's map, the scales it holds (pooled to the last map's
        grid, as `image_tokens` pools them) and the landmark map."""
        if not self.freeze_landmark_backbone:
            raise ValueError(
                "DWMCA caches its landmark maps with a frozen trunk, so its "
                "landmark backbone must be frozen too "
                "(`freeze_landmark_backbone=True`)."
            )
        import keras

        names, frozen = self._scale_layers()
        trunk = self.trunk_split.trunk
        held = [n for n, f in zip(names, frozen) if f]
        model = keras.Model(
            trunk.input,
            [trunk.output, *[self.backbone.get_layer(n).output for n in held]],
        )
        # The cached maps do not depend on the policy: float32 pixels
        # into the trunk, which computes in float32 (`ferzoo.trunk`).
        images = ops.cast(images, "float32")
        features, *maps = model(images, training=False)
        out = {"features": features}
        for i, (name, is_frozen) in enumerate(zip(names, frozen)):
            if is_frozen:
                pool = self.image_tokens.pools[i]
                x = maps.pop(0)
                if pool is not None:  # the layer's pooling, in float32
                    x = ops.average_pool(
                        x, pool.pool_size, pool.strides, pool.padding
                    )
                out[f"scale{i}"] = x
        out["landmarks"] = self._landmarks(images, training=False)
        return out

    def trunk_weights(self):
        return super().trunk_weights() + list(self.landmark_backbone.weights)

    def _landmarks(self, images, training):
        size = tuple(self.landmark_backbone.input_shape[1:3])
        if None not in size and size != tuple(images.shape[1:3]):
            images = ops.image.resize(images, size)
        return self.landmark_backbone(images, training=training)

    def call(self, inputs, training=False):
        images, _ = self.unpack_inputs(inputs)
        images = ops.cast(images, self.backbone.compute_dtype)
        split = self.trunk_split
        if split is not None and split.is_map(images):
            # Cached trunk: the earlier scales and the landmark maps come
            # with the batch (`trunk_outputs`), the rest from the tail.
            names, frozen = self._scale_layers()
            tail = split.tail(images, training=training)
            maps = [
                inputs[f"extra_scale{i}"] if f else tail
                for i, f in enumerate(frozen)
            ]
            if sum(not f for f in frozen) != 1 or frozen[-1]:
                raise ValueError(
                    "a cached DWMCA needs every image scale but the last in "
                    f"the frozen trunk (scales {names}); freeze up to a "
                    "later block"
                )
            maps = [ops.cast(m, self.backbone.compute_dtype) for m in maps]
            image_tokens = self.image_tokens(maps)
            landmarks = ops.cast(
                inputs["extra_landmarks"], self.backbone.compute_dtype
            )
        else:
            if self.image_features is None:
                maps = [self.backbone(images, training=training)]
            else:
                maps = list(self.image_features(images, training=training))
            image_tokens = self.image_tokens(maps)
            landmarks = self._landmarks(images, training)
        landmark_tokens = self.landmark_tokens(landmarks)
        image_tokens, landmark_tokens = self.cross_attention(
            image_tokens, landmark_tokens, training=training
        )
        pooled = ops.concatenate(
            [ops.mean(image_tokens, 1), ops.mean(landmark_tokens, 1)], -1
        )
        embedding = self.reduction(self.fusion(pooled))
        primary_logits = self.classify(
            self.primary_hidden(embedding), training=training
        )
        tokens = ops.concatenate([image_tokens, landmark_tokens], axis=1)
        out = self.apcl(embedding, tokens, primary_logits, training=training)
        out["logits"] = ops.log(ops.maximum(out["final"], 1e-12))
        out["primary_logits"] = primary_logits
        out["embedding"] = ops.cast(embedding, "float32")
        return out

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        ids = self.sample_ids(x, training)
        labels = ops.cast(y, "int32")
        final = y_pred["final"]
        given = given_probability(final, labels)
        # L_cls: negative log-likelihood of the fused distribution.
        nll = -ops.log(ops.maximum(given, 1e-7))
        cls = weighted_mean(nll, sample_weight)
        # L_a: anchor separation, bounded by the margin hinge.
        anchor = anchor_separation_loss(self.apcl.anchors, self.anchor_margin)
        # L_c: squared distance to the nearest anchor of the label's class.
        center = weighted_mean(
            anchor_center_loss(y_pred["squared_distances"], labels),
            sample_weight,
        )
        total = (
            self.cls_weight * cls
            + self.anchor_weight * anchor
            + self.center_weight * center
        )
        self.track(cls=cls, anchor=anchor, center=center)
        # A report: the prediction where it differs from the label, -1
        # (the given label) where they agree.
        predicted = ops.cast(ops.argmax(final, axis=-1), "int32")
        new = ops.where(predicted != labels, predicted, -1)
        self.relabel_step(ids, new, None, training)
        self.record_scores(ids, given, training)
        return self.with_regularization(total)

    def class_maps(self, images):
        """None: the logits come from APCL's fusion, not GAP + dense."""
        return None

    def get_config(self):
        config = super().get_config()
        config["landmark_backbone"] = keras.layers.serialize(
            self.landmark_backbone
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        landmark = config.get("landmark_backbone")
        if isinstance(landmark, dict):
            config["landmark_backbone"] = keras.layers.deserialize(landmark)
        return super().from_config(config)


def _check_args(sizes, scalars):
    check_positive_int(**sizes)
    if sizes["token_dim"] % sizes["num_heads"]:
        raise ValueError(
            "`token_dim` must be divisible by `num_heads`. Received: "
            f"token_dim={sizes['token_dim']}, num_heads={sizes['num_heads']}"
        )
    if sizes["token_dim"] < sizes["channel_reduction"]:
        raise ValueError(
            "`channel_reduction` must be <= `token_dim`. Received: "
            f"channel_reduction={sizes['channel_reduction']}, "
            f"token_dim={sizes['token_dim']}"
        )
    for arg, value in scalars.items():
        positive = arg in ("similarity_temperature", "anchor_margin")
        if value < 0 or (positive and value == 0):
            bound = "> 0" if positive else ">= 0"
            raise ValueError(
                f"`{arg}` must be {bound}. Received: {arg}={value}"
            )
