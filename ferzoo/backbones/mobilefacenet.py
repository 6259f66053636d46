import keras

from ferzoo.backbones.backbone import Backbone
from ferzoo.backbones.backbone import check_image_shape
from ferzoo.backbones.iresnet import _prelu
from ferzoo.backbones.resnet import _bn
from ferzoo.backbones.resnet import _conv
from ferzoo.layers.pixel_normalization import PixelNormalization


@keras.saving.register_keras_serializable(package="ferzoo")
class MobileFaceNetBackbone(Backbone):
    """MobileFaceNet: a MobileNetV2-style face network with PReLU.

    A 3x3/2 conv and a 3x3 depthwise conv (each + BN + PReLU), then stages
    of inverted-residual bottlenecks (1x1 expand + BN + PReLU, 3x3
    depthwise (stride) + BN + PReLU, 1x1 linear projection + BN; a
    residual add when the stride is 1 and the width is unchanged; the
    first block of a stage takes its stride), then a 1x1 conv + BN + PReLU.
    The default config is the paper's table: 112x112 input gives
    7x7x512, the map before the global depthwise conv (GDC) and the
    linear embedding, which are left out. `width_multiplier` and the
    stage lists give tiny variants.

    Layer names follow the PyTorch port by TreB1eN (`.` -> `_`):
    `conv1_conv` / `_bn` / `_prelu`, `conv2_dw_*` and `conv_6_sep_*`.
    Block `b` of stage `s` is `stage{s}_{b}_expand_*` (`Depth_Wise.conv`),
    `stage{s}_{b}_dw_*` (`.conv_dw`) and `stage{s}_{b}_project_*`
    (`.project`); with the default config stage 1 holds `conv_23` and
    `conv_3`, stage 2 `conv_34`, stage 3 `conv_4`, stage 4 `conv_45` and
    stage 5 `conv_5`.

    Args:
        image_shape: tuple of 3 ints. Input `(height, width, 3)`; height
            and width may be `None`. Defaults to `(112, 112, 3)`.
        stackwise_expansion: list of ints. Expansion factor `t` of each
            stage (the expanded width is `t` times the block's input
            width). Defaults to `[2, 4, 2, 4, 2]`.
        stackwise_num_filters: list of ints. Output width `c` of each
            stage. Defaults to `[64, 128, 128, 128, 128]`.
        stackwise_num_blocks: list of ints. Blocks `n` in each stage.
            Defaults to `[5, 1, 6, 1, 2]`.
        stackwise_strides: list of ints. Stride `s` of each stage's first
            block, 1 or 2. Defaults to `[2, 2, 1, 2, 1]`.
        stem_filters: int. Width of the two stem convs. Defaults to `64`.
        output_filters: int. Width of the final 1x1 conv. Defaults to
            `512`.
        width_multiplier: float. Scales every width above (rounded to a
            multiple of 8, at least 8). Defaults to `1.0`.
        dtype: string or `keras.DTypePolicy`. Defaults to the global
            policy.

    Example:
    >>> import numpy as np
    >>> backbone = ferzoo.backbones.MobileFaceNetBackbone(
    ...     image_shape=(32, 32, 3),
    ...     stackwise_num_blocks=[1, 1, 1, 1, 1],
    ...     width_multiplier=0.25,
    ... )
    >>> tuple(backbone(np.zeros((2, 32, 32, 3), "uint8")).shape)
    (2, 2, 2, 128)

    Reference:
    - [Chen et al., MobileFaceNets: Efficient CNNs for Accurate Real-Time
      Face Verification on Mobile Devices, CCBR 2018](
      https://arxiv.org/abs/1804.07573)
    """

    def __init__(
        self,
        image_shape=(112, 112, 3),
        stackwise_expansion=(2, 4, 2, 4, 2),
        stackwise_num_filters=(64, 128, 128, 128, 128),
        stackwise_num_blocks=(5, 1, 6, 1, 2),
        stackwise_strides=(2, 2, 1, 2, 1),
        stem_filters=64,
        output_filters=512,
        width_multiplier=1.0,
        dtype=None,
        **kwargs,
    ):
        image_shape = check_image_shape(image_shape)
        stages = {
            "stackwise_expansion": stackwise_expansion,
            "stackwise_num_filters": stackwise_num_filters,
            "stackwise_num_blocks": stackwise_num_blocks,
            "stackwise_strides": stackwise_strides,
        }
        _check_config(stages, stem_filters, output_filters, width_multiplier)

        def width(channels):
            return max(8, int(round(channels * width_multiplier / 8)) * 8)

        # === Functional Model ===
        inputs = keras.Input(shape=image_shape, name="images")
        x = PixelNormalization(dtype=dtype, name="normalize")(inputs)
        x = _conv(x, width(stem_filters), 3, 2, "conv1_conv", dtype)
        x = _bn(x, "conv1_bn", dtype)
        x = _prelu(x, "conv1_prelu", dtype)
        x = _depthwise(x, 1, "conv2_dw_conv", dtype)
        x = _bn(x, "conv2_dw_bn", dtype)
        x = _prelu(x, "conv2_dw_prelu", dtype)
        stage_output_names = []
        for s, (t, c, n, stride) in enumerate(
            zip(*[list(v) for v in stages.values()])
        ):
            for b in range(n):
                x, last_name = _inverted_residual(
                    x,
                    width(c),
                    t,
                    stride if b == 0 else 1,
                    f"stage{s + 1}_{b}",
                    dtype,
                )
            stage_output_names.append(last_name)
        x = _conv(x, width(output_filters), 1, 1, "conv_6_sep_conv", dtype)
        x = _bn(x, "conv_6_sep_bn", dtype)
        x = _prelu(x, "conv_6_sep_prelu", dtype)
        super().__init__(inputs=inputs, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.image_shape = image_shape
        self.stackwise_expansion = [int(v) for v in stackwise_expansion]
        self.stackwise_num_filters = [int(v) for v in stackwise_num_filters]
        self.stackwise_num_blocks = [int(v) for v in stackwise_num_blocks]
        self.stackwise_strides = [int(v) for v in stackwise_strides]
        self.stem_filters = int(stem_filters)
        self.output_filters = int(output_filters)
        self.width_multiplier = float(width_multiplier)
        self._stage_output_names = stage_output_names

    @property
    def stage_output_names(self):
        """Names of the layers whose outputs end each stage, in order.

        Build a multi-scale extractor with `keras.Model(backbone.input,
        [backbone.get_layer(n).output for n in
        backbone.stage_output_names])`.
        """
        return list(self._stage_output_names)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "stackwise_expansion": self.stackwise_expansion,
                "stackwise_num_filters": self.stackwise_num_filters,
                "stackwise_num_blocks": self.stackwise_num_blocks,
                "stackwise_strides": self.stackwise_strides,
                "stem_filters": self.stem_filters,
                "output_filters": self.output_filters,
                "width_multiplier": self.width_multiplier,
            }
        )
        return config


def _check_config(stages, stem_filters, output_filters, width_multiplier):
    """Raise a `ValueError` naming the first bad argument."""
    for arg, value in stages.items():
        if not value or min(value) < 1:
            raise ValueError(
                f"`{arg}` must be a non-empty list of positive ints. "
                f"Received: {arg}={value}"
            )
        if len(value) != len(stages["stackwise_num_filters"]):
            raise ValueError(
                f"`{arg}` must have one entry per stage, as many as "
                "`stackwise_num_filters`. "
                f"Received: {arg}={value}, "
                f"stackwise_num_filters={stages['stackwise_num_filters']}"
            )
    if max(stages["stackwise_strides"]) > 2:
        raise ValueError(
            "`stackwise_strides` must hold 1s and 2s. "
            f"Received: stackwise_strides={stages['stackwise_strides']}"
        )
    for arg, value in (
        ("stem_filters", stem_filters),
        ("output_filters", output_filters),
        ("width_multiplier", width_multiplier),
    ):
        if not value > 0:
            raise ValueError(
                f"`{arg}` must be positive. Received: {arg}={value}"
            )


def _depthwise(x, stride, name, dtype):
    """A 3x3 depthwise conv padded like PyTorch's `padding=1`."""
    return _conv(x, None, 3, stride, name, dtype)


def _inverted_residual(x, filters, expansion, stride, name, dtype):
    """Returns the block's output and the name of its last layer."""
    in_channels = x.shape[-1]
    y = _conv(x, in_channels * expansion, 1, 1, f"{name}_expand_conv", dtype)
    y = _bn(y, f"{name}_expand_bn", dtype)
    y = _prelu(y, f"{name}_expand_prelu", dtype)
    y = _depthwise(y, stride, f"{name}_dw_conv", dtype)
    y = _bn(y, f"{name}_dw_bn", dtype)
    y = _prelu(y, f"{name}_dw_prelu", dtype)
    y = _conv(y, filters, 1, 1, f"{name}_project_conv", dtype)
    y = _bn(y, f"{name}_project_bn", dtype)
    if stride == 1 and in_channels == filters:
        y = keras.layers.Add(dtype=dtype, name=f"{name}_add")([x, y])
        return y, f"{name}_add"
    return y, f"{name}_project_bn"
