import keras

from ferzoo.backbones.backbone import Backbone
from ferzoo.backbones.backbone import check_image_shape
from ferzoo.backbones.resnet import _bn
from ferzoo.backbones.resnet import _conv
from ferzoo.layers.pixel_normalization import PixelNormalization


@keras.saving.register_keras_serializable(package="ferzoo")
class SmallCNNBackbone(Backbone):
    """A small VGG-style CNN for 48x48 faces (FER2013) and CPU runs.

    Each stage is `num_convs_per_stage` 3x3 conv + batch norm + ReLU
    layers followed by 2x2 max pooling (none after the last stage). Tiny
    configurations train in seconds on a CPU and are what the tests and
    the embedded default use.

    Args:
        image_shape: tuple of 3 ints. Input `(height, width, 3)`; height
            and width may be `None`. Defaults to `(48, 48, 3)`.
        stackwise_num_filters: list of ints. Filters of each stage.
            Defaults to `[32, 64, 128]`.
        num_convs_per_stage: int. Conv layers in each stage. Defaults
            to `2`.
        dtype: string or `keras.DTypePolicy`. Defaults to the global
            policy.

    Example:
    >>> import numpy as np
    >>> backbone = ferzoo.backbones.SmallCNNBackbone(image_shape=(48, 48, 3))
    >>> tuple(backbone(np.zeros((2, 48, 48, 3), "uint8")).shape)
    (2, 12, 12, 128)
    """

    def __init__(
        self,
        image_shape=(48, 48, 3),
        stackwise_num_filters=(32, 64, 128),
        num_convs_per_stage=2,
        dtype=None,
        **kwargs,
    ):
        image_shape = check_image_shape(image_shape)
        if not stackwise_num_filters or min(stackwise_num_filters) < 1:
            raise ValueError(
                "`stackwise_num_filters` must be a non-empty list of positive "
                f"ints. Received: stackwise_num_filters={stackwise_num_filters}"
            )
        if num_convs_per_stage < 1:
            raise ValueError(
                "`num_convs_per_stage` must be >= 1. "
                f"Received: num_convs_per_stage={num_convs_per_stage}"
            )

        # === Functional Model ===
        inputs = keras.Input(shape=image_shape, name="images")
        x = PixelNormalization(dtype=dtype, name="normalize")(inputs)
        last = len(stackwise_num_filters) - 1
        for stage, filters in enumerate(stackwise_num_filters):
            for i in range(num_convs_per_stage):
                prefix = f"stage{stage + 1}_conv{i + 1}"
                x = _conv(x, filters, 3, 1, f"{prefix}_conv", dtype)
                x = _bn(x, f"{prefix}_bn", dtype)
                x = keras.layers.ReLU(dtype=dtype, name=f"{prefix}_relu")(x)
            if stage != last:
                x = keras.layers.MaxPooling2D(
                    2, dtype=dtype, name=f"stage{stage + 1}_pool"
                )(x)
        super().__init__(inputs=inputs, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.image_shape = image_shape
        self.stackwise_num_filters = [int(f) for f in stackwise_num_filters]
        self.num_convs_per_stage = int(num_convs_per_stage)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "stackwise_num_filters": self.stackwise_num_filters,
                "num_convs_per_stage": self.num_convs_per_stage,
            }
        )
        return config
