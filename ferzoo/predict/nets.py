"""Keras ports of face-api's face detector and 68-point landmark net.

`SSDMobileNetV1FaceDetector` is face-api's `SsdMobilenetv1`
(`src/ssdMobilenetv1/`): a MobileNet v1 (depth multiplier 1, ReLU6,
batch-normed depthwise convs, biased pointwise convs) on a 512 x 512
input normalised to [-1, 1], eight extra convs, six box predictors (3
anchors per cell on the 32 x 32 map of conv 11, 6 on the 16, 8, 4, 2
and 1 px maps after it: 5,118 anchors) and the box decoding of the
TensorFlow object-detection API (scale factors 10, 10, 5, 5). It returns
the decoded boxes `(ymin, xmin, ymax, xmax)` relative to the 512 x 512
input, and the face score (sigmoid of the second class logit) per
anchor; score threshold and non-maximum suppression are
`ferzoo.predict.detect`'s (NumPy, face-api's order and rules).

`FaceLandmark68Net` is face-api's `FaceLandmark68Net`: the
`FaceLandmark68Backbone` feature extractor, global average pooling and
a 256 -> 136 linear layer; it returns 68 `(x, y)` points relative to its
112 x 112 input.

Both are built from presets (`from_preset("ssd_mobilenetv1_face")`,
`from_preset("face_landmark68_net")`) written by
`scripts/convert_faceapi.py` from face-api's TF.js weights.
"""

import keras
from keras import ops

from ferzoo import presets as preset_utils
from ferzoo.backbones.backbone import FlatConfig
from ferzoo.backbones.face_landmark68 import FaceLandmark68Backbone
from ferzoo.errors import PresetError

SSD_INPUT_SIZE = 512
# MobileNet v1's pointwise filters of conv 1..13 and the depthwise
# strides (2 at convs 2, 4, 6 and 12), as face-api's mobileNetV1.ts.
MOBILENET_FILTERS = (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512,
                     1024, 1024)  # fmt: skip
MOBILENET_STRIDE2 = (2, 4, 6, 12)
# The prediction layer's eight convs: (filters, kernel, stride).
EXTRA_CONVS = ((256, 1, 1), (512, 3, 2), (128, 1, 1), (256, 3, 2),
               (128, 1, 1), (256, 3, 2), (64, 1, 1), (128, 3, 2))  # fmt: skip
# Anchors per cell of the six box predictors.
ANCHORS_PER_CELL = (3, 6, 6, 6, 6, 6)
BN_EPSILON = 0.0010000000474974513  # face-api's float32 1e-3


class _FromPreset(FlatConfig):
    """`from_preset` for the nets of this module (config + weights); their
    config is the constructor's arguments (`FlatConfig`)."""

    @classmethod
    def from_preset(cls, preset, load_weights=True):
        """Build the net of a preset folder or built-in preset name."""
        folder = preset_utils.resolve_preset(preset)
        config = preset_utils.read_json(folder / preset_utils.CONFIG_FILE)
        if not preset_utils.matches_class(config, cls):
            raise PresetError(
                f"Preset {str(preset)!r} holds a "
                f"{config.get('class_name', '?')}, not a {cls.__name__}."
            )
        net = preset_utils.deserialize(config, folder)
        weights = preset_utils.weights_path(folder, load_weights)
        if weights is not None:
            net.load_weights(weights)
        return net

    def save_to_preset(self, preset_dir, metadata=None):
        preset_utils.save_to_preset(self, preset_dir, metadata)


@keras.saving.register_keras_serializable(package="ferzoo")
class SSDBoxDecoder(keras.layers.Layer):
    """Anchor boxes + box encodings -> boxes; class logits -> face scores.

    Holds the anchors `(num_anchors, 4)` (`ymin, xmin, ymax, xmax`,
    relative) as a non-trainable weight. With the anchor's centre
    `(cy, cx)` and size `(h, w)` and the encoding `(ty, tx, th, tw)`:
    centre `(cy + ty / 10 * h, cx + tx / 10 * w)`, size
    `(h * exp(th / 5), w * exp(tw / 5))`. The score is
    `sigmoid(logits[..., 1])` (class 0 is the background).
    """

    def __init__(self, num_anchors, **kwargs):
        super().__init__(**kwargs)
        self.num_anchors = int(num_anchors)
        self.anchors = self.add_weight(
            shape=(self.num_anchors, 4),
            initializer="zeros",
            trainable=False,
            name="anchors",
        )

    def call(self, encodings, logits):
        anchors = ops.cast(self.anchors, encodings.dtype)
        h = anchors[:, 2] - anchors[:, 0]
        w = anchors[:, 3] - anchors[:, 1]
        cy = anchors[:, 0] + h / 2
        cx = anchors[:, 1] + w / 2
        half_h = ops.exp(encodings[..., 2] / 5) * h / 2
        half_w = ops.exp(encodings[..., 3] / 5) * w / 2
        y = encodings[..., 0] / 10 * h + cy
        x = encodings[..., 1] / 10 * w + cx
        boxes = ops.stack(
            [y - half_h, x - half_w, y + half_h, x + half_w], axis=-1
        )
        return boxes, ops.sigmoid(logits[..., 1])

    def compute_output_spec(self, encodings, logits):
        return (
            keras.KerasTensor(encodings.shape, encodings.dtype),
            keras.KerasTensor(logits.shape[:-1], logits.dtype),
        )

    def get_config(self):
        return {**super().get_config(), "num_anchors": self.num_anchors}


def pixels_input(size, dtype):
    """The `(size, size, 3)` pixel input and it scaled to `x / 127.5 - 1`
    (face-api's and MediaPipe's normalisation)."""
    inputs = keras.Input(shape=(size, size, 3), name="images")
    x = keras.layers.Rescaling(
        1 / 127.5, offset=-1.0, dtype=dtype, name="normalize"
    )(inputs)
    return inputs, x


def _relu6(x, name, dtype):
    return keras.layers.ReLU(max_value=6.0, dtype=dtype, name=name)(x)


def _conv(x, filters, kernel, stride, name, dtype):
    """face-api's `pointwiseConvLayer`: conv + bias, ReLU6."""
    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", dtype=dtype, name=name
    )(x)
    return _relu6(x, f"{name}_relu6", dtype)


@keras.saving.register_keras_serializable(package="ferzoo")
class SSDMobileNetV1FaceDetector(_FromPreset, keras.Model):
    """face-api's SSD MobileNet v1 face detector (module docstring).

    Takes `(batch, 512, 512, 3)` RGB pixels in [0, 255] (the image padded
    to a square at the bottom/right and resized, as
    `ferzoo.predict.detect.ssd_input` does) and returns
    `{"boxes": (batch, 5118, 4), "scores": (batch, 5118)}`.

    Args:
        dtype: string or `keras.DTypePolicy`. Defaults to the global
            policy.

    Example:
    >>> import numpy as np
    >>> from ferzoo.predict.nets import SSDMobileNetV1FaceDetector
    >>> net = SSDMobileNetV1FaceDetector()
    >>> out = net(np.zeros((1, 512, 512, 3), "float32"))
    >>> tuple(out["boxes"].shape), tuple(out["scores"].shape)
    ((1, 5118, 4), (1, 5118))
    """

    def __init__(self, dtype=None, **kwargs):
        inputs, x = pixels_input(SSD_INPUT_SIZE, dtype)
        x = _conv(x, 32, 3, 2, "mobilenet_conv0", dtype)
        conv11 = None
        for i, filters in enumerate(MOBILENET_FILTERS, 1):
            stride = 2 if i in MOBILENET_STRIDE2 else 1
            name = f"mobilenet_conv{i}"
            x = keras.layers.DepthwiseConv2D(
                3,
                strides=stride,
                padding="same",
                use_bias=False,
                dtype=dtype,
                name=f"{name}_depthwise",
            )(x)
            x = keras.layers.BatchNormalization(
                epsilon=BN_EPSILON, dtype=dtype, name=f"{name}_bn"
            )(x)
            x = _relu6(x, f"{name}_depthwise_relu6", dtype)
            x = _conv(x, filters, 1, 1, f"{name}_pointwise", dtype)
            if i == 11:
                conv11 = x
        maps = [conv11, x]
        for k, (filters, kernel, stride) in enumerate(EXTRA_CONVS):
            x = _conv(x, filters, kernel, stride, f"prediction_conv{k}", dtype)
            if stride == 2:
                maps.append(x)
        encodings, logits = [], []
        for k, (m, anchors) in enumerate(zip(maps, ANCHORS_PER_CELL)):
            for out, depth in ((encodings, 4), (logits, 3)):
                kind = "box" if depth == 4 else "class"
                y = keras.layers.Conv2D(
                    anchors * depth,
                    1,
                    dtype=dtype,
                    name=f"box_predictor{k}_{kind}",
                )(m)
                out.append(
                    keras.layers.Reshape(
                        (-1, depth),
                        dtype=dtype,
                        name=f"box_predictor{k}_{kind}_reshape",
                    )(y)
                )
        concat = keras.layers.Concatenate
        encodings = concat(axis=1, dtype=dtype, name="encodings")(encodings)
        logits = concat(axis=1, dtype=dtype, name="class_logits")(logits)
        num_anchors = sum(
            int(m.shape[1]) * int(m.shape[2]) * a
            for m, a in zip(maps, ANCHORS_PER_CELL)
        )
        boxes, scores = SSDBoxDecoder(num_anchors, dtype=dtype, name="decode")(
            encodings, logits
        )
        super().__init__(
            inputs=inputs,
            outputs={"boxes": boxes, "scores": scores},
            dtype=dtype,
            **kwargs,
        )
        self.num_anchors = num_anchors


@keras.saving.register_keras_serializable(package="ferzoo")
class FaceLandmark68Net(_FromPreset, keras.Model):
    """face-api's 68-point landmark net (module docstring).

    Takes `(batch, 112, 112, 3)` RGB pixels in [0, 255] (a square face
    crop) and returns `(batch, 68, 2)` points `(x, y)` relative to the
    crop (0 = left/top edge, 1 = right/bottom edge), in the iBUG 300-W
    order (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67).

    Args:
        dtype: string or `keras.DTypePolicy`. Defaults to the global
            policy.

    Example:
    >>> import numpy as np
    >>> from ferzoo.predict.nets import FaceLandmark68Net
    >>> net = FaceLandmark68Net()
    >>> tuple(net(np.zeros((1, 112, 112, 3), "float32")).shape)
    (1, 68, 2)
    """

    def __init__(self, dtype=None, **kwargs):
        inputs = keras.Input(shape=(112, 112, 3), name="images")
        features = FaceLandmark68Backbone(dtype=dtype, name="features")(inputs)
        pooled = keras.layers.GlobalAveragePooling2D(dtype=dtype, name="pool")(
            features
        )
        points = keras.layers.Dense(136, dtype=dtype, name="fc")(pooled)
        points = keras.layers.Reshape((68, 2), dtype=dtype, name="points")(
            points
        )
        super().__init__(inputs=inputs, outputs=points, dtype=dtype, **kwargs)
