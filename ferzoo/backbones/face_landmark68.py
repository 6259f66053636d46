import keras

from ferzoo.backbones.backbone import Backbone
from ferzoo.backbones.backbone import check_image_shape
from ferzoo.backbones.dlib_resnet import check_weights_preset
from ferzoo.backbones.dlib_resnet import dlib_normalization
from ferzoo.backbones.dlib_resnet import load_weights_preset

FACE_LANDMARK68_FILTERS = (32, 64, 128, 256)


@keras.saving.register_keras_serializable(package="ferzoo")
class FaceLandmark68Backbone(Backbone):
    """face-api.js's 68-point landmark feature extractor (dense blocks).

    The `FaceFeatureExtractor` of face-api.js (`src/faceFeatureExtractor/`),
    shared by its 68-point landmark net and its expression net: four
    "dense" blocks of 32, 64, 128 and 256 filters. Each block halves the
    resolution with its first conv (a plain 3x3 conv in the first block,
    a depthwise-separable one after) and adds three depthwise-separable
    3x3 convs, each fed the ReLU of the sum of all previous outputs of
    the block. Convs have biases, "same" padding and no batch norm; inputs
    are normalised as `(x - mean_rgb) / 255` with dlib's mean colour.
    Returns the last block's map, `(7, 7, 256)` at 112 px (face-api then
    averages it and applies a 256 -> 136 linear layer for the landmarks).

    The backbone is frozen (`trainable=False`) by default: it is meant as
    a fixed landmark stream (DWMCA's second stream, as POSTER freezes its
    landmark net). Pass `trainable=True` to fine-tune it.

    Args:
        image_shape: tuple of 3 ints. Input `(height, width, 3)`; height
            and width may be `None`. Defaults to `(112, 112, 3)`.
        weights_preset: str or None. A backbone preset (built-in name or
            folder) whose `model.weights.h5` is loaded once the graph is
            built, e.g. `"face_landmark68"`. Defaults to `None` (random
            weights).
        trainable: bool. Whether the weights train. Defaults to `False`.
        dtype: string or `keras.DTypePolicy`. Defaults to the global
            policy.

    Example:
    >>> import numpy as np
    >>> backbone = ferzoo.backbones.FaceLandmark68Backbone.from_preset(
    ...     "face_landmark68")
    >>> tuple(backbone(np.zeros((1, 112, 112, 3), "uint8")).shape)
    (1, 7, 7, 256)
    >>> len(backbone.trainable_weights)
    0

    Reference:
    - [Mühler, face-api.js (MIT); vladmandic/face-api 1.7.15](
      https://github.com/vladmandic/face-api)
    """

    def __init__(
        self,
        image_shape=(112, 112, 3),
        weights_preset=None,
        trainable=False,
        dtype=None,
        **kwargs,
    ):
        image_shape = check_image_shape(image_shape)
        check_weights_preset(weights_preset)

        # === Functional Model ===
        inputs = keras.Input(shape=image_shape, name="images")
        x = dlib_normalization(inputs, dtype)
        for i, filters in enumerate(FACE_LANDMARK68_FILTERS):
            x = _dense_block(x, filters, f"dense{i}", dtype, first=i == 0)
        super().__init__(inputs=inputs, outputs=x, dtype=dtype, **kwargs)
        # Set after the graph exists, so the flag reaches every layer.
        self.trainable = bool(trainable)

        # === Config ===
        self.image_shape = image_shape
        self.weights_preset = weights_preset
        if weights_preset is not None:
            load_weights_preset(self, weights_preset)

    @property
    def stage_output_names(self):
        """Layers ending each dense block (strides 2, 4, 8, 16)."""
        return [f"dense{i}_out" for i in range(len(FACE_LANDMARK68_FILTERS))]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "weights_preset": self.weights_preset,
            }
        )
        return config


def _separable(x, filters, stride, name, dtype):
    return keras.layers.SeparableConv2D(
        filters, 3, strides=stride, padding="same", dtype=dtype, name=name
    )(x)


def _dense_block(x, filters, name, dtype, first=False):
    """face-api's `denseBlock4`: out_k = conv_k(relu(out_1 + ... + out_k-1))."""
    if first:
        x = keras.layers.Conv2D(
            filters,
            3,
            strides=2,
            padding="same",
            dtype=dtype,
            name=f"{name}_conv0",
        )(x)
    else:
        x = _separable(x, filters, 2, f"{name}_conv0", dtype)
    outs = [keras.layers.ReLU(dtype=dtype, name=f"{name}_relu0")(x)]
    for k in (1, 2, 3):
        inp = outs[0]
        if k > 1:
            total = keras.layers.Add(dtype=dtype, name=f"{name}_add{k - 1}")(
                outs
            )
            inp = keras.layers.ReLU(dtype=dtype, name=f"{name}_relu{k - 1}")(
                total
            )
        outs.append(_separable(inp, filters, 1, f"{name}_conv{k}", dtype))
    total = keras.layers.Add(dtype=dtype, name=f"{name}_add3")(outs)
    return keras.layers.ReLU(dtype=dtype, name=f"{name}_out")(total)
