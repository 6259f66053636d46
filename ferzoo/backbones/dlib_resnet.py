import keras
from keras import ops

from ferzoo import presets as preset_utils
from ferzoo.backbones.backbone import Backbone
from ferzoo.backbones.backbone import check_image_shape
from ferzoo.errors import PresetError
from ferzoo.layers.pixel_normalization import PixelNormalization

# dlib's mean face colour (RGB, 0-255 scale); inputs become (x - mean) / 255.
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
# Smallest inputs whose last block has a 1x1 output: with the final
# downsampling block (3x3 "valid" conv on a 3x3 map) and without it.
MIN_IMAGE_SIZE = 103
MIN_IMAGE_SIZE_WITHOUT_LAST_BLOCK = 55

# (block name, filters, downsampling) in face-api's order; stages end at
# the last block of each width, and the final downsampling block.
DLIB_RESNET29_BLOCKS = (
    ("conv32_1", 32, False),
    ("conv32_2", 32, False),
    ("conv32_3", 32, False),
    ("conv64_down", 64, True),
    ("conv64_1", 64, False),
    ("conv64_2", 64, False),
    ("conv64_3", 64, False),
    ("conv128_down", 128, True),
    ("conv128_1", 128, False),
    ("conv128_2", 128, False),
    ("conv256_down", 256, True),
    ("conv256_1", 256, False),
    ("conv256_2", 256, False),
    ("conv256_down_out", 256, True),
)
DLIB_RESNET29_STAGE_ENDS = (
    "conv32_3",
    "conv64_3",
    "conv128_2",
    "conv256_2",
    "conv256_down_out",
)


@keras.saving.register_keras_serializable(package="ferzoo")
class DlibResNetBackbone(Backbone):
    """dlib's face-recognition ResNet-29 (half-width ResNet-34), no BN.

    The network of dlib's `dlib_face_recognition_resnet_model_v1` as
    face-api.js runs it (`src/faceRecognitionNet/`): a 7x7/2 "valid" conv
    and 3x3/2 max pooling, then 14 residual blocks of two 3x3 convs (32,
    64, 128, 256 filters). dlib's conv + affine ("scale") pairs are folded
    into one conv with bias; there is no batch norm. A downsampling block
    has a 3x3/2 "valid" first conv, and its shortcut is 2x2/2 average
    pooling with zero channels appended; when the pooled map is one pixel
    larger, the residual is zero-padded at the bottom and right. Returns
    the last block's map (`(1, 1, 256)` at 112 px, `(2, 2, 256)` at 150
    px); face-api's 128-d descriptor is a linear map of its spatial mean.
    Inputs are normalised as `(x - mean_rgb) / 255`.

    Args:
        image_shape: tuple of 3 ints. Input `(height, width, 3)`; height
            and width may be `None`, else at least 103 (55 without the
            last block). Defaults to `(150, 150, 3)` (dlib's face chips).
        include_last_block: bool. Keep the final downsampling block
            (`conv256_down_out`, output stride 32). `False` ends at
            `conv256_2` (stride 16, a `(3, 3, 256)` map at 112 px) and
            accepts inputs down to 55 px. Defaults to `True`.
        output_norm: bool. Append a batch normalisation of the last map's
            channels (`output_norm`, not in dlib's network, so never
            loaded from a preset). dlib's deep maps carry a large common
            offset (pooled `conv256_2` features of FER2013 faces: mean
            0.88, across-face std 0.08 per channel), which a head
            trained on a frozen trunk barely learns from; normalised, it
            does (`cpu-full` benchmark profile). Defaults to `False`.
        output_norm_momentum: float. The momentum of `output_norm`'s
            moving statistics. Defaults to `0.99` (Keras'); `0.9` is
            PyTorch's default, and follows a fast-changing tail.
        weights_preset: str or None. A backbone preset (built-in name or
            folder) whose `model.weights.h5` is loaded once the graph is
            built, like `weights="imagenet"` in `keras.applications`; the
            convs fit any input size. It lets method presets share the
            converted weights of `dlib_resnet29` instead of copying them,
            and gives pretrained weights at another `image_shape`
            (`from_preset` with an `image_shape` override loads none).
            Defaults to `None` (random weights).
        dtype: string or `keras.DTypePolicy`. Defaults to the global
            policy.

    Example:
    >>> import numpy as np
    >>> backbone = ferzoo.backbones.DlibResNetBackbone(
    ...     image_shape=(112, 112, 3), weights_preset="dlib_resnet29")
    >>> tuple(backbone(np.zeros((1, 112, 112, 3), "uint8")).shape)
    (1, 1, 1, 256)
    >>> pretrained = ferzoo.backbones.DlibResNetBackbone.from_preset(
    ...     "dlib_resnet29")
    >>> tuple(pretrained(np.zeros((1, 150, 150, 3), "uint8")).shape)
    (1, 2, 2, 256)

    Reference:
    - [King, dlib face recognition model v1 (public domain)](
      http://dlib.net/face_recognition.py.html)
    - [He et al., Deep Residual Learning for Image Recognition, CVPR 2016](
      https://arxiv.org/abs/1512.03385)
    """

    def __init__(
        self,
        image_shape=(150, 150, 3),
        include_last_block=True,
        weights_preset=None,
        output_norm=False,
        output_norm_momentum=0.99,
        dtype=None,
        **kwargs,
    ):
        image_shape = check_image_shape(image_shape)
        include_last_block = bool(include_last_block)
        min_size = (
            MIN_IMAGE_SIZE
            if include_last_block
            else MIN_IMAGE_SIZE_WITHOUT_LAST_BLOCK
        )
        for size in image_shape[:2]:
            if size is not None and size < min_size:
                raise ValueError(
                    f"`image_shape` must be at least {min_size} px high and "
                    f"wide with include_last_block={include_last_block} "
                    "(smaller inputs leave the last block empty). "
                    f"Received: image_shape={image_shape}"
                )
        check_weights_preset(weights_preset)

        # === Functional Model ===
        inputs = keras.Input(shape=image_shape, name="images")
        x = dlib_normalization(inputs, dtype)
        x = _conv(x, 32, 7, 2, "conv32_down", dtype)
        x = keras.layers.ReLU(dtype=dtype, name="conv32_down_relu")(x)
        x = keras.layers.MaxPooling2D(3, strides=2, dtype=dtype, name="pool")(x)
        blocks = DLIB_RESNET29_BLOCKS
        if not include_last_block:
            blocks = blocks[:-1]
        for name, filters, down in blocks:
            x = _block(x, filters, down, name, dtype)
        output_norm = bool(output_norm)
        if output_norm:
            x = keras.layers.BatchNormalization(
                momentum=float(output_norm_momentum),
                dtype=dtype,
                name="output_norm",
            )(x)
        super().__init__(inputs=inputs, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.image_shape = image_shape
        self.include_last_block = include_last_block
        self.weights_preset = weights_preset
        self.output_norm = output_norm
        self.output_norm_momentum = float(output_norm_momentum)
        if weights_preset is not None:
            source = self
            if not include_last_block or output_norm:
                source = DlibResNetBackbone(image_shape=(None, None, 3))
            load_weights_preset(source, weights_preset)
            for layer in self.layers:
                if layer.name == "output_norm":
                    continue
                if source is not self and layer.weights:
                    weights = source.get_layer(layer.name).get_weights()
                    layer.set_weights(weights)

    @property
    def stage_output_names(self):
        """Layers ending each stage: 32, 64, 128, 256 filters, last block.

        Build a multi-scale feature extractor with
        `keras.Model(backbone.input, [backbone.get_layer(n).output for n
        in backbone.stage_output_names])`.
        """
        ends = DLIB_RESNET29_STAGE_ENDS
        if not self.include_last_block:
            ends = ends[:-1]
        return [f"{name}_out" for name in ends]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "include_last_block": self.include_last_block,
                "weights_preset": self.weights_preset,
                # Only when set: presets' configs stay as they were.
                **({"output_norm": True} if self.output_norm else {}),
                **(
                    {"output_norm_momentum": self.output_norm_momentum}
                    if self.output_norm_momentum != 0.99
                    else {}
                ),
            }
        )
        return config


def check_weights_preset(weights_preset):
    """`weights_preset` is a preset name, a folder or None."""
    if weights_preset is not None and not isinstance(weights_preset, str):
        raise ValueError(
            "`weights_preset` must be a preset name, a folder or None. "
            f"Received: weights_preset={weights_preset!r}"
        )


def dlib_normalization(inputs, dtype):
    """dlib's and face-api's `(x - mean_rgb) / 255`, as the first layer."""
    return PixelNormalization(
        mean=[m / 255.0 for m in DLIB_MEAN_RGB],
        std=[1.0, 1.0, 1.0],
        dtype=dtype,
        name="normalize",
    )(inputs)


def load_weights_preset(backbone, preset):
    """Load the `model.weights.h5` of a backbone preset into `backbone`."""
    folder = preset_utils.resolve_preset(preset)
    path = folder / preset_utils.WEIGHTS_FILE
    if not path.is_file():
        raise PresetError(
            f"{folder}: `weights_preset={preset!r}` but the preset has no "
            f"`{preset_utils.WEIGHTS_FILE}`."
        )
    backbone.load_weights(path)


@keras.saving.register_keras_serializable(package="ferzoo")
class DownsampleShortcutAdd(keras.layers.Layer):
    """face-api's `residualDown` join: pooled, zero-padded shortcut + branch.

    `inputs = [x, residual]`: `x` is 2x2/2 average pooled ("valid"), gets
    as many zero channels as needed to match `residual`, and `residual`
    is zero-padded at the bottom/right to the pooled size; returns their
    sum (the ReLU follows as its own layer).
    """

    def call(self, inputs):
        x, residual = inputs
        pooled = ops.average_pool(x, 2, strides=2, padding="valid")
        extra = residual.shape[-1] - x.shape[-1]
        if extra:
            zeros = ops.zeros_like(pooled)[..., :extra]
            pooled = ops.concatenate([pooled, zeros], axis=-1)
        # The 3x3/2 "valid" conv gives floor((n - 1) / 2) rows, the pool
        # floor(n / 2): pad one zero row / column, then crop to the pool.
        residual = ops.pad(residual, [[0, 0], [0, 1], [0, 1], [0, 0]])
        height, width = ops.shape(pooled)[1], ops.shape(pooled)[2]
        return pooled + residual[:, :height, :width, :]

    def compute_output_shape(self, input_shape):
        x_shape, residual_shape = input_shape
        half = [None if d is None else d // 2 for d in x_shape[1:3]]
        return (x_shape[0], *half, residual_shape[-1])


def _conv(x, filters, kernel_size, stride, name, dtype):
    """A conv with bias (dlib's conv + affine, folded); "valid" if strided."""
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=stride,
        padding="valid" if stride > 1 else "same",
        dtype=dtype,
        name=name,
    )(x)


def _block(x, filters, down, name, dtype):
    shortcut = x
    x = _conv(x, filters, 3, 2 if down else 1, f"{name}_conv1", dtype)
    x = keras.layers.ReLU(dtype=dtype, name=f"{name}_relu1")(x)
    x = _conv(x, filters, 3, 1, f"{name}_conv2", dtype)
    if down:
        x = DownsampleShortcutAdd(dtype=dtype, name=f"{name}_add")(
            [shortcut, x]
        )
    else:
        x = keras.layers.Add(dtype=dtype, name=f"{name}_add")([shortcut, x])
    return keras.layers.ReLU(dtype=dtype, name=f"{name}_out")(x)
