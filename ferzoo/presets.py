"""Resolve, load and save presets.

A preset is a folder with `config.json` (the serialized model or
backbone), `metadata.json` (description, paper, recipe, noise protocol,
results) and, optionally, `model.weights.h5`. Built-in presets live in the
repository's `presets/` folder and ship in the wheel as `ferzoo/_presets`.
A training output folder is a preset too. Nothing is ever downloaded.
"""

import datetime
import json
import os
import pathlib

import keras

from ferzoo.errors import PresetError
from ferzoo.version import __version__

CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "model.weights.h5"

# Model arguments that a preset may be given even if its config lacks them.
BACKBONE_OVERRIDES = ("image_shape",)


def builtin_preset_dir():
    """The folder that holds the built-in presets."""
    here = pathlib.Path(__file__).resolve().parent
    for candidate in (here / "_presets", here.parent / "presets"):
        if candidate.is_dir():
            return candidate
    return here / "_presets"


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise PresetError(f"{path}, line {e.lineno}: invalid JSON ({e.msg}).")


def list_presets(model_cls=None, backbone_cls=None):
    """Built-in presets as `{name: metadata}`, optionally filtered by class.

    Args:
        model_cls: class or None. Keep presets whose model is this class
            (or a subclass).
        backbone_cls: class or None. Keep presets whose backbone is this
            class (or a subclass).
    """
    out = {}
    root = builtin_preset_dir()
    if not root.is_dir():
        return out
    for folder in sorted(root.iterdir()):
        if not (folder / CONFIG_FILE).is_file():
            continue
        config = _read_json(folder / CONFIG_FILE)
        if model_cls is not None and not _matches(config, model_cls):
            continue
        if backbone_cls is not None:
            inner = config.get("config", {}).get("backbone", config)
            if not _matches(inner, backbone_cls):
                continue
        meta_path = folder / METADATA_FILE
        out[folder.name] = _read_json(meta_path) if meta_path.is_file() else {}
    return out


def _registered_class(config):
    # Importing the packages registers every ferzoo class with Keras.
    import ferzoo.backbones  # noqa: F401
    import ferzoo.models  # noqa: F401

    name = config.get("registered_name") or config.get("class_name")
    cls = keras.saving.get_registered_object(name)
    if cls is None:
        cls = keras.saving.get_registered_object(f"ferzoo>{name}")
    return cls


def _matches(config, cls):
    found = _registered_class(config)
    return found is not None and issubclass(found, cls)


def resolve_preset(preset):
    """Return the folder of `preset`: a built-in name or a local folder."""
    if not isinstance(preset, (str, os.PathLike)):
        raise PresetError(
            "`preset` must be a built-in preset name or a local folder. "
            f"Received: preset={preset!r}"
        )
    path = pathlib.Path(preset).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise PresetError(
                f"{path}: a preset folder needs `{CONFIG_FILE}` (and "
                f"usually `{METADATA_FILE}`); none found."
            )
        return path
    builtin = builtin_preset_dir() / str(preset)
    if "/" not in str(preset) and (builtin / CONFIG_FILE).is_file():
        return builtin
    names = ", ".join(list_presets()) or "(none installed)"
    raise PresetError(
        f"Unknown preset {str(preset)!r}. Pass a built-in name or a local "
        f"preset folder. Built-in presets: {names}. Received: preset={preset!r}"
    )


def load_metadata(preset):
    path = resolve_preset(preset) / METADATA_FILE
    return _read_json(path) if path.is_file() else {}


def _weights_path(folder, load_weights):
    path = folder / WEIGHTS_FILE
    if load_weights is True and not path.is_file():
        raise PresetError(
            f"{folder}: `load_weights=True` but there is no `{WEIGHTS_FILE}` "
            "(ferzoo downloads nothing; put trained weights there)."
        )
    if load_weights is False or not path.is_file():
        return None
    return path


def _deserialize(config, source):
    try:
        return keras.saving.deserialize_keras_object(config)
    except TypeError as e:
        raise PresetError(f"{source}: cannot build the preset: {e}") from e


def load_model(cls, preset, load_weights=None, overrides=None):
    """Build the model of a preset, with `overrides` of its config."""
    folder = resolve_preset(preset)
    config = _read_json(folder / CONFIG_FILE)
    found = _registered_class(config)
    if found is None or not issubclass(found, cls):
        raise PresetError(
            f"Preset {str(preset)!r} holds a "
            f"{config.get('class_name', '?')}, not a {cls.__name__}. "
            f"{cls.__name__} presets: {', '.join(list_presets(cls)) or 'none'}."
        )
    overrides = dict(overrides or {})
    inner = config["config"]
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
    model = _deserialize(config, folder)
    weights = _weights_path(folder, load_weights)
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
    source_config = _read_json(folder / CONFIG_FILE)
    source = _deserialize(source_config, folder)
    source.load_weights(weights)
    for target, origin in zip(_backbones(model), _backbones(source)):
        target.set_weights(origin.get_weights())
    return model


def _backbones(model):
    """The model's backbones (a method may have two streams), in order."""
    from ferzoo.backbones.backbone import Backbone

    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=False)
        if isinstance(layer, Backbone)
    ]


def load_backbone(cls, preset, load_weights=None, overrides=None):
    """Build the backbone of a preset (a backbone or a model preset)."""
    folder = resolve_preset(preset)
    config = _read_json(folder / CONFIG_FILE)
    is_model = "backbone" in config.get("config", {})
    backbone_config = config["config"]["backbone"] if is_model else config
    if not _matches(backbone_config, cls):
        raise PresetError(
            f"Preset {str(preset)!r} has a "
            f"{backbone_config.get('class_name', '?')} backbone, not a "
            f"{cls.__name__}."
        )
    backbone_config["config"].update(overrides or {})
    backbone = _deserialize(backbone_config, folder)
    weights = _weights_path(folder, load_weights)
    if weights is not None and not overrides:
        if is_model:
            source = _deserialize(_read_json(folder / CONFIG_FILE), folder)
            source.load_weights(weights)
            backbone.set_weights(source.backbone.get_weights())
        else:
            backbone.load_weights(weights)
    return backbone


def save_to_preset(model, preset_dir, metadata=None, save_weights=True):
    """Write a preset folder: `config.json`, `metadata.json`, weights.

    Args:
        model: a ferzoo model or backbone.
        preset_dir: str or path. Created if missing.
        metadata: dict or None. Merged into the generated metadata
            (description, paper, recipe, noise, results, ...).
        save_weights: bool. Write `model.weights.h5`. Defaults to `True`.
    """
    folder = pathlib.Path(preset_dir)
    folder.mkdir(parents=True, exist_ok=True)
    config = keras.saving.serialize_keras_object(model)
    _atomic_write_text(folder / CONFIG_FILE, json.dumps(config, indent=2))
    meta = {
        "ferzoo_version": __version__,
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "parameter_count": int(model.count_params()),
        "date_saved": datetime.date.today().isoformat(),
    }
    meta.update(metadata or {})
    _atomic_write_text(folder / METADATA_FILE, json.dumps(meta, indent=2))
    if save_weights:
        tmp = folder / ("tmp_" + WEIGHTS_FILE)
        model.save_weights(tmp)
        os.replace(tmp, folder / WEIGHTS_FILE)


def _atomic_write_text(path, text):
    tmp = pathlib.Path(str(path) + ".tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)
