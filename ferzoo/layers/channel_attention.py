import keras
from keras import ops

from ferzoo.layers.arguments import check_positive_int


@keras.saving.register_keras_serializable(package="ferzoo")
class ChannelAttention(keras.layers.Layer):
    """Squeeze-and-excitation channel attention on a feature map.

    Squeezes `(B, h, w, C)` by global average pooling, excites with
    `Dense(C // reduction, relu) -> Dense(C, sigmoid)` and rescales each
    channel by its weight. The weights depend only on pooled statistics,
    so the layer commutes with a horizontal flip of the feature map.

    Args:
        reduction: int. Bottleneck ratio of the excitation MLP. Defaults
            to `16`.

    Example:
    >>> import numpy as np
    >>> layer = ferzoo.layers.ChannelAttention(reduction=4)
    >>> tuple(layer(np.ones((2, 5, 5, 16), "float32")).shape)
    (2, 5, 5, 16)

    Reference:
        Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018.
    """

    def __init__(self, reduction=16, **kwargs):
        super().__init__(**kwargs)
        check_positive_int(reduction=reduction)
        self.reduction = reduction

    def build(self, input_shape):
        channels = input_shape[-1]
        self.squeeze = keras.layers.Dense(
            max(1, channels // self.reduction),
            activation="relu",
            dtype=self.dtype_policy,
            name="fc1",
        )
        self.excite = keras.layers.Dense(
            channels, activation="sigmoid", dtype=self.dtype_policy, name="fc2"
        )
        self.squeeze.build((input_shape[0], channels))
        self.excite.build((input_shape[0], max(1, channels // self.reduction)))
        self.built = True

    def call(self, features):
        weights = self.excite(self.squeeze(ops.mean(features, axis=(1, 2))))
        return features * weights[:, None, None, :]

    def get_config(self):
        config = super().get_config()
        config.update({"reduction": self.reduction})
        return config
