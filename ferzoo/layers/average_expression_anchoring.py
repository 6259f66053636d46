import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ferzoo")
class AverageExpressionAnchoring(keras.layers.Layer):
    """Average Expression Anchoring: `f + alpha * mean over the batch of f`.

    Adds to each pooled feature vector the batch's average feature (the
    "average face"), scaled by a learned per-channel vector `alpha`. In
    training the average is the batch mean, and a moving average of it is
    kept (like batch normalisation); at inference the moving average is
    used, so a prediction does not depend on the other images of a batch.

    Args:
        momentum: float. Momentum of the moving average of the batch mean.
            Defaults to `0.99`.
        alpha_initializer: str or initializer. Initial `alpha`. Defaults to
            `"zeros"` (the layer starts as the identity).
        synchronized: bool. Only applicable with the TensorFlow backend, as
            in `keras.layers.BatchNormalization`: if `True`, the batch mean
            in training is that of the global batch across the replicas of
            a `tf.distribute` strategy. `ferzoo.distribute` sets it for
            data-parallel training. Defaults to `False`.

    Example:
    >>> layer = ferzoo.layers.AverageExpressionAnchoring()
    >>> f = np.array([[1.0, 2.0], [3.0, 6.0]], "float32")
    >>> _ = layer(f)
    >>> _ = layer.alpha.assign([0.5, -1.0])
    >>> np.asarray(layer(f, training=True)).tolist()  # mean = [2, 4]
    [[2.0, -2.0], [4.0, 2.0]]

    Reference:
        Ming et al., "Soft Label Mining and Average Expression Anchoring
        for Facial Expression Recognition", ACCV 2022.
    """

    def __init__(
        self,
        momentum=0.99,
        alpha_initializer="zeros",
        synchronized=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0 <= momentum < 1:
            raise ValueError(
                f"`momentum` must be in [0, 1). Received: momentum={momentum}"
            )
        self.momentum = float(momentum)
        self.alpha_initializer = keras.initializers.get(alpha_initializer)
        self.synchronized = bool(synchronized)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.alpha = self.add_weight(
            name="alpha",
            shape=(channels,),
            initializer=self.alpha_initializer,
        )
        self.moving_mean = self.add_weight(
            name="moving_mean",
            shape=(channels,),
            initializer="zeros",
            trainable=False,
            autocast=False,  # float32 under a mixed policy, as BN's
        )
        self.built = True

    def call(self, features, training=False):
        if training:
            features32 = ops.cast(features, "float32")
            if self.synchronized:
                mean, _ = ops.moments(features32, axes=[0], synchronized=True)
            else:
                mean = ops.mean(features32, axis=0)
            self.moving_mean.assign(
                self.momentum * self.moving_mean
                + (1.0 - self.momentum) * ops.stop_gradient(mean)
            )
        else:
            mean = self.moving_mean
        anchor = ops.cast(self.alpha, features.dtype) * ops.cast(
            mean, features.dtype
        )
        return features + anchor[None, :]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "synchronized": self.synchronized,
                "alpha_initializer": keras.initializers.serialize(
                    self.alpha_initializer
                ),
            }
        )
        return config
