"""Train, evaluate and report: the library functions behind the CLI.

`train()` runs one experiment end to end: load the data (with seeded label
noise), build the preset's model, `fit` with atomic checkpoints and
resumption, evaluate on the test split every epoch, and write a results
folder that is itself a preset (`config.json`, `metadata.json`,
`model.weights.h5`) plus `best.keras`, `last.keras`, `history.csv`,
`results.json`, TensorBoard logs and the confusion matrix.
"""

import json
import math
import os
import pathlib
import sys

import keras
import numpy as np

from ferzoo import distribute as distribute_lib
from ferzoo import metrics
from ferzoo import models  # noqa: F401  (registers every method)
from ferzoo import presets as preset_utils
from ferzoo.errors import DataError
from ferzoo.errors import DivergedError
from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier

RESULTS_FILE = "results.json"
STATE_FILE = "state.json"


def atomic_write_json(path, obj):
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def atomic_save_model(model, path):
    """`model.save(path)` through a temporary file and `os.replace`."""
    path = pathlib.Path(path)
    tmp = path.with_name(".tmp-" + path.name)
    model.save(tmp)
    os.replace(tmp, path)


class TrainingMonitor(keras.callbacks.Callback):
    """Per-epoch test metrics, atomic checkpoints and the resume state.

    At each epoch's end: predicts the test split (if given) and adds
    `test_accuracy` and `test_macro_f1` to the logs; writes `last.keras`
    (the resume point, with optimizer state) and, when `val_accuracy`
    improves, `best.keras`, each atomically; then `state.json` with the
    epoch and the per-epoch records. Stops a run whose loss is not finite.
    """

    def __init__(
        self,
        output_dir,
        test_data=None,
        test_labels=None,
        records=None,
        best=-math.inf,
    ):
        super().__init__()
        self.output_dir = pathlib.Path(output_dir)
        self.test_data = test_data
        self.test_labels = test_labels
        self.records = list(records or [])
        self.best = best
        self.diverged = False

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if not np.isfinite(logs.get("loss", 0.0)):
            self.diverged = True
            self.model.stop_training = True
            return
        if self.test_data is not None:
            probs = self.model.predict(self.test_data, verbose=0)
            report = metrics.classification_report(self.test_labels, probs)
            logs["test_accuracy"] = report["accuracy"]
            logs["test_macro_f1"] = report["macro_f1"]
        record = {"epoch": epoch}
        record.update({k: float(v) for k, v in logs.items()})
        self.records.append(record)
        monitor = logs.get("val_accuracy", logs.get("accuracy", 0.0))
        atomic_save_model(self.model, self.output_dir / "last.keras")
        if monitor > self.best:
            self.best = float(monitor)
            atomic_save_model(self.model, self.output_dir / "best.keras")
        atomic_write_json(
            self.output_dir / STATE_FILE,
            {"epoch": epoch, "best": self.best, "records": self.records},
        )


def _load(data, split, **kwargs):
    from ferzoo.data import load_split

    return load_split(data, split=split, **kwargs)


def _optional_split(data, split, **kwargs):
    try:
        return _load(data, split, **kwargs)
    except (DataError, FileNotFoundError) as e:
        print(
            f"[ferzoo] no {split} split ({e}); continuing without it.",
            file=sys.stderr,
        )
        return None, None


def train(
    preset,
    data="synthetic",
    output_dir="runs/ferzoo",
    noise_rate=0.0,
    noise_type="symmetric",
    noise_seed=0,
    noise_file=None,
    epochs=None,
    batch_size=None,
    learning_rate=None,
    seed=0,
    limit_per_class=None,
    on_error="raise",
    verbose="auto",
    resume=True,
    overrides=None,
    callbacks=None,
    distribute="none",
    stream=None,
):
    """Train a preset on a data set and write a results folder.

    Args:
        preset: str. A built-in preset name or a preset folder.
        data: str. `KIND:PATH` (see `ferzoo.data.load_split`). Defaults
            to the embedded synthetic faces.
        output_dir: str. The results folder; rerunning with the same
            folder resumes an interrupted run.
        noise_rate, noise_type, noise_seed, noise_file: the label-noise
            protocol applied to the training split.
        epochs, batch_size, learning_rate: recipe overrides (None keeps
            the preset's).
        seed: int. Seed of initialisation, shuffling and augmentation.
        limit_per_class: int or None. Class-stratified training subset.
        on_error: str. `"raise"` or `"skip"` unreadable samples.
        verbose: Keras verbosity; `"auto"` is 1 on a terminal, else 2.
        resume: bool. Continue from `last.keras` if the folder has one.
        overrides: dict or None. Model config overrides.
        callbacks: list or None. Extra Keras callbacks.
        distribute: str. `"none"` or `"data-parallel"` (every visible
            device, and every process of a multi-host run; see
            `ferzoo.distribute`). `batch_size` stays the global batch.
        stream: bool or None. Read images from their files inside
            tf.data instead of decoding the split into memory; None
            streams splits above
            `ferzoo.data.streaming.STREAM_THRESHOLD` files.

    Returns:
        The results dict also written to `results.json`.
    """
    dist = distribute_lib.setup(distribute)
    out = dist.worker_output_dir(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    metadata = preset_utils.load_metadata(preset)
    recipe = dict(NoisyLabelClassifier.default_recipe)
    recipe.update(metadata.get("recipe") or {})
    for key, value in (
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("learning_rate", learning_rate),
    ):
        if value is not None:
            recipe[key] = value
    size = int(recipe["image_size"])
    common = dict(
        image_size=size, batch_size=int(recipe["batch_size"]), on_error=on_error
    )
    common["stream"] = stream
    train_ds, info = _load(
        data,
        "train",
        noise_rate=noise_rate,
        noise_type=noise_type,
        noise_seed=noise_seed,
        noise_file=noise_file,
        augment=recipe.get("augment"),
        seed=seed,
        limit_per_class=limit_per_class,
        **common,
    )
    val_ds, _ = _optional_split(data, "val", **common)
    test_ds, test_info = _optional_split(data, "test", **common)
    if verbose:
        print(info.summary())

    state_path = out / STATE_FILE
    initial_epoch, records, best = 0, [], -math.inf
    if resume and state_path.is_file() and (out / "last.keras").is_file():
        state = json.loads(state_path.read_text())
        model = keras.saving.load_model(out / "last.keras")
        initial_epoch = int(state["epoch"]) + 1
        records, best = state["records"], state["best"]
        print(f"[ferzoo] resuming {out} at epoch {initial_epoch + 1}.")
    else:
        model = NoisyLabelClassifier.from_preset(
            preset,
            num_classes=info.num_classes,
            num_samples=info.num_samples,
            **(overrides or {}),
        )
        model.recipe = recipe
        model.compile()
    if model.num_samples != info.num_samples:
        raise DataError(
            f"the resumed model has {model.num_samples} per-sample rows but "
            f"the data has {info.num_samples} training samples",
            path=out / "last.keras",
        )

    dist.prepare(model)
    monitor = TrainingMonitor(
        out,
        test_ds,
        None if test_info is None else test_info.labels,
        records,
        best,
    )
    total_epochs = int(recipe["epochs"])
    if initial_epoch < total_epochs:
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=total_epochs,
            initial_epoch=initial_epoch,
            shuffle=False,  # the pipeline shuffles, seeded
            verbose=_verbosity(verbose),
            callbacks=[
                monitor,
                keras.callbacks.CSVLogger(
                    str(out / "history.csv"), append=initial_epoch > 0
                ),
                keras.callbacks.TensorBoard(str(out / "logs")),
                *(callbacks or []),
            ],
        )
    if monitor.diverged:
        raise DivergedError(
            f"the loss became non-finite at epoch {len(monitor.records) + 1};"
            " lower the learning rate (--learning-rate)"
        )
    results = summarize(model, out, info, test_ds, test_info, monitor.records)
    results.update(
        {
            "preset": str(preset),
            "data": data,
            "noise": info.noise,
            "recipe": recipe,
            "seed": seed,
            "backend": keras.backend.backend(),
            "distribute": dist.describe(),
        }
    )
    model.save_to_preset(
        out,
        {
            "description": f"trained from {preset}",
            "dataset": {"data": data},
            "noise": info.noise,
            "results": results["test"],
        },
    )
    atomic_write_json(out / RESULTS_FILE, results)
    return results


def summarize(model, out, info, test_ds, test_info, records):
    """Final test report, noise-detection report and confusion matrix."""
    results = {"epochs_run": len(records), "history": records}
    tests = [r["test_accuracy"] for r in records if "test_accuracy" in r]
    f1s = [r["test_macro_f1"] for r in records if "test_macro_f1" in r]
    if tests:
        key = "val_accuracy" if "val_accuracy" in records[0] else "accuracy"
        best = int(np.argmax([r.get(key, 0.0) for r in records]))
        results["test"] = {
            "best_on_val_accuracy": tests[best],
            "best_on_val_macro_f1": f1s[best],
            "best_epoch": records[best]["epoch"] + 1,
            "last5_mean_accuracy": float(np.mean(tests[-5:])),
            "last5_mean_macro_f1": float(np.mean(f1s[-5:])),
        }
        report = metrics.classification_report(
            test_info.labels,
            model.predict(test_ds, verbose=0),
            info.class_names,
        )
        results["test"]["final"] = report
        metrics.save_confusion_matrix(
            report,
            out / "confusion_matrix.png",
            out / "confusion_matrix.json",
        )
    else:
        results["test"] = {}
    if info.noise_mask is not None and model.clean_scores() is not None:
        results["noise_detection"] = metrics.noise_detection_report(
            model.clean_scores(),
            info.noise_mask,
            model.relabels(),
            info.labels,
            info.clean_labels,
        )
        results["noise_detection"]["score"] = model.score_name
        results["noise_detection"]["score_uses_label"] = model.score_uses_label
    return results


def evaluate(
    model_or_path,
    data,
    split="test",
    batch_size=64,
    image_size=None,
    on_error="raise",
):
    """Classification report of a model (or checkpoint/preset) on a split."""
    model = load_any(model_or_path)
    size = image_size or model.image_shape[0] or 48
    ds, info = _load(
        data, split, image_size=size, batch_size=batch_size, on_error=on_error
    )
    report = metrics.classification_report(
        info.labels, model.predict(ds, verbose=0), info.class_names
    )
    report.update({"data": data, "split": split})
    return report


def load_any(model_or_path):
    """A model from a model, a `.keras` file, or a preset name/folder."""
    if isinstance(model_or_path, keras.Model):
        return model_or_path
    path = pathlib.Path(str(model_or_path))
    if path.suffix == ".keras":
        if not path.is_file():
            raise DataError("no such checkpoint", path=path)
        return keras.saving.load_model(path)
    return NoisyLabelClassifier.from_preset(str(model_or_path))


def _verbosity(verbose):
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return verbose
