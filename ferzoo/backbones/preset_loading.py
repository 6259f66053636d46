"""Build a backbone from a preset (`Backbone.from_preset`).

`ferzoo.presets` reads the files; this module builds the backbone and
loads its weights. It imports nothing from `ferzoo.models`: a model
preset's weights load through its model, which Keras builds from the
registry (`ferzoo._register_classes` fills it).
"""

import ferzoo
from ferzoo import presets as preset_utils
from ferzoo.errors import PresetError


def load_backbone(cls, preset, load_weights=None, overrides=None):
    """Build the backbone of a preset (a backbone or a model preset)."""
    folder = preset_utils.resolve_preset(preset)
    config = preset_utils.read_json(folder / preset_utils.CONFIG_FILE)
    is_model = "backbone" in config.get("config", {})
    backbone_config = config["config"]["backbone"] if is_model else config
    if not preset_utils.matches_class(backbone_config, cls):
        raise PresetError(
            f"Preset {str(preset)!r} has a "
            f"{backbone_config.get('class_name', '?')} backbone, not a "
            f"{cls.__name__}."
        )
    backbone_config["config"].update(overrides or {})
    backbone = preset_utils.deserialize(backbone_config, folder)
    weights = preset_utils.weights_path(folder, load_weights)
    # A dtype policy changes no weight: the preset's still load.
    reshaped = {k for k in overrides or {} if k != "dtype"}
    if weights is not None and not reshaped:
        if is_model:
            # The model's class must be registered to build it.
            ferzoo._register_classes()
            source = preset_utils.deserialize(
                preset_utils.read_json(folder / preset_utils.CONFIG_FILE),
                folder,
            )
            source.load_weights(weights)
            backbone.set_weights(source.backbone.get_weights())
        else:
            backbone.load_weights(weights)
    return backbone
