import keras

from ferzoo import presets as preset_utils
from ferzoo.backbones import preset_loading


def check_image_shape(image_shape):
    """`image_shape` as a tuple; a `ValueError` unless it is `(h, w, 3)`."""
    image_shape = tuple(image_shape)
    if len(image_shape) != 3 or image_shape[-1] != 3:
        raise ValueError(
            "`image_shape` must be (height, width, 3): ferzoo backbones take "
            f"RGB pixels. Received: image_shape={image_shape}"
        )
    return image_shape


class FlatConfig:
    """`get_config` / `from_config` of a functional model that its
    constructor rebuilds: the config holds the constructor's arguments
    (subclasses add theirs to `super().get_config()`), never the nested
    functional graph, and `from_config(config)` is `cls(**config)`."""

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "dtype" in config and isinstance(config["dtype"], dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="ferzoo")
class Backbone(FlatConfig, keras.Model):
    """Base class of ferzoo backbones: a functional feature extractor.

    A backbone takes RGB pixels in [0, 255] (uint8 or float, shape
    `image_shape`), normalises them with its first layer
    (`PixelNormalization`) and returns its last feature map,
    `(batch, h, w, num_features)`, channels last. Subclasses build their
    functional graph in `__init__` and list every constructor argument in
    `get_config()`, so `from_config(config)` is `cls(**config)`.

    Args:
        dtype: string or `keras.DTypePolicy`. The dtype policy of the
            backbone's layers. Defaults to the global policy.
    """

    def __init__(self, *args, dtype=None, **kwargs):
        super().__init__(*args, dtype=dtype, **kwargs)
        if dtype is not None:
            # A functional model drops `dtype`; keep it (as keras-hub's
            # `Backbone` does) for the heads and `get_config`.
            self.dtype_policy = keras.dtype_policies.get(dtype)

    # Standard configurations by name, for `from_name`; set by subclasses.
    standard_configs = {}

    @classmethod
    def from_name(cls, name, **kwargs):
        """Build a standard configuration by name; `kwargs` override it.

        Args:
            name: str. A key of `cls.standard_configs` (e.g. `"resnet18"`
                for `ResNetBackbone`, `"ir50"` for `IResNetBackbone`).
            **kwargs: other constructor arguments, e.g. `image_shape`.
        """
        if name not in cls.standard_configs:
            raise ValueError(
                f"`name` must be one of {sorted(cls.standard_configs)}. "
                f"Received: name={name}"
            )
        return cls(**{**cls.standard_configs[name], **kwargs})

    @property
    def num_features(self):
        """Number of channels of the output feature map."""
        return int(self.output.shape[-1])

    @classmethod
    def presets(cls):
        """Built-in preset names whose backbone is of this class."""
        return preset_utils.list_presets(backbone_cls=cls)

    @classmethod
    def from_preset(cls, preset, load_weights=None, **kwargs):
        """Build a backbone from a built-in preset name or a local folder.

        A model preset gives its backbone. `kwargs` override the backbone's
        config (for example `image_shape`).

        Args:
            preset: str. A built-in preset name (`ferzoo.list_presets()`)
                or a local preset folder.
            load_weights: bool or None. `None` loads `model.weights.h5`
                when the preset has one, `True` requires it, `False`
                skips it. Defaults to `None`.
            **kwargs: overrides of the backbone config.
        """
        return preset_loading.load_backbone(cls, preset, load_weights, kwargs)

    def save_to_preset(self, preset_dir, metadata=None):
        """Write `config.json`, `metadata.json` and weights to a folder."""
        preset_utils.save_to_preset(self, preset_dir, metadata)
