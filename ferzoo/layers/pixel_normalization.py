import keras
from keras import ops

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="ferzoo")
class PixelNormalization(keras.layers.Layer):
    """Turn RGB pixels in [0, 255] into normalised floats.

    The first layer of every ferzoo backbone, so a model (and its exported
    SavedModel) takes raw pixels, uint8 or float, and needs no outside
    preprocessing. Computes `(x / 255 - mean) / std` per channel.

    Args:
        mean: list of 3 floats. Per-channel mean on the [0, 1] scale.
            Defaults to the ImageNet mean.
        std: list of 3 floats. Per-channel standard deviation on the
            [0, 1] scale. Defaults to the ImageNet standard deviation.

    Example:
    >>> import numpy as np
    >>> layer = ferzoo.layers.PixelNormalization()
    >>> tuple(layer(np.zeros((2, 8, 8, 3), "uint8")).shape)
    (2, 8, 8, 3)
    """

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD, **kwargs):
        super().__init__(**kwargs)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(
                "`mean` and `std` must have 3 values (RGB). "
                f"Received: mean={mean}, std={std}"
            )
        if min(std) <= 0:
            raise ValueError(f"`std` must be positive. Received: std={std}")
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]
        self.built = True

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype) / 255.0
        mean = ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)
        std = ops.convert_to_tensor(self.std, dtype=self.compute_dtype)
        return (x - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mean": self.mean, "std": self.std})
        return config
