import keras
from keras import ops

from ferzoo.layers.arguments import check_positive_int


@keras.saving.register_keras_serializable(package="ferzoo")
class DynamicChannelWeighting(keras.layers.Layer):
    """Scale each channel of a token sequence by a weight from its content.

    `alpha = sigmoid(W2 relu(W1 GAP(X) + b1) + b2)` is computed from the
    mean over the tokens of each sample and multiplies every token:
    `X * alpha`. Nothing is shared across the batch.

    Args:
        hidden_dim: int. Width H of the bottleneck MLP.

    Example:
    >>> import numpy as np
    >>> layer = ferzoo.layers.DynamicChannelWeighting(hidden_dim=4)
    >>> tuple(layer(np.ones((2, 5, 16), "float32")).shape)
    (2, 5, 16)
    """

    def __init__(self, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        check_positive_int(hidden_dim=hidden_dim)
        self.hidden_dim = hidden_dim
        self.squeeze = keras.layers.Dense(
            hidden_dim, activation="relu", dtype=self.dtype_policy, name="fc1"
        )
        self.excite = None

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.squeeze.build((input_shape[0], channels))
        self.excite = keras.layers.Dense(
            channels, activation="sigmoid", dtype=self.dtype_policy, name="fc2"
        )
        self.excite.build((input_shape[0], self.hidden_dim))
        self.built = True

    def channel_weights(self, tokens):
        """The weights alpha, `(batch, channels)`."""
        return self.excite(self.squeeze(ops.mean(tokens, axis=1)))

    def call(self, tokens):
        return tokens * self.channel_weights(tokens)[:, None, :]

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_dim": self.hidden_dim})
        return config


@keras.saving.register_keras_serializable(package="ferzoo")
class GatedCrossAttention(keras.layers.Layer):
    """Multi-head attention from one token stream to another, gated.

    `A = MHA(query=X, key=Y, value=Y)` (heads concatenated, output
    projection `W^O`), then a per-channel gate
    `g = sigmoid(W_g [X; A] + b_g)` sets how much of the other stream
    enters: `out = LayerNorm(X + g * A)`. Attention runs over the tokens
    of each sample (`(batch, tokens, dim)`), never across the batch.

    Args:
        num_heads: int. Attention heads.
        key_dim: int. Width d of each head's query/key/value.

    Example:
    >>> import numpy as np
    >>> layer = ferzoo.layers.GatedCrossAttention(num_heads=2, key_dim=4)
    >>> x, y = np.ones((2, 5, 8), "float32"), np.ones((2, 3, 8), "float32")
    >>> tuple(layer(x, y).shape)
    (2, 5, 8)
    """

    def __init__(self, num_heads, key_dim, **kwargs):
        super().__init__(**kwargs)
        check_positive_int(num_heads=num_heads, key_dim=key_dim)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.attention = keras.layers.MultiHeadAttention(
            num_heads, key_dim, dtype=self.dtype_policy, name="attention"
        )
        self.gate = None
        self.norm = keras.layers.LayerNormalization(
            epsilon=1e-5, dtype=self.dtype_policy, name="norm"
        )

    def build(self, query_shape, context_shape):
        dim = int(query_shape[-1])
        self.attention.build(query_shape, context_shape, context_shape)
        self.gate = keras.layers.Dense(
            dim, activation="sigmoid", dtype=self.dtype_policy, name="gate"
        )
        self.gate.build(tuple(query_shape[:-1]) + (2 * dim,))
        self.norm.build(query_shape)
        self.built = True

    def call(self, query, context, training=False):
        attended = self.attention(query, context, context, training=training)
        gate = self.gate(ops.concatenate([query, attended], axis=-1))
        return self.norm(query + gate * attended)

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "key_dim": self.key_dim})
        return config


@keras.saving.register_keras_serializable(package="ferzoo")
class DynamicWeightedCrossAttention(keras.layers.Layer):
    """DWMCA: channel weighting of two streams, then gated cross-attention.

    Each stream's tokens are reweighted by its own
    `DynamicChannelWeighting`; then the image tokens attend to the
    landmark tokens and the landmark tokens to the image tokens, each with
    a `GatedCrossAttention`. Both streams must have the same width.

    Args:
        num_heads: int. Attention heads h.
        channel_hidden_dim: int. Bottleneck H of the channel weighting.

    Example:
    >>> import numpy as np
    >>> layer = ferzoo.layers.DynamicWeightedCrossAttention(
    ...     num_heads=2, channel_hidden_dim=4)
    >>> img, lm = layer(np.ones((2, 6, 8), "float32"),
    ...                 np.ones((2, 3, 8), "float32"))
    >>> tuple(img.shape), tuple(lm.shape)
    ((2, 6, 8), (2, 3, 8))
    """

    def __init__(self, num_heads, channel_hidden_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.channel_hidden_dim = channel_hidden_dim
        policy = self.dtype_policy
        self.image_weighting = DynamicChannelWeighting(
            channel_hidden_dim, dtype=policy, name="image_weighting"
        )
        self.landmark_weighting = DynamicChannelWeighting(
            channel_hidden_dim, dtype=policy, name="landmark_weighting"
        )
        self.key_dim = None
        self.image_attention = None
        self.landmark_attention = None

    def build(self, image_tokens_shape, landmark_tokens_shape):
        image_shape, landmark_shape = image_tokens_shape, landmark_tokens_shape
        dim = int(image_shape[-1])
        if int(landmark_shape[-1]) != dim or dim % self.num_heads:
            raise ValueError(
                "Both streams must have the same width, divisible by "
                f"`num_heads`. Received: widths {dim} and "
                f"{landmark_shape[-1]}, num_heads={self.num_heads}"
            )
        policy = self.dtype_policy
        key_dim = dim // self.num_heads
        self.image_attention = GatedCrossAttention(
            self.num_heads, key_dim, dtype=policy, name="image_attention"
        )
        self.landmark_attention = GatedCrossAttention(
            self.num_heads, key_dim, dtype=policy, name="landmark_attention"
        )
        self.image_weighting.build(image_shape)
        self.landmark_weighting.build(landmark_shape)
        self.image_attention.build(image_shape, landmark_shape)
        self.landmark_attention.build(landmark_shape, image_shape)
        self.built = True

    def call(self, image_tokens, landmark_tokens, training=False):
        image = self.image_weighting(image_tokens)
        landmark = self.landmark_weighting(landmark_tokens)
        image_out = self.image_attention(image, landmark, training=training)
        landmark_out = self.landmark_attention(
            landmark, image, training=training
        )
        return image_out, landmark_out

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "channel_hidden_dim": self.channel_hidden_dim,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="ferzoo")
class MultiScaleTokens(keras.layers.Layer):
    """Feature maps of several scales -> one token sequence per sample.

    Each map `(batch, h_i, w_i, c_i)` gets its own linear projection to
    `token_dim`, is average-pooled to the grid of the last (smallest)
    map when its size is a multiple of it, and is flattened; the tokens
    of all scales are concatenated: `(batch, sum_i tokens_i, token_dim)`.

    Args:
        token_dim: int. Width of the tokens.

    Example:
    >>> import numpy as np
    >>> layer = ferzoo.layers.MultiScaleTokens(token_dim=8)
    >>> maps = [np.ones((2, 8, 8, 4), "float32"),
    ...         np.ones((2, 4, 4, 6), "float32")]
    >>> tuple(layer(maps).shape)
    (2, 32, 8)
    """

    def __init__(self, token_dim, **kwargs):
        super().__init__(**kwargs)
        check_positive_int(token_dim=token_dim)
        self.token_dim = token_dim
        self.projections, self.pools = [], []

    def build(self, input_shape):
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        last = shapes[-1][1]
        for i, shape in enumerate(shapes):
            projection = keras.layers.Dense(
                self.token_dim, dtype=self.dtype_policy, name=f"projection_{i}"
            )
            projection.build(shape)
            self.projections.append(projection)
            factor = shape[1] // last if shape[1] and last else 1
            self.pools.append(
                keras.layers.AveragePooling2D(
                    factor, dtype=self.dtype_policy, name=f"pool_{i}"
                )
                if factor > 1
                else None
            )
        self.built = True

    def call(self, inputs):
        maps = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        grid = tuple(maps[-1].shape[1:3])
        tokens = []
        for x, projection, pool in zip(maps, self.projections, self.pools):
            x = projection(x)
            # A map already on the last map's grid was pooled before the
            # projection (a cached trunk's: the same, both being linear).
            if pool is not None and tuple(x.shape[1:3]) != grid:
                x = pool(x)
            tokens.append(ops.reshape(x, (ops.shape(x)[0], -1, self.token_dim)))
        return ops.concatenate(tokens, axis=1)

    def get_config(self):
        config = super().get_config()
        config.update({"token_dim": self.token_dim})
        return config
