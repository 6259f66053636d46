import math

import keras
from keras import ops

from ferzoo.layers.arguments import check_positive_int

EPSILON = 1e-7


def entropy_confidence(distribution):
    """`1 - H(p) / log(N)` per row: 1 for one-hot, 0 for uniform."""
    p = ops.clip(ops.cast(distribution, "float32"), EPSILON, 1.0)
    num_classes = ops.shape(distribution)[-1]
    entropy = -ops.sum(p * ops.log(p), axis=-1)
    return 1.0 - entropy / math.log(num_classes)


def confidence_fusion(first, first_conf, second, second_conf):
    """`(c1 p1 + c2 p2) / (c1 + c2)`, row by row (a distribution)."""
    c1, c2 = first_conf[:, None], second_conf[:, None]
    return (c1 * first + c2 * second) / ops.maximum(c1 + c2, EPSILON)


def anchor_separation_loss(anchors, margin):
    """Bounded anchor separation: hinge on distances of other-class anchors.

    `mean over pairs (i,j), (k,l) with i != k of max(0, 1 - d/margin)^2`,
    with `d = ||a_ij - a_kl||_2`: in [0, 1], and 0 once every pair of
    anchors of different classes is `margin` apart.

    Args:
        anchors: tensor `(num_classes, K, dim)`.
        margin: float. Distance at which a pair stops contributing.
    """
    anchors = ops.cast(anchors, "float32")
    num_classes, per_class = anchors.shape[0], anchors.shape[1]
    flat = ops.reshape(anchors, (num_classes * per_class, -1))
    sq = ops.sum(ops.square(flat[:, None, :] - flat[None, :, :]), axis=-1)
    dist = ops.sqrt(ops.maximum(sq, 1e-12))
    cls = ops.repeat(ops.arange(num_classes), per_class)
    other = ops.cast(cls[:, None] != cls[None, :], "float32")
    hinge = ops.square(ops.relu(1.0 - dist / margin))
    return ops.sum(hinge * other) / ops.sum(other)


def anchor_center_loss(squared_distances, labels):
    """Squared distance to the nearest anchor of each sample's class.

    Args:
        squared_distances: tensor `(batch, num_classes, K)`.
        labels: int tensor `(batch,)`.

    Returns:
        Per-sample loss `(batch,)`: `min_k ||e_i - a_{y_i, k}||^2`.
    """
    labels = ops.reshape(ops.cast(labels, "int32"), (-1, 1, 1))
    own = ops.take_along_axis(squared_distances, labels, axis=1)[:, 0]
    return ops.min(own, axis=-1)


@keras.saving.register_keras_serializable(package="ferzoo")
class APCL(keras.layers.Layer):
    """Label correction of APCL: anchors, attention and confidence fusion.

    From a sample's embedding `e` `(batch, dim)`, its tokens
    `(batch, tokens, token_dim)` and the primary logits, it returns:
    the primary distribution `p` and its confidence; the anchor
    distribution `t_g` (softmax of `-d(e, a_ij) / delta` over all
    `num_classes * K` trainable anchors, summed per class) and the
    attention distribution `t_a` (multi-head self-attention over
    `[W_e e; tokens]` of the sample, the first output through `W_out`,
    softmax); their fusion `t` and the final distribution
    `(c_p p + c_t t) / (c_p + c_t)`. Confidences are `1 - H / log N`.

    Args:
        num_classes: int. Number of classes N.
        anchors_per_class: int. Trainable anchors per class K.
        temperature: float. delta of the anchor similarity softmax.
        num_heads: int. Heads of the self-attention.
        anchor_stddev: float. Stddev of the random normal anchor
            initialiser.

    Example:
    >>> import numpy as np
    >>> layer = ferzoo.layers.APCL(num_classes=3, anchors_per_class=2,
    ...                            temperature=1.0, num_heads=2)
    >>> out = layer(np.ones((4, 8), "float32"), np.ones((4, 5, 8), "float32"),
    ...             np.zeros((4, 3), "float32"))
    >>> tuple(out["final"].shape)
    (4, 3)
    """

    def __init__(
        self,
        num_classes,
        anchors_per_class,
        temperature=1.0,
        num_heads=4,
        anchor_stddev=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int(anchors_per_class=anchors_per_class)
        if not temperature > 0:
            raise ValueError(
                "`temperature` must be > 0. Received: "
                f"temperature={temperature}"
            )
        self.num_classes = int(num_classes)
        self.anchors_per_class = anchors_per_class
        self.temperature = float(temperature)
        self.num_heads = int(num_heads)
        self.anchor_stddev = float(anchor_stddev)
        self.anchors = None

    def build(self, embedding_shape, tokens_shape, primary_logits_shape=None):
        dim, token_dim = int(embedding_shape[-1]), int(tokens_shape[-1])
        if token_dim % self.num_heads:
            raise ValueError(
                "The token width must be divisible by `num_heads`. Received: "
                f"token width {token_dim}, num_heads={self.num_heads}"
            )
        # Random, not zeros: anchors at one point cannot separate.
        self.anchors = self.add_weight(
            name="anchors",
            shape=(self.num_classes, self.anchors_per_class, dim),
            initializer=keras.initializers.RandomNormal(
                stddev=self.anchor_stddev
            ),
        )
        policy = self.dtype_policy
        self.query_projection = keras.layers.Dense(
            token_dim, dtype=policy, name="query_projection"
        )
        self.query_projection.build(embedding_shape)
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads,
            token_dim // self.num_heads,
            dtype=policy,
            name="attention",
        )
        sequence_shape = (tokens_shape[0], None, token_dim)
        self.attention.build(sequence_shape, sequence_shape, sequence_shape)
        self.output_projection = keras.layers.Dense(
            self.num_classes, dtype=policy, name="output_projection"
        )
        self.output_projection.build((embedding_shape[0], token_dim))
        self.built = True

    def squared_distances(self, embedding):
        """`||e - a_ij||^2`, `(batch, num_classes, K)`, in float32."""
        e = ops.cast(embedding, "float32")[:, None, None, :]
        a = ops.cast(self.anchors, "float32")[None]
        return ops.sum(ops.square(e - a), axis=-1)

    def call(self, embedding, tokens, primary_logits, training=False):
        primary = ops.softmax(ops.cast(primary_logits, "float32"))
        # Anchor label correction: s_ij = softmax(-d(e, a_ij) / delta).
        sq = self.squared_distances(embedding)
        dist = ops.sqrt(ops.maximum(sq, 1e-12))
        flat = ops.reshape(-dist / self.temperature, (-1, self._num_anchors))
        similarity = ops.softmax(flat, axis=-1)
        shape = (-1, self.num_classes, self.anchors_per_class)
        anchor_dist = ops.sum(ops.reshape(similarity, shape), axis=-1)
        # Attention correction: self-attention over the sample's tokens.
        query = self.query_projection(embedding)[:, None, :]
        sequence = ops.concatenate([query, tokens], axis=1)
        attended = self.attention(sequence, sequence, training=training)
        attention_logits = self.output_projection(attended[:, 0])
        attention_dist = ops.softmax(ops.cast(attention_logits, "float32"))
        # Confidence-weighted fusions.
        c_p = entropy_confidence(primary)
        c_g = entropy_confidence(anchor_dist)
        c_a = entropy_confidence(attention_dist)
        sg = ops.stop_gradient
        corrected = confidence_fusion(
            anchor_dist, sg(c_g), attention_dist, sg(c_a)
        )
        c_t = entropy_confidence(corrected)
        final = confidence_fusion(primary, sg(c_p), corrected, sg(c_t))
        return {
            "primary": primary,
            "anchor": anchor_dist,
            "attention": attention_dist,
            "corrected": corrected,
            "final": final,
            "squared_distances": sq,
            "confidence": entropy_confidence(final),
        }

    @property
    def _num_anchors(self):
        return self.num_classes * self.anchors_per_class

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "anchors_per_class": self.anchors_per_class,
                "temperature": self.temperature,
                "num_heads": self.num_heads,
                "anchor_stddev": self.anchor_stddev,
            }
        )
        return config
