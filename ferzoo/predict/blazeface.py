"""Keras port of MediaPipe's BlazeFace face detector (back-camera model).

`BlazeFaceNet` is the 256 x 256 BlazeFace of `@vladmandic/human`'s
`models/blazeface.json` (MediaPipe's face detector, Apache-2.0): a 5 x 5
stride-2 conv (24 filters, ReLU), then 32 BlazeBlocks, each a 3 x 3
depthwise conv (no bias) and a biased 1 x 1 conv added to a shortcut,
then ReLU. The shortcut of a stride-2 block is a 2 x 2 max pool, padded
with zero channels where the block widens (24 -> 48 -> 96); the last
block (stride 2, to the 8 x 8 map) has no shortcut. Two anchors per cell
of the 16 x 16 map (after block 31) and six per cell of the 8 x 8 map
give 896 anchors, each with a face logit and 16 regressions: the box
centre's offset from the anchor, the box's width and height, and six
keypoints' offsets (eyes, nose, mouth, ears), all in input pixels
(human's `src/face/blazeface.ts` `decodeBoxes`, `facemeshutil.ts`
`generateAnchors`).

The net takes RGB pixels in [0, 255] (`x / 127.5 - 1` inside) and
returns the decoded boxes `(ymin, xmin, ymax, xmax)` and keypoints
`(x, y)` relative to its input, and the face scores (sigmoid of the
logit), in the layout of `ferzoo.predict.nets.SSDMobileNetV1FaceDetector`
so that `ferzoo.predict.detect`'s NumPy NMS and box fusion serve both.
Built from the preset `blazeface_face` written by
`scripts/convert_blazeface.py`.
"""

import keras
import numpy as np
from keras import ops

from ferzoo.predict.nets import _FromPreset
from ferzoo.predict.nets import pixels_input

BLAZEFACE_INPUT_SIZE = 256
# (filters, stride) of the 32 BlazeBlocks; the last has no shortcut.
BLAZEFACE_BLOCKS = (
    ((24, 1),) * 7 + ((24, 2),) + ((24, 1),) * 7 + ((48, 2),)
    + ((48, 1),) * 7 + ((96, 2),) + ((96, 1),) * 7 + ((96, 2),)
)  # fmt: skip
# Anchor strides and anchors per cell (human's generateAnchors).
BLAZEFACE_STRIDES = ((16, 2), (32, 6))
NUM_KEYPOINTS = 6


def blazeface_anchors(size=BLAZEFACE_INPUT_SIZE):
    """`(896, 2)` anchor centres `(x, y)` in input pixels, row by row of
    the 16 x 16 map (2 per cell), then of the 8 x 8 map (6 per cell)."""
    out = []
    for stride, per_cell in BLAZEFACE_STRIDES:
        cells = (size + stride - 1) // stride
        centres = stride * (np.arange(cells) + 0.5)
        y, x = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack([x.ravel(), y.ravel()], -1)
        out.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


@keras.saving.register_keras_serializable(package="ferzoo")
class ChannelPad(keras.layers.Layer):
    """Append `extra` zero channels (BlazeFace's widening shortcut)."""

    def __init__(self, extra, **kwargs):
        super().__init__(**kwargs)
        self.extra = int(extra)

    def call(self, x):
        # A concatenation, not `ops.pad`: TensorFlow's graph mode crashes
        # (oneDNN, CPU) on a channel Pad feeding an Add.
        zeros = ops.tile(ops.zeros_like(x[..., :1]), (1, 1, 1, self.extra))
        return ops.concatenate([x, zeros], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + self.extra)

    def get_config(self):
        return {**super().get_config(), "extra": self.extra}


@keras.saving.register_keras_serializable(package="ferzoo")
class BlazeFaceDecoder(keras.layers.Layer):
    """Raw `(batch, 896, 17)` -> boxes, scores and keypoints.

    Column 0 is the face logit (score: its sigmoid); columns 1-2 the box
    centre's `(x, y)` offset from the anchor and 3-4 the box's width and
    height, in pixels of the `size` x `size` input; columns 5-16 the six
    keypoints' `(x, y)` offsets from the anchor. Boxes come as `(ymin,
    xmin, ymax, xmax)` and keypoints as `(x, y)`, divided by `size`.
    """

    def __init__(self, size=BLAZEFACE_INPUT_SIZE, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, raw):
        anchors = ops.convert_to_tensor(blazeface_anchors(self.size))
        anchors = ops.cast(anchors, raw.dtype)
        cx = (raw[..., 1] + anchors[:, 0]) / self.size
        cy = (raw[..., 2] + anchors[:, 1]) / self.size
        half_w = raw[..., 3] / self.size / 2
        half_h = raw[..., 4] / self.size / 2
        boxes = ops.stack(
            [cy - half_h, cx - half_w, cy + half_h, cx + half_w], axis=-1
        )
        points = ops.reshape(raw[..., 5:], (-1, raw.shape[1], NUM_KEYPOINTS, 2))
        keypoints = (points + anchors[:, None, :]) / self.size
        return boxes, ops.sigmoid(raw[..., 0]), keypoints

    def compute_output_spec(self, raw):
        batch, n = raw.shape[0], raw.shape[1]
        return (
            keras.KerasTensor((batch, n, 4), raw.dtype),
            keras.KerasTensor((batch, n), raw.dtype),
            keras.KerasTensor((batch, n, NUM_KEYPOINTS, 2), raw.dtype),
        )

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def _block(x, filters, stride, name, dtype, shortcut=True):
    """A BlazeBlock: depthwise 3 x 3, 1 x 1 conv, + shortcut, ReLU."""
    y = keras.layers.DepthwiseConv2D(
        3,
        strides=stride,
        padding="same",
        use_bias=False,
        dtype=dtype,
        name=f"{name}_depthwise",
    )(x)
    y = keras.layers.Conv2D(filters, 1, dtype=dtype, name=f"{name}_pointwise")(
        y
    )
    if shortcut:
        if stride == 2:
            x = keras.layers.MaxPooling2D(
                2, padding="same", dtype=dtype, name=f"{name}_pool"
            )(x)
        if filters > x.shape[-1]:
            x = ChannelPad(
                filters - x.shape[-1], dtype=dtype, name=f"{name}_pad"
            )(x)
        y = keras.layers.Add(dtype=dtype, name=f"{name}_add")([x, y])
    return keras.layers.ReLU(dtype=dtype, name=f"{name}_relu")(y)


def _head(x, anchors, depth, name, dtype):
    y = keras.layers.Conv2D(anchors * depth, 1, dtype=dtype, name=name)(x)
    return keras.layers.Reshape(
        (-1, depth), dtype=dtype, name=f"{name}_reshape"
    )(y)


@keras.saving.register_keras_serializable(package="ferzoo")
class BlazeFaceNet(_FromPreset, keras.Model):
    """MediaPipe's BlazeFace (back-camera, 256 px; module docstring).

    Takes `(batch, 256, 256, 3)` RGB pixels in [0, 255] and returns
    `{"boxes": (batch, 896, 4), "scores": (batch, 896),
    "keypoints": (batch, 896, 6, 2)}`.

    Args:
        dtype: string or `keras.DTypePolicy`. Defaults to the global
            policy.

    Example:
    >>> import numpy as np
    >>> from ferzoo.predict.blazeface import BlazeFaceNet
    >>> net = BlazeFaceNet()
    >>> out = net(np.zeros((1, 256, 256, 3), "float32"))
    >>> tuple(out["boxes"].shape), tuple(out["keypoints"].shape)
    ((1, 896, 4), (1, 896, 6, 2))
    """

    def __init__(self, dtype=None, **kwargs):
        size = BLAZEFACE_INPUT_SIZE
        inputs, x = pixels_input(size, dtype)
        x = keras.layers.Conv2D(
            24, 5, strides=2, padding="same", dtype=dtype, name="conv0"
        )(x)
        x = keras.layers.ReLU(dtype=dtype, name="conv0_relu")(x)
        last = len(BLAZEFACE_BLOCKS)
        for i, (filters, stride) in enumerate(BLAZEFACE_BLOCKS, 1):
            if i == last:
                map16 = x
            x = _block(x, filters, stride, f"block{i}", dtype, i < last)
        (_, per16), (_, per8) = BLAZEFACE_STRIDES
        depth = 1 + 2 + 2 + 2 * NUM_KEYPOINTS
        logits = [
            _head(map16, per16, 1, "classifier16", dtype),
            _head(x, per8, 1, "classifier8", dtype),
        ]
        regressions = [
            _head(map16, per16, depth - 1, "regressor16", dtype),
            _head(x, per8, depth - 1, "regressor8", dtype),
        ]
        concat = keras.layers.Concatenate
        raw = concat(axis=-1, dtype=dtype, name="raw")(
            [
                concat(axis=1, dtype=dtype, name="logits")(logits),
                concat(axis=1, dtype=dtype, name="regressions")(regressions),
            ]
        )
        boxes, scores, keypoints = BlazeFaceDecoder(
            size, dtype=dtype, name="decode"
        )(raw)
        super().__init__(
            inputs=inputs,
            outputs={"boxes": boxes, "scores": scores, "keypoints": keypoints},
            dtype=dtype,
            **kwargs,
        )
