"""Turn a finished `ferzoo-train` run into a shippable preset folder.

A run folder is itself a preset, but its `model.weights.h5` also holds the
optimizer state (three times the model's size) and its metadata names a
local data path. This script loads the run's `best.keras` (selected on
val) without its optimizer, writes `config.json`, a weights file with the
model's variables only, and a `metadata.json` that records where the
weights came from: the preset trained, the data, the command, the
selection and the PrivateTest results.

Example:
    python scripts/package_trained_preset.py runs/ferzoo_fer2013 \\
        presets/ferzoo_fer2013 --description "..." \\
        --command "ferzoo-train --preset ... --epochs 6" --grayscale
"""

import json
import os
import pathlib
import sys

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("preset_dir", type=click.Path(file_okay=False))
@click.option("--description", required=True, help="One-line description.")
@click.option(
    "--command",
    "train_command",
    required=True,
    help="The command that trained the run.",
)
@click.option("--data-name", default="FER2013", show_default=True)
@click.option(
    "--grayscale/--color",
    default=True,
    show_default=True,
    help="Whether the training faces were gray.",
)
@click.option("--note", multiple=True, help="Extra provenance lines.")
@click.option(
    "--test-time-flip/--no-test-time-flip",
    default=False,
    show_default=True,
    help="Ship the preset with its horizontal-flip test-time augmentation "
    "on (`test_time_flip` in its config).",
)
def main(
    run_dir,
    preset_dir,
    description,
    train_command,
    data_name,
    grayscale,
    note,
    test_time_flip,
):
    """Package RUN_DIR's best.keras as a preset in PRESET_DIR."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    import ferzoo  # noqa: F401  (registers ferzoo's classes)
    from ferzoo import presets

    run = pathlib.Path(run_dir)
    results = json.loads((run / "results.json").read_text())
    run_meta = json.loads((run / "metadata.json").read_text())
    model = _for_inference(
        keras.saving.load_model(run / "best.keras", compile=False)
    )
    model.test_time_flip = test_time_flip
    test = results.get("test") or {}
    final = test.get("final") or {}
    class_names = final.get("class_names")
    if not class_names:
        sys.exit(f"{run}/results.json names no classes (test.final)")
    metadata = {
        "description": description,
        "dataset": {
            "name": data_name,
            "class_names": class_names,
            "grayscale": bool(grayscale),
            "image_size": int(run_meta["recipe"]["image_size"]),
        },
        "recipe": run_meta.get("recipe"),
        "noise": run_meta.get("noise") or {},
        "results": {
            "split": "test (FER2013 PrivateTest)",
            "selection": "best epoch on val (FER2013 PublicTest)",
            "best_on_val_accuracy": test.get("best_on_val_accuracy"),
            "best_on_val_macro_f1": test.get("best_on_val_macro_f1"),
            "best_epoch": test.get("best_epoch"),
            "per_class_accuracy": final.get("per_class_accuracy"),
        },
        "source": {
            "trained_from": results.get("preset"),
            "command": train_command,
            "backend": results.get("backend"),
            "notes": list(note),
        },
    }
    out = pathlib.Path(preset_dir)
    presets.save_to_preset(model, out, metadata)
    size = (out / "model.weights.h5").stat().st_size
    click.echo(f"wrote {out} (model.weights.h5: {size / 1e6:.1f} MB)")
    if size > 25e6:
        sys.exit("model.weights.h5 is over the 25 MB limit for presets")


# Training-only arguments a shipped preset leaves out (its metadata's
# recipe records them): a frozen trunk would make a user's fine-tuning of
# the preset train its tail only, and class counts are the training set's.
TRAINING_ONLY = (
    "freeze_until",
    "class_balance",
    "class_counts",
    "class_balance_strength",
)


def _for_inference(model):
    """The model without `TRAINING_ONLY` arguments, weights unchanged.

    The weights move by layer path (a `.weights.h5`), not by variable
    order, which freezing changes.
    """
    import tempfile

    config = model.get_config()
    dropped = [config.pop(key, None) for key in TRAINING_ONLY]
    if all(value is None for value in dropped):
        return model
    clean = type(model).from_config(config)
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "model.weights.h5"
        model.save_weights(path)
        clean.load_weights(path)
    clean.recipe = model.recipe
    return clean


if __name__ == "__main__":
    main()
