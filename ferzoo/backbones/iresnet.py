import keras

from ferzoo.backbones.backbone import Backbone
from ferzoo.backbones.backbone import check_image_shape
from ferzoo.backbones.resnet import _bn
from ferzoo.backbones.resnet import _check_stages
from ferzoo.backbones.resnet import _conv
from ferzoo.backbones.resnet import _squeeze_excite
from ferzoo.layers.pixel_normalization import PixelNormalization

_FILTERS = [64, 128, 256, 512]
# Standard configurations (insightface / face.evoLVe `get_blocks`).
IRESNET_CONFIGS = {
    "ir18": {"stackwise_num_blocks": [2, 2, 2, 2]},
    "ir34": {"stackwise_num_blocks": [3, 4, 6, 3]},
    "ir50": {"stackwise_num_blocks": [3, 4, 14, 3]},
    "ir100": {"stackwise_num_blocks": [3, 13, 30, 3]},
    "ir152": {"stackwise_num_blocks": [3, 8, 36, 3]},
    "ir_se50": {
        "stackwise_num_blocks": [3, 4, 14, 3],
        "use_squeeze_excite": True,
    },
}
for _config in IRESNET_CONFIGS.values():
    _config["stackwise_num_filters"] = list(_FILTERS)


@keras.saving.register_keras_serializable(package="ferzoo")
class IResNetBackbone(Backbone):
    """Insightface "IR" / "IR-SE" ResNet (ArcFace's `Backbone_IR_50`).

    The face-recognition ResNet used by ArcFace ports and by FER models
    such as POSTER and ARBEx: a 3x3/1 conv + BN + PReLU stem, then
    `bottleneck_IR` units `BN -> 3x3 conv -> PReLU -> 3x3 conv (stride) ->
    BN [-> SE]`, added to a shortcut that is a `MaxPool(1, stride)` when
    the depth is unchanged and a 1x1 conv + BN otherwise. The first unit
    of every stage has stride 2, so 112x112 input gives 7x7x512 (IR-50).
    No output layer: the backbone returns the last feature map.
    `stage_output_names` gives each stage's last layer for multi-scale
    models (e.g. DWMCA).

    Layer names follow the PyTorch modules (`.` -> `_`): `input_layer_conv`
    / `_bn` / `_prelu` (`input_layer.0/1/2`); unit `i` of `body` is
    `body_{i}_res_bn1`, `_res_conv1`, `_res_prelu`, `_res_conv2`,
    `_res_bn2` (`body.{i}.res_layer.0` to `.4`), `body_{i}_se_fc1` /
    `_se_fc2` (`res_layer.5.fc1` / `.fc2`, no bias) and
    `body_{i}_shortcut_conv` / `_shortcut_bn` (`shortcut_layer.0/1`).

    Args:
        image_shape: tuple of 3 ints. Input `(height, width, 3)`; height
            and width may be `None`. Defaults to `(112, 112, 3)`.
        stackwise_num_filters: list of ints. Depth of each stage. Defaults
            to `[64, 128, 256, 512]`.
        stackwise_num_blocks: list of ints. Units in each stage. Defaults
            to `[3, 4, 14, 3]` (IR-50).
        use_squeeze_excite: bool. Use `bottleneck_IR_SE` units (IR-SE).
            Defaults to `False`.
        stem_filters: int. Filters of the stem conv. Defaults to `64`.
        dtype: string or `keras.DTypePolicy`. Defaults to the global
            policy.

    Example:
    >>> import keras
    >>> import numpy as np
    >>> backbone = ferzoo.backbones.IResNetBackbone(
    ...     image_shape=(32, 32, 3),
    ...     stackwise_num_filters=[8, 16, 32],
    ...     stackwise_num_blocks=[1, 2, 1],
    ...     stem_filters=8,
    ... )
    >>> tuple(backbone(np.zeros((2, 32, 32, 3), "uint8")).shape)
    (2, 4, 4, 32)
    >>> multi = keras.Model(
    ...     backbone.input,
    ...     [backbone.get_layer(n).output
    ...      for n in backbone.stage_output_names],
    ... )
    >>> [tuple(y.shape) for y in multi(np.zeros((2, 32, 32, 3)))]
    [(2, 16, 16, 8), (2, 8, 8, 16), (2, 4, 4, 32)]

    Reference:
    - [Deng et al., ArcFace: Additive Angular Margin Loss for Deep Face
      Recognition, CVPR 2019](https://arxiv.org/abs/1801.07698)
    - [Zheng et al., POSTER: A Pyramid Cross-Fusion Transformer Network
      for Facial Expression Recognition, 2022](
      https://arxiv.org/abs/2204.04083)
    """

    standard_configs = IRESNET_CONFIGS

    def __init__(
        self,
        image_shape=(112, 112, 3),
        stackwise_num_filters=(64, 128, 256, 512),
        stackwise_num_blocks=(3, 4, 14, 3),
        use_squeeze_excite=False,
        stem_filters=64,
        dtype=None,
        **kwargs,
    ):
        image_shape = check_image_shape(image_shape)
        _check_stages(stackwise_num_filters, stackwise_num_blocks, stem_filters)

        # === Functional Model ===
        inputs = keras.Input(shape=image_shape, name="images")
        x = PixelNormalization(dtype=dtype, name="normalize")(inputs)
        x = _conv(x, stem_filters, 3, 1, "input_layer_conv", dtype)
        x = _bn(x, "input_layer_bn", dtype)
        x = _prelu(x, "input_layer_prelu", dtype)
        unit = 0
        for depth, num_units in zip(
            stackwise_num_filters, stackwise_num_blocks
        ):
            for i in range(num_units):
                x = _bottleneck_ir(
                    x,
                    depth,
                    2 if i == 0 else 1,
                    use_squeeze_excite,
                    f"body_{unit}",
                    dtype,
                )
                unit += 1
        super().__init__(inputs=inputs, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.image_shape = image_shape
        self.stackwise_num_filters = [int(f) for f in stackwise_num_filters]
        self.stackwise_num_blocks = [int(n) for n in stackwise_num_blocks]
        self.use_squeeze_excite = bool(use_squeeze_excite)
        self.stem_filters = int(stem_filters)

    @property
    def stage_output_names(self):
        """Names of the layers whose outputs end each stage, in order.

        For IR-50 at 112 px these give 56x56x64, 28x28x128, 14x14x256 and
        7x7x512 maps. Build a multi-scale extractor with
        `keras.Model(backbone.input, [backbone.get_layer(n).output for n
        in backbone.stage_output_names])`.
        """
        names, unit = [], 0
        for num_units in self.stackwise_num_blocks:
            unit += num_units
            names.append(f"body_{unit - 1}_add")
        return names

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "stackwise_num_filters": self.stackwise_num_filters,
                "stackwise_num_blocks": self.stackwise_num_blocks,
                "use_squeeze_excite": self.use_squeeze_excite,
                "stem_filters": self.stem_filters,
            }
        )
        return config


def _prelu(x, name, dtype):
    """PyTorch's `PReLU(channels)`: one slope per channel, 0.25 at init."""
    return keras.layers.PReLU(
        alpha_initializer=keras.initializers.Constant(0.25),
        shared_axes=[1, 2],
        dtype=dtype,
        name=name,
    )(x)


def _bottleneck_ir(x, depth, stride, use_squeeze_excite, name, dtype):
    if x.shape[-1] == depth:
        shortcut = keras.layers.MaxPooling2D(
            1, strides=stride, dtype=dtype, name=f"{name}_shortcut_pool"
        )(x)
    else:
        shortcut = _conv(x, depth, 1, stride, f"{name}_shortcut_conv", dtype)
        shortcut = _bn(shortcut, f"{name}_shortcut_bn", dtype)
    r = _bn(x, f"{name}_res_bn1", dtype)
    r = _conv(r, depth, 3, 1, f"{name}_res_conv1", dtype)
    r = _prelu(r, f"{name}_res_prelu", dtype)
    r = _conv(r, depth, 3, stride, f"{name}_res_conv2", dtype)
    r = _bn(r, f"{name}_res_bn2", dtype)
    if use_squeeze_excite:
        r = _squeeze_excite(r, f"{name}_se", dtype, use_bias=False)
    return keras.layers.Add(dtype=dtype, name=f"{name}_add")([r, shortcut])
