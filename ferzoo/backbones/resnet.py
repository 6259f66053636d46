import functools

import keras

from ferzoo.backbones.backbone import Backbone
from ferzoo.backbones.backbone import check_image_shape
from ferzoo.layers.pixel_normalization import PixelNormalization

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # PyTorch's momentum=0.1.
SE_REDUCTION = 16


def _resnet_config(num_blocks, block_type, **extra):
    return {
        "stackwise_num_filters": [64, 128, 256, 512],
        "stackwise_num_blocks": num_blocks,
        "block_type": block_type,
        **extra,
    }


# Standard configurations, by torchvision / timm name.
RESNET_CONFIGS = {
    "resnet18": _resnet_config([2, 2, 2, 2], "basic_block"),
    "resnet34": _resnet_config([3, 4, 6, 3], "basic_block"),
    "resnet50": _resnet_config([3, 4, 6, 3], "bottleneck_block"),
    "resnet101": _resnet_config([3, 4, 23, 3], "bottleneck_block"),
    "resnet152": _resnet_config([3, 8, 36, 3], "bottleneck_block"),
    "se_resnet50": _resnet_config(
        [3, 4, 6, 3], "bottleneck_block", use_squeeze_excite=True
    ),
}


@keras.saving.register_keras_serializable(package="ferzoo")
class ResNetBackbone(Backbone):
    """ResNet-18/34/50/101/152 and SE-ResNet, in torchvision's layout.

    The torchvision ("v1.5") ResNet: the stride of a bottleneck block is on
    its 3x3 conv, the shortcut is a 1x1 conv + batch norm when the shape
    changes, batch norm uses `epsilon=1e-5`, and stride-2 convs pad
    symmetrically (explicit `ZeroPadding2D` + `"valid"`), so converted
    PyTorch checkpoints give the same features. `use_squeeze_excite` adds
    squeeze-and-excitation (reduction 16, 1x1 convs with bias, as in timm's
    `seresnet50`) on each block's residual branch. `caffe_style` gives the
    Caffe SE-ResNet of Hu et al. as Cadene's `se_resnet50` and timm's
    `legacy_seresnet50` define it. Returns the last feature map; standard
    configs are in `RESNET_CONFIGS` (see `from_name`).

    Layer names map 1:1 onto torchvision module names (`.` -> `_`):
    `conv1_conv` (`conv1`), `conv1_bn` (`bn1`), `pool1_pool` (`maxpool`);
    block `b` of stage `s` is `layer{s}_{b}_conv{k}` / `layer{s}_{b}_bn{k}`
    (`layer{s}.{b}.conv{k}` / `.bn{k}`), `layer{s}_{b}_downsample_conv` /
    `_downsample_bn` (`downsample.0` / `downsample.1`) and
    `layer{s}_{b}_se_fc1` / `_se_fc2` (timm's `se.fc1` / `se.fc2`).
    Padding, activation and add layers end in `_pad`, `_relu{k}`, `_add`
    and `_out` and hold no weights.

    Args:
        image_shape: tuple of 3 ints. Input `(height, width, 3)`; height
            and width may be `None`. Defaults to `(224, 224, 3)`.
        stackwise_num_filters: list of ints. Filters of each stage (the
            bottleneck width; a bottleneck block outputs 4x as many).
            Defaults to `[64, 128, 256, 512]`.
        stackwise_num_blocks: list of ints. Blocks in each stage, same
            length as `stackwise_num_filters`. Defaults to `[2, 2, 2, 2]`
            (ResNet-18).
        block_type: str. `"basic_block"` (ResNet-18/34) or
            `"bottleneck_block"` (ResNet-50 and deeper). Defaults to
            `"basic_block"`.
        use_squeeze_excite: bool. Add squeeze-and-excitation to every
            block (SE-ResNet). Defaults to `False`.
        stem: str. `"imagenet"`: 7x7/2 conv + 3x3/2 max pooling (output
            stride 32); `"small"`: 3x3/1 conv and no pooling (output
            stride 8, for 48 px faces). Defaults to `"imagenet"`.
        stem_filters: int. Filters of the stem conv. Defaults to `64`.
        caffe_style: bool. The Caffe layout (Cadene's `se_resnet50`): a
            bottleneck block strides in its first 1x1 conv, not its 3x3
            conv, and the stem's max pooling rounds up (PyTorch's
            `ceil_mode=True`, no padding). Defaults to `False`.
        dtype: string or `keras.DTypePolicy`. Defaults to the global
            policy.

    Example:
    >>> import numpy as np
    >>> backbone = ferzoo.backbones.ResNetBackbone.from_name(
    ...     "resnet18", image_shape=(48, 48, 3), stem="small"
    ... )
    >>> tuple(backbone(np.zeros((1, 48, 48, 3), "uint8")).shape)
    (1, 6, 6, 512)
    >>> tiny = ferzoo.backbones.ResNetBackbone(
    ...     image_shape=(32, 32, 3),
    ...     stackwise_num_filters=[8, 16],
    ...     stackwise_num_blocks=[1, 1],
    ...     block_type="bottleneck_block",
    ...     use_squeeze_excite=True,
    ...     stem_filters=8,
    ... )
    >>> tuple(tiny(np.zeros((2, 32, 32, 3), "uint8")).shape)
    (2, 4, 4, 64)

    Reference:
    - [He et al., Deep Residual Learning for Image Recognition, CVPR 2016](
      https://arxiv.org/abs/1512.03385)
    - [Hu et al., Squeeze-and-Excitation Networks, CVPR 2018](
      https://arxiv.org/abs/1709.01507)
    """

    standard_configs = RESNET_CONFIGS

    def __init__(
        self,
        image_shape=(224, 224, 3),
        stackwise_num_filters=(64, 128, 256, 512),
        stackwise_num_blocks=(2, 2, 2, 2),
        block_type="basic_block",
        use_squeeze_excite=False,
        stem="imagenet",
        stem_filters=64,
        caffe_style=False,
        dtype=None,
        **kwargs,
    ):
        image_shape = check_image_shape(image_shape)
        _check_stages(stackwise_num_filters, stackwise_num_blocks, stem_filters)
        if block_type not in ("basic_block", "bottleneck_block"):
            raise ValueError(
                '`block_type` must be "basic_block" or "bottleneck_block". '
                f"Received: block_type={block_type}"
            )
        if stem not in ("imagenet", "small"):
            raise ValueError(
                f'`stem` must be "imagenet" or "small". Received: stem={stem}'
            )

        # === Functional Model ===
        inputs = keras.Input(shape=image_shape, name="images")
        x = PixelNormalization(dtype=dtype, name="normalize")(inputs)
        if stem == "imagenet":
            x = _conv(x, stem_filters, 7, 2, "conv1_conv", dtype)
        else:
            x = _conv(x, stem_filters, 3, 1, "conv1_conv", dtype)
        x = _bn(x, "conv1_bn", dtype)
        x = keras.layers.ReLU(dtype=dtype, name="conv1_relu")(x)
        if stem == "imagenet":
            # Zero padding equals PyTorch's -inf padding after a ReLU; one
            # row and column at the end is `ceil_mode=True` without padding.
            pad = ((0, 1), (0, 1)) if caffe_style else 1
            x = keras.layers.ZeroPadding2D(pad, dtype=dtype, name="pool1_pad")(
                x
            )
            x = keras.layers.MaxPooling2D(
                3, strides=2, dtype=dtype, name="pool1_pool"
            )(x)
        if block_type == "basic_block":
            apply_block = _basic_block
        else:
            apply_block = functools.partial(
                _bottleneck_block, caffe_style=caffe_style
            )
        for stage, (filters, num_blocks) in enumerate(
            zip(stackwise_num_filters, stackwise_num_blocks)
        ):
            for block in range(num_blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                x = apply_block(
                    x,
                    filters,
                    stride,
                    use_squeeze_excite,
                    f"layer{stage + 1}_{block}",
                    dtype,
                )
        super().__init__(inputs=inputs, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.image_shape = image_shape
        self.stackwise_num_filters = [int(f) for f in stackwise_num_filters]
        self.stackwise_num_blocks = [int(n) for n in stackwise_num_blocks]
        self.block_type = block_type
        self.use_squeeze_excite = bool(use_squeeze_excite)
        self.stem = stem
        self.stem_filters = int(stem_filters)
        self.caffe_style = bool(caffe_style)

    @property
    def stage_output_names(self):
        """Names of the layers whose outputs end each stage, in order.

        Build a multi-scale feature extractor with
        `keras.Model(backbone.input, [backbone.get_layer(n).output for n
        in backbone.stage_output_names])`.
        """
        return [
            f"layer{s + 1}_{n - 1}_out"
            for s, n in enumerate(self.stackwise_num_blocks)
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "stackwise_num_filters": self.stackwise_num_filters,
                "stackwise_num_blocks": self.stackwise_num_blocks,
                "block_type": self.block_type,
                "use_squeeze_excite": self.use_squeeze_excite,
                "stem": self.stem,
                "stem_filters": self.stem_filters,
                "caffe_style": self.caffe_style,
            }
        )
        return config


def _check_stages(stackwise_num_filters, stackwise_num_blocks, stem_filters):
    filters, blocks = list(stackwise_num_filters), list(stackwise_num_blocks)
    if not filters or min(filters) < 1:
        raise ValueError(
            "`stackwise_num_filters` must be a non-empty list of positive "
            f"ints. Received: stackwise_num_filters={stackwise_num_filters}"
        )
    if len(blocks) != len(filters) or min(blocks) < 1:
        raise ValueError(
            "`stackwise_num_blocks` must be a list of positive ints, one per "
            "stage of `stackwise_num_filters`. "
            f"Received: stackwise_num_blocks={stackwise_num_blocks}"
        )
    if int(stem_filters) < 1:
        raise ValueError(
            "`stem_filters` must be a positive int. "
            f"Received: stem_filters={stem_filters}"
        )


def _torch_padding(x, kernel_size, stride, name, dtype):
    """PyTorch's `padding=kernel_size // 2` before a conv: `"same"`, or
    explicit zero padding and `"valid"` when strided (symmetric, as
    PyTorch pads). Returns the input and the conv's `padding`."""
    if stride > 1 and kernel_size > 1:
        x = keras.layers.ZeroPadding2D(
            kernel_size // 2, dtype=dtype, name=f"{name}_pad"
        )(x)
        return x, "valid"
    return x, "same"


def _conv(x, filters, kernel_size, stride, name, dtype, use_bias=False):
    """A conv padded like PyTorch's `padding=kernel_size // 2`; with
    `filters=None`, a depthwise conv."""
    x, padding = _torch_padding(x, kernel_size, stride, name, dtype)
    options = {
        "strides": stride,
        "padding": padding,
        "use_bias": use_bias,
        "dtype": dtype,
        "name": name,
    }
    if filters is None:
        layer = keras.layers.DepthwiseConv2D(kernel_size, **options)
    else:
        layer = keras.layers.Conv2D(filters, kernel_size, **options)
    return layer(x)


def _bn(x, name, dtype):
    return keras.layers.BatchNormalization(
        epsilon=BN_EPSILON, momentum=BN_MOMENTUM, dtype=dtype, name=name
    )(x)


def _squeeze_excite(x, name, dtype, use_bias=True):
    """Squeeze-and-excitation: pool, 1x1 conv (channels / 16), ReLU, 1x1
    conv, sigmoid gate (timm's convs have biases, insightface's none)."""
    channels = x.shape[-1]
    s = keras.layers.GlobalAveragePooling2D(
        keepdims=True, dtype=dtype, name=f"{name}_pool"
    )(x)
    s = keras.layers.Conv2D(
        max(1, channels // SE_REDUCTION),
        1,
        use_bias=use_bias,
        dtype=dtype,
        name=f"{name}_fc1",
    )(s)
    s = keras.layers.ReLU(dtype=dtype, name=f"{name}_relu")(s)
    s = keras.layers.Conv2D(
        channels, 1, use_bias=use_bias, dtype=dtype, name=f"{name}_fc2"
    )(s)
    s = keras.layers.Activation("sigmoid", dtype=dtype, name=f"{name}_gate")(s)
    return keras.layers.Multiply(dtype=dtype, name=f"{name}_scale")([x, s])


def _shortcut(x, out_channels, stride, name, dtype):
    if stride == 1 and x.shape[-1] == out_channels:
        return x
    x = _conv(x, out_channels, 1, stride, f"{name}_downsample_conv", dtype)
    return _bn(x, f"{name}_downsample_bn", dtype)


def _basic_block(x, filters, stride, use_squeeze_excite, name, dtype):
    shortcut = _shortcut(x, filters, stride, name, dtype)
    x = _conv(x, filters, 3, stride, f"{name}_conv1", dtype)
    x = _bn(x, f"{name}_bn1", dtype)
    x = keras.layers.ReLU(dtype=dtype, name=f"{name}_relu1")(x)
    x = _conv(x, filters, 3, 1, f"{name}_conv2", dtype)
    x = _bn(x, f"{name}_bn2", dtype)
    if use_squeeze_excite:
        x = _squeeze_excite(x, f"{name}_se", dtype)
    x = keras.layers.Add(dtype=dtype, name=f"{name}_add")([shortcut, x])
    return keras.layers.ReLU(dtype=dtype, name=f"{name}_out")(x)


def _bottleneck_block(
    x, filters, stride, use_squeeze_excite, name, dtype, caffe_style=False
):
    shortcut = _shortcut(x, 4 * filters, stride, name, dtype)
    stride1, stride3 = (stride, 1) if caffe_style else (1, stride)
    x = _conv(x, filters, 1, stride1, f"{name}_conv1", dtype)
    x = _bn(x, f"{name}_bn1", dtype)
    x = keras.layers.ReLU(dtype=dtype, name=f"{name}_relu1")(x)
    x = _conv(x, filters, 3, stride3, f"{name}_conv2", dtype)
    x = _bn(x, f"{name}_bn2", dtype)
    x = keras.layers.ReLU(dtype=dtype, name=f"{name}_relu2")(x)
    x = _conv(x, 4 * filters, 1, 1, f"{name}_conv3", dtype)
    x = _bn(x, f"{name}_bn3", dtype)
    if use_squeeze_excite:
        x = _squeeze_excite(x, f"{name}_se", dtype)
    x = keras.layers.Add(dtype=dtype, name=f"{name}_add")([shortcut, x])
    return keras.layers.ReLU(dtype=dtype, name=f"{name}_out")(x)
