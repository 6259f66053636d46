"""Evaluate a model, checkpoint or run on a data split, and load any of
them (`ferzoo-eval`)."""

import json
import pathlib

import keras
import numpy as np

from ferzoo import metrics
from ferzoo import presets as preset_utils
from ferzoo.errors import PresetError
from ferzoo.errors import UsageError
from ferzoo.spec import RunSpec
from ferzoo.training.checkpoints import load_checkpoint


def evaluate(
    model_or_path,
    data=None,
    split="test",
    batch_size=64,
    image_size=None,
    on_error="raise",
    allow_untrained=False,
):
    """Classification report of a model (or checkpoint/preset) on a split.

    Args:
        model_or_path: a model, a `.keras` file, or a preset name or
            folder (a training output folder is one).
        data: str or None. The data spec; `None` takes the data set the
            model was trained on, from its run's `metadata.json`.
        split: str. Defaults to `"test"`.
        batch_size: int. Defaults to `64`.
        image_size: int or None. Defaults to the model's input size.
        on_error: str. `"raise"` or `"skip"` bad samples.
        allow_untrained: bool. Accept a preset without trained weights
            (else `PresetError`). Defaults to `False`.
    """
    model = load_any(model_or_path, allow_untrained=allow_untrained)
    if data is None:
        data = trained_data(model_or_path)
    size = image_size or model.image_shape[0] or 48
    from ferzoo.data import load_split

    ds, info = load_split(
        data,
        split=split,
        image_size=size,
        batch_size=batch_size,
        on_error=on_error,
    )
    probs = match_classes(
        model.predict(ds, verbose=0),
        (getattr(model, "recipe", None) or {}).get("class_names"),
        info.class_names,
        source=model_or_path,
        data=data,
    )
    report = metrics.classification_report(info.labels, probs, info.class_names)
    report.update({"data": data, "split": split})
    return report


def match_classes(probs, model_names, data_names, source="model", data=None):
    """The columns of `probs` (in the model's class order) in the data's.

    Classes are matched by name (`"happiness"` is `"happy"`): the same
    set in another order is reordered; another set, or a model without
    names whose class count differs, is a `UsageError` listing both.
    """
    from ferzoo.data.noise import _canonical

    probs = np.asarray(probs)
    data_names = [str(n) for n in data_names]
    if model_names is None:
        if probs.shape[-1] != len(data_names):
            raise UsageError(
                f"the model {source} has {probs.shape[-1]} classes (names "
                f"unrecorded) but the data {data} has {len(data_names)}: "
                f"{data_names}"
            )
        return probs
    model_names = [str(n) for n in model_names]
    theirs = [_canonical(n) for n in model_names]
    ours = [_canonical(n) for n in data_names]
    if sorted(theirs) != sorted(ours) or len(set(ours)) != len(ours):
        raise UsageError(
            f"the model {source} and the data {data} have different "
            f"classes, so it cannot be evaluated there. Model: {model_names}; "
            f"data: {data_names}"
        )
    return probs[:, [theirs.index(name) for name in ours]]


def model_metadata(model_or_path):
    """The `metadata.json` of a preset, run folder or a checkpoint's run.

    A `.keras` file's metadata is its folder's (a training output folder
    holds both). `{}` when there is none.
    """
    if isinstance(model_or_path, keras.Model):
        return {}
    path = pathlib.Path(str(model_or_path))
    if path.suffix == ".keras":
        meta = path.parent / preset_utils.METADATA_FILE
        return json.loads(meta.read_text()) if meta.is_file() else {}
    return preset_utils.load_metadata(str(model_or_path))


def run_spec(model_or_path):
    """The `RunSpec` of a training output folder or of a checkpoint in
    one (its `spec.json`), or None."""
    if isinstance(model_or_path, keras.Model):
        return None
    path = pathlib.Path(str(model_or_path))
    folder = path.parent if path.suffix == ".keras" else path
    return RunSpec.read(folder) if folder.is_dir() else None


def trained_data(model_or_path):
    """The data spec a model was trained on, from its run's spec (or, for
    an older run, its metadata)."""
    spec = run_spec(model_or_path)
    if spec is not None:
        return spec.data.source
    data = (model_metadata(model_or_path).get("dataset") or {}).get("data")
    if not data:
        raise PresetError(
            f"{model_or_path} records no training data set (only a "
            "training output folder or its checkpoints do); pass --data "
            "KIND:PATH (the `data` argument)."
        )
    return data


def has_trained_weights(model_or_path):
    """Whether a model source holds trained weights.

    A model object or a `.keras` checkpoint counts as trained; a preset
    only with its `model.weights.h5`.
    """
    if isinstance(model_or_path, keras.Model):
        return True
    if pathlib.Path(str(model_or_path)).suffix == ".keras":
        return True
    folder = preset_utils.resolve_preset(str(model_or_path))
    return (folder / preset_utils.WEIGHTS_FILE).is_file()


def load_any(model_or_path, allow_untrained=False):
    """A model from a model, a `.keras` file, or a preset name/folder.

    A preset without `model.weights.h5` has random weights: that is a
    `PresetError` unless `allow_untrained=True`. The model's recipe gets
    the preset's class names if it records none.
    """
    if isinstance(model_or_path, keras.Model):
        return model_or_path
    path = pathlib.Path(str(model_or_path))
    if path.suffix == ".keras":
        model = load_checkpoint(path)
    else:
        if not allow_untrained and not has_trained_weights(model_or_path):
            raise PresetError(
                f"Preset {str(model_or_path)!r} has no trained weights "
                f"({preset_utils.WEIGHTS_FILE}), so its predictions would "
                "be random. Train it first (ferzoo-train --preset "
                f"{model_or_path}) and use the output folder (or its "
                "best.keras while it trains), or pass --allow-untrained "
                "(allow_untrained=True)."
            )
        from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier

        model = NoisyLabelClassifier.from_preset(str(model_or_path))
    names = (model_metadata(model_or_path).get("dataset") or {}).get(
        "class_names"
    )
    if names and "class_names" not in model.recipe:
        model.recipe = {**model.recipe, "class_names": list(names)}
    return model
