"""Build a model from a preset (`NoisyLabelClassifier.from_preset`).

`ferzoo.presets` reads the files; this module builds the model, applies
config overrides and loads the weights (keeping the backbone's when the
head or the per-sample tables change size).

`dtype` (a dtype policy, e.g. `"mixed_bfloat16"`) goes to every backbone
of the model, as keras-hub's `from_preset(dtype=...)` does: the heads
take their backbone's policy, and the weights load as saved.
"""

from ferzoo import presets as preset_utils
from ferzoo.backbones.backbone import Backbone
from ferzoo.errors import PresetError

# Model arguments that a preset may be given even if its config lacks them.
BACKBONE_OVERRIDES = ("image_shape",)


def load_model(cls, preset, load_weights=None, overrides=None):
    """Build the model of a preset, with `overrides` of its config."""
    folder = preset_utils.resolve_preset(preset)
    config = preset_utils.read_json(folder / preset_utils.CONFIG_FILE)
    found = preset_utils.registered_class(config)
    if found is None or not issubclass(found, cls):
        names = ", ".join(preset_utils.list_presets(cls)) or "none"
        raise PresetError(
            f"Preset {str(preset)!r} holds a "
            f"{config.get('class_name', '?')}, not a {cls.__name__}. "
            f"{cls.__name__} presets: {names}."
        )
    overrides = dict(overrides or {})
    inner = config["config"]
    dtype = overrides.pop("dtype", None)
    if dtype is not None:
        set_backbone_dtype(inner, dtype)
    backbone_over = {
        k: overrides.pop(k) for k in BACKBONE_OVERRIDES if k in overrides
    }
    if backbone_over:
        if "backbone" not in inner:
            inner.update(backbone_over)
        else:
            inner["backbone"]["config"].update(backbone_over)
    original = {k: inner.get(k) for k in overrides}
    inner.update(overrides)
    model = preset_utils.deserialize(config, folder)
    weights = preset_utils.weights_path(folder, load_weights)
    if weights is None:
        return model
    if not backbone_over and all(
        original[k] == overrides[k]
        for k in ("num_classes", "num_samples")
        if k in overrides
    ):
        model.load_weights(weights)
        return model
    # A new head or table size: load the preset as saved, keep its backbone.
    source_config = preset_utils.read_json(folder / preset_utils.CONFIG_FILE)
    source = preset_utils.deserialize(source_config, folder)
    source.load_weights(weights)
    for target, origin in zip(_backbones(model), _backbones(source)):
        target.set_weights(origin.get_weights())
    return model


def set_backbone_dtype(inner, dtype):
    """Give every backbone config in a model's `inner` config `dtype`."""
    for value in inner.values():
        if isinstance(value, dict) and str(value.get("module", "")).startswith(
            "ferzoo.backbones"
        ):
            value["config"]["dtype"] = dtype


def _backbones(model):
    """The model's backbones (a method may have two streams), in order."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=False)
        if isinstance(layer, Backbone)
    ]
