"""A run's identity: the resolved spec, and the resume check against the
spec a run folder records.

A resume compares the recorded spec with the requested one field by field
(`RunSpec.diff` on `IDENTITY`); `RunMismatchError` names each differing
field by its keyword (and `ferzoo-train` option) name, e.g. `noise_rate`.
The number of epochs is not part of the identity: rerunning with more
epochs continues the run.
"""

import dataclasses
import json
import os
import sys

from ferzoo import presets as preset_utils
from ferzoo.errors import RunMismatchError
from ferzoo.spec import RunSpec
from ferzoo.spec import check_dtype_policy

# Dotted spec field -> the keyword name of `train` (and the key of the
# flat run config that `state.json` and `metadata.json` record).
IDENTITY = {
    "preset": "preset",
    "data.source": "data",
    "noise.rate": "noise_rate",
    "noise.type": "noise_type",
    "noise.seed": "noise_seed",
    "noise.file": "noise_file",
    "seed": "seed",
    "data.limit_per_class": "limit_per_class",
    "overrides": "overrides",
    "data.classes": "classes",
    "selection.val_fraction": "val_fraction",
    "freeze_until": "freeze_until",
    "recipe.batch_size": "batch_size",
    "recipe.learning_rate": "learning_rate",
    "recipe.dtype_policy": "dtype_policy",
    "fold": "fold",
}
RUN_FIELDS = tuple(v for v in IDENTITY.values() if v != "fold")
# Run fields a spec leaves out at their default (a float32 run's config
# stays as it was before the field existed).
OPTIONAL_FIELDS = ("dtype_policy",)


def base_recipe(preset):
    """The default recipe updated with the preset's."""
    from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier

    recipe = dict(NoisyLabelClassifier.default_recipe)
    recipe.update(preset_utils.load_metadata(preset).get("recipe") or {})
    return recipe


def resolve(spec):
    """`(spec, recipe)`: the spec with the preset's recipe filled in and
    paths made absolute (what a run folder records), and the recipe."""
    recipe = spec.recipe.apply(base_recipe(spec.preset))
    policy = check_dtype_policy(recipe.pop("dtype_policy", None) or "float32")
    if policy != "float32":
        recipe["dtype_policy"] = policy
    noise = spec.noise
    noise = dataclasses.replace(
        noise,
        rate=float(noise.rate or 0.0),
        type=noise.type if noise.rate else None,  # irrelevant without one
        file=None if noise.file is None else os.path.abspath(noise.file),
    )
    return (
        spec.replace(
            preset=_spec_path(spec.preset),
            data=dataclasses.replace(
                spec.data, source=_data_path(spec.data.source)
            ),
            noise=noise,
            recipe=dataclasses.replace(
                spec.recipe,
                epochs=int(recipe["epochs"]),
                batch_size=int(recipe["batch_size"]),
                learning_rate=float(recipe["learning_rate"]),
                image_size=int(recipe["image_size"]),
                dtype_policy=recipe.get("dtype_policy"),
            ),
        ),
        recipe,
    )


def _spec_path(text):
    return os.path.abspath(text) if os.path.isdir(text) else text


def _data_path(data):
    kind, sep, path = str(data).partition(":")
    if sep and path and os.path.exists(path):
        return f"{kind}:{os.path.abspath(path)}"
    return str(data)


def run_config(spec):
    """The flat run config (`RUN_FIELDS`) of a resolved spec, as
    `state.json` and `metadata.json` record it."""
    flat = spec.flat()
    names = {v: k for k, v in IDENTITY.items()}
    config = {
        f: flat.get(names[f])
        for f in RUN_FIELDS
        if f not in OPTIONAL_FIELDS or flat.get(names[f]) is not None
    }
    return json.loads(json.dumps(config))


def from_run_config(config):
    """The spec of a flat run config (an older `state.json`'s)."""
    return RunSpec.create(
        config["preset"],
        data=config["data"],
        noise_rate=config.get("noise_rate"),
        noise_type=config.get("noise_type"),
        noise_seed=config.get("noise_seed", 0),
        noise_file=config.get("noise_file"),
        batch_size=config.get("batch_size"),
        learning_rate=config.get("learning_rate"),
        seed=config.get("seed", 0),
        limit_per_class=config.get("limit_per_class"),
        overrides=config.get("overrides"),
        classes=config.get("classes"),
        val_fraction=config.get("val_fraction", 0.1),
        freeze_until=config.get("freeze_until"),
        dtype_policy=config.get("dtype_policy"),
    )


def recorded_spec(state):
    """The spec a resume state records, or None (an older ferzoo's)."""
    if state.get("spec"):
        return RunSpec.from_dict(state["spec"])
    if state.get("config"):
        return from_run_config(state["config"])
    return None


def check_same_run(out, state, spec, path="state.json"):
    """Raise `RunMismatchError` unless `state` records the run `spec` is
    (a resolved spec); each differing field by its keyword name."""
    recorded = recorded_spec(state)
    if recorded is None and spec.fold is not None:
        return  # an older audit's fold: the audit checks its settings
    if recorded is None:
        print(
            f"[ferzoo] {path} records no run settings (an older "
            "ferzoo wrote it); resuming without checking them.",
            file=sys.stderr,
        )
        return
    changed = recorded.diff(spec, fields=IDENTITY)
    differences = {}
    for dotted, name in IDENTITY.items():
        for key, values in changed.items():
            if key == dotted or key.startswith(dotted + "."):
                differences[name if key == dotted else key] = values
    if differences:
        raise RunMismatchError(out, differences)
