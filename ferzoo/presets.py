"""Resolve, read and save presets.

A preset is a folder with `config.json` (the serialized model or
backbone), `metadata.json` (description, paper, recipe, noise protocol,
results) and, optionally, `model.weights.h5`. Built-in presets live in the
repository's `presets/` folder and ship in the wheel as `ferzoo/_presets`.
A training output folder is a preset too. Nothing is ever downloaded.

This module knows files and configs only: it imports neither
`ferzoo.backbones` nor `ferzoo.models`. Building a model or a backbone
from a preset is `ferzoo.models.preset_loading` and
`ferzoo.backbones.preset_loading` (`from_preset` calls them).
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


def builtin_preset_dir():
    """The folder that holds the built-in presets."""
    here = pathlib.Path(__file__).resolve().parent
    for candidate in (here / "_presets", here.parent / "presets"):
        if candidate.is_dir():
            return candidate
    return here / "_presets"


def read_json(path):
    """Read a preset's JSON file; malformed JSON is a `PresetError`."""
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

    Classes are matched through Keras' registry, which the filter class's
    own package fills on import; listing without a filter reads no class.
    """
    out = {}
    root = builtin_preset_dir()
    if not root.is_dir():
        return out
    for folder in sorted(root.iterdir()):
        if not (folder / CONFIG_FILE).is_file():
            continue
        config = read_json(folder / CONFIG_FILE)
        if model_cls is not None and not matches_class(config, model_cls):
            continue
        if backbone_cls is not None:
            inner = config.get("config", {}).get("backbone", config)
            if not matches_class(inner, backbone_cls):
                continue
        meta_path = folder / METADATA_FILE
        out[folder.name] = read_json(meta_path) if meta_path.is_file() else {}
    return out


def registered_class(config):
    """The class a serialized `config` names, from Keras' registry.

    ferzoo's classes register when `ferzoo.backbones` and `ferzoo.models`
    are imported; this module imports neither. A caller that matches
    against a class has imported that class's package.
    """
    name = config.get("registered_name") or config.get("class_name")
    cls = keras.saving.get_registered_object(name)
    if cls is None:
        cls = keras.saving.get_registered_object(f"ferzoo>{name}")
    return cls


def matches_class(config, cls):
    """Whether `config` serializes `cls` or a subclass of it."""
    found = registered_class(config)
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
    return read_json(path) if path.is_file() else {}


def weights_path(folder, load_weights):
    """The preset's weights file to load, or None (see `from_preset`)."""
    path = folder / WEIGHTS_FILE
    if load_weights is True and not path.is_file():
        raise PresetError(
            f"{folder}: `load_weights=True` but there is no `{WEIGHTS_FILE}` "
            "(ferzoo downloads nothing; put trained weights there)."
        )
    if load_weights is False or not path.is_file():
        return None
    return path


def deserialize(config, source):
    """Build the object of `config`; a bad config is a `PresetError`."""
    try:
        return keras.saving.deserialize_keras_object(config)
    except TypeError as e:
        raise PresetError(f"{source}: cannot build the preset: {e}") from e


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
