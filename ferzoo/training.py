"""Train, evaluate and report: the library functions behind the CLI.

`train()` runs one experiment end to end: load the data (with seeded label
noise), build the preset's model, `fit` with atomic checkpoints and
resumption, evaluate on the test split every epoch, and write a results
folder that is itself a preset (`config.json`, `metadata.json`,
`model.weights.h5`) plus `best.keras`, `last.keras`, `history.csv`,
`results.json`, TensorBoard logs and the confusion matrix.
"""

import hashlib
import json
import math
import os
import pathlib
import random
import shutil
import sys

import keras
import numpy as np

from ferzoo import distribute as distribute_lib
from ferzoo import metrics
from ferzoo import models  # noqa: F401  (registers every method)
from ferzoo import outputs
from ferzoo import presets as preset_utils
from ferzoo.errors import DataError
from ferzoo.errors import DivergedError
from ferzoo.errors import PresetError
from ferzoo.errors import RunMismatchError
from ferzoo.errors import UsageError
from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier
from ferzoo.seeding import epoch_seed  # noqa: F401  (re-exported)

RESULTS_FILE = "results.json"
STATE_FILE = "state.json"


def atomic_write_json(path, obj):
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(obj, indent=2, default=_json_default) + "\n")
        f.flush()
        os.fsync(f.fileno())
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
    _fsync(tmp)
    os.replace(tmp, path)


def _fsync(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_point(name, epoch):
    """Called between the writes of a checkpoint (a no-op; the kill tests
    replace it to stop the process at each point)."""


CHECKPOINTS = ("last", "best")


def save_checkpoint(out, model, state, best_improved, previous=None):
    """Write `last.keras`, `best.keras` (if improved) and `state.json` as
    one crash-consistent step.

    The models go to new files (`.last-EPOCH.keras`), then `state.json` is
    replaced atomically, naming them with their SHA-256 (the commit
    point), then they are renamed to `last.keras` / `best.keras`. A crash
    before the commit leaves the previous state and checkpoint; after it,
    `recover_checkpoint` finishes the renames. `previous` is the former
    state's `checkpoint` entry (for a `best.keras` not rewritten).
    """
    out = pathlib.Path(out)
    epoch = int(state["epoch"])
    entries = dict(previous or {})
    for key in CHECKPOINTS:
        if key == "best" and not best_improved:
            continue
        tmp = out / f".{key}-{epoch:05d}.keras"
        model.save(tmp)
        _fsync(tmp)
        entries[key] = {"file": tmp.name, "sha256": _sha256(tmp)}
        _write_point(f"{key}_saved", epoch)
    state = {**state, "checkpoint": entries}
    atomic_write_json(out / STATE_FILE, state)
    _write_point("state_written", epoch)
    return state


def finish_checkpoint(out, state):
    """After `save_checkpoint`'s commit: rename the new files into place
    (what `recover_checkpoint` does after a crash, without re-hashing)."""
    out = pathlib.Path(out)
    for key in CHECKPOINTS:
        entry = (state.get("checkpoint") or {}).get(key)
        new = None if entry is None else out / entry["file"]
        if new is not None and new.is_file():
            os.replace(new, out / f"{key}.keras")
            _write_point(f"{key}_moved", int(state["epoch"]))


def recover_checkpoint(out, state, names=CHECKPOINTS):
    """Make `last.keras` / `best.keras` the files `state` names.

    Finishes the renames of an interrupted `save_checkpoint` and removes
    its stale temporary files. A checkpoint that is neither in place nor
    among the new files (truncated, changed or missing) is a `DataError`
    that points at `--no-resume`.
    """
    out = pathlib.Path(out)
    entries = state.get("checkpoint") or {}
    for key in names:
        entry = entries.get(key)
        if entry is None:
            continue
        target = out / f"{key}.keras"
        if target.is_file() and _sha256(target) == entry["sha256"]:
            continue
        new = out / entry["file"]
        if new.is_file() and _sha256(new) == entry["sha256"]:
            os.replace(new, target)
            _write_point(f"{key}_moved", int(state["epoch"]))
            continue
        if key == "best" and not target.exists():
            continue  # a worker's private copy holds only last.keras
        raise DataError(
            f"{key}.keras is truncated or is not the checkpoint "
            f"{STATE_FILE} records (epoch {int(state['epoch']) + 1}); the "
            "run cannot resume from it. Start over with --no-resume "
            "(resume=False), or pass another --output-dir",
            path=target,
        )
    # Every named checkpoint is in place: the new files left are stale.
    for key in CHECKPOINTS:
        for stale in out.glob(f".{key}-[0-9][0-9][0-9][0-9][0-9].keras"):
            stale.unlink(missing_ok=True)


def load_checkpoint(path, hint=None):
    """`keras.saving.load_model(path)`, or a `DataError` naming the file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError("no such checkpoint", path=path)
    try:
        return keras.saving.load_model(path)
    except Exception as e:  # Keras raises many types on a bad archive
        message = (
            "not a readable .keras checkpoint (truncated or corrupt?): "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        )
        raise DataError(message + (f". {hint}" if hint else ""), path=path)


def write_history(path, records):
    """`history.csv` (as Keras' CSVLogger writes it) from the records."""
    keys = sorted({k for r in records for k in r if k != "epoch"})
    lines = [",".join(["epoch", *keys])]
    for r in records:
        lines.append(",".join(str(r.get(k, "")) for k in ["epoch", *keys]))
    path = pathlib.Path(path)
    tmp = path.with_name(".tmp-" + path.name)
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


class TrainingMonitor(keras.callbacks.Callback):
    """Per-epoch test metrics, atomic checkpoints and the resume state.

    At each epoch's end: predicts the test split (if given) and adds
    `test_accuracy` and `test_macro_f1` to the logs; then writes
    `last.keras` (the resume point, with optimizer state), `best.keras`
    when `val_accuracy` improves, and `state.json` with the epoch and the
    per-epoch records, as one crash-consistent step (`save_checkpoint`),
    and `history.csv` from the records. Stops a run whose loss is not
    finite.
    """

    def __init__(
        self,
        output_dir,
        test_data=None,
        test_labels=None,
        records=None,
        best=-math.inf,
        config=None,
        checkpoint=None,
        history_file=None,
    ):
        super().__init__()
        self.config = config
        self.output_dir = pathlib.Path(output_dir)
        self.test_data = test_data
        self.test_labels = test_labels
        self.records = list(records or [])
        self.best = best
        self.diverged = False
        self.checkpoint = checkpoint
        self.history_file = history_file

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
        # Select on validation accuracy only; with no val data, best.keras
        # is the last epoch (never a pick on training accuracy).
        monitor = logs.get("val_accuracy")
        improved = monitor is None or monitor > self.best
        if improved:
            self.best = -math.inf if monitor is None else float(monitor)
        state = save_checkpoint(
            self.output_dir,
            self.model,
            {
                "epoch": epoch,
                "best": self.best,
                "records": self.records,
                "config": self.config,
            },
            improved,
            self.checkpoint,
        )
        self.checkpoint = state["checkpoint"]
        if self.history_file:
            write_history(self.output_dir / self.history_file, self.records)
            _write_point("history_written", epoch)
        finish_checkpoint(self.output_dir, state)


def _load(data, split, **kwargs):
    from ferzoo.data import load_split

    return load_split(data, split=split, **kwargs)


def _optional_split(data, split, **kwargs):
    from ferzoo.data import MissingSplitError

    try:
        return _load(data, split, **kwargs)
    except MissingSplitError as e:  # a split that is there but bad raises
        print(
            f"[ferzoo] no {split} split ({e}); continuing without it.",
            file=sys.stderr,
        )
        return None, None


# Settings that define a run; a resume must match them all. The number of
# epochs is not one: rerunning with more epochs continues the run.
RUN_FIELDS = (
    "preset",
    "data",
    "noise_rate",
    "noise_type",
    "noise_seed",
    "noise_file",
    "seed",
    "limit_per_class",
    "batch_size",
    "learning_rate",
    "overrides",
    "classes",
    "val_fraction",
    "freeze_until",
)

# What a training run writes; a fresh start (`resume=False`) removes these.
RUN_FILES = (
    STATE_FILE,
    "last.keras",
    "best.keras",
    "history.csv",
    RESULTS_FILE,
    "confusion_matrix.png",
    "confusion_matrix.json",
)


def run_config(preset, data, recipe, **settings):
    """The JSON-able settings that identify a run (see `RUN_FIELDS`)."""
    config = {"preset": _spec_path(str(preset)), "data": _data_path(data)}
    config.update(settings)
    config["noise_rate"] = float(config["noise_rate"] or 0.0)
    if config["noise_file"] is not None:
        config["noise_file"] = os.path.abspath(config["noise_file"])
    if not config["noise_rate"]:
        config["noise_type"] = None  # irrelevant without a rate
    config["batch_size"] = int(recipe["batch_size"])
    config["learning_rate"] = float(recipe["learning_rate"])
    config["overrides"] = dict(config["overrides"] or {})
    return json.loads(json.dumps(config, default=_json_default))


def _spec_path(text):
    return os.path.abspath(text) if os.path.isdir(text) else text


def _data_path(data):
    kind, sep, path = str(data).partition(":")
    if sep and path and os.path.exists(path):
        return f"{kind}:{os.path.abspath(path)}"
    return str(data)


def _check_same_run(out, recorded, requested):
    differences = {
        key: (recorded.get(key), requested.get(key))
        for key in RUN_FIELDS
        if recorded.get(key) != requested.get(key)
    }
    if differences:
        raise RunMismatchError(out, differences)


def _remove_run_files(out):
    """Delete a previous run's files (by name; other files are kept).

    Only for a folder that `ferzoo.outputs` says is a ferzoo run folder.
    """
    for name in RUN_FILES:
        path = out / name
        if path.is_file():
            path.unlink()
    for key in CHECKPOINTS:
        for stale in out.glob(f".{key}-[0-9][0-9][0-9][0-9][0-9].keras"):
            stale.unlink(missing_ok=True)
    shutil.rmtree(out / "logs", ignore_errors=True)


# What an older ferzoo (before output-folder markers) left in a run folder.
_UNMARKED_RUN_FILES = set(RUN_FILES) | {
    "logs",
    "config.json",
    "metadata.json",
    "model.weights.h5",
}


def _is_unmarked_run(folder):
    """A run folder from before markers: only ferzoo's run files, with a
    `state.json` (settings and records) and its `last.keras`."""
    names = {n for n in os.listdir(folder) if not n.startswith(".tmp-")}
    if not names <= _UNMARKED_RUN_FILES or "last.keras" not in names:
        return False
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and {"epoch", "records", "config"} <= set(
        state
    )


def _read_state(path):
    """The resume state in `path`, or None for an older ferzoo's state
    without its `last.keras`."""
    try:
        state = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
        int(state["epoch"]), state["records"], state["best"]
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(
            f"unreadable resume state ({type(e).__name__}: {e}); start over "
            "with --no-resume (resume=False), or pass another --output-dir",
            path=path,
        ) from None
    if "checkpoint" not in state and not (path.parent / "last.keras").is_file():
        return None
    return state


class EpochSeeds(keras.callbacks.Callback):
    """Reseed Python's and NumPy's global RNGs from `(seed, epoch)`.

    So host-side randomness at an epoch is the same in a resumed run as in
    an uninterrupted one. (The data order and augmentation are seeded by
    epoch in the pipeline; the model's own generators are saved with it.)
    """

    def __init__(self, seed):
        super().__init__()
        self.seed = int(seed)

    def on_epoch_begin(self, epoch, logs=None):
        value = epoch_seed(self.seed, epoch)
        random.seed(value)
        np.random.seed(value)


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
    classes=None,
    val_fraction=0.1,
    distribute="none",
    stream=None,
    freeze_until=None,
    trunk_cache=None,
):
    """Train a preset on a data set and write a results folder.

    Args:
        preset: str. A built-in preset name or a preset folder.
        data: str. `KIND:PATH` (see `ferzoo.data.load_split`). Defaults
            to the embedded synthetic faces.
        output_dir: str. The results folder; rerunning with the same
            folder and settings resumes an interrupted run (or extends a
            finished one to more `epochs`).
        noise_rate, noise_type, noise_seed, noise_file: the label-noise
            protocol applied to the training split.
        epochs, batch_size, learning_rate: recipe overrides (None keeps
            the preset's).
        seed: int. Seed of initialisation, shuffling and augmentation.
            Epoch `k`'s data order and augmentation depend on `(seed, k)`
            only, so a resumed run follows the uninterrupted one.
        limit_per_class: int or None. Class-stratified training subset.
        on_error: str. `"raise"` or `"skip"` unreadable samples.
        verbose: Keras verbosity; `"auto"` is 1 on a terminal, else 2.
        resume: bool. Continue from `last.keras` if the folder has a run
            with the same settings (else `RunMismatchError`). `False`
            starts over and replaces the folder's previous run files.
        overrides: dict or None. Model config overrides.
        callbacks: list or None. Extra Keras callbacks.
        classes: list of str or None. Class order of `imagefolder` or
            `rafdb` data, the same for every split (default: the train
            split's class folders, or RAF-DB's order).
        val_fraction: float. With no val split in the data (RAF-DB), the
            fraction of each class of the noisy training split held out
            (seeded by `seed`) to select the best epoch on; 0 selects
            nothing and reports the last epoch. Defaults to `0.1`.
        distribute: str. `"none"` or `"data-parallel"` (every visible
            device, and every process of a multi-host run; see
            `ferzoo.distribute`). `batch_size` stays the global batch.
        stream: bool or None. Read images from their files inside
            tf.data instead of decoding the split into memory; None
            streams splits above
            `ferzoo.data.streaming.STREAM_THRESHOLD` files.
        freeze_until: str or None. Freeze the pretrained backbone up to
            and including this block (e.g. `"conv256_1"` of dlib's
            ResNet) and train the rest on the frozen trunk's maps of
            each image and its flip, computed once and cached on disk
            (`ferzoo.data.trunk_cache`). The recipe's augmentation may then use
            `flip`, `crop_padding` and `erasing` only (applied to maps).
        trunk_cache: str or None. Folder of the cached maps. Defaults to
            `~/.cache/ferzoo/trunks` (`$FERZOO_CACHE/trunks`).

    Returns:
        The results dict also written to `results.json`.

    Raises:
        RunMismatchError: `resume=True` and the folder holds a run with
            another preset, data, noise protocol, seed, batch size,
            learning rate or overrides.
        OutputFolderError: the output folder is not a ferzoo training
            folder (and not empty), is in use by another run, or is not
            writable (see `ferzoo.outputs`).
    """
    settings = dict(locals())
    dist = distribute_lib.setup(distribute)
    out = dist.worker_output_dir(output_dir)
    # Only the chief writes the shared folder; it owns and locks it.
    claim = None
    if dist.is_chief:
        claim = outputs.claim(out, "train", adopt=_is_unmarked_run)
    done = False
    try:
        results = _train(dist, out, **settings)
        done = True
        return results
    finally:
        if claim is not None:
            fresh = not done and not (out / STATE_FILE).is_file()
            if fresh and claim.state == "new":
                _remove_run_files(out)  # this run wrote them
            claim.release(remove=fresh and claim.state == "new")


def _train(
    dist,
    out,
    preset,
    data,
    output_dir,
    noise_rate,
    noise_type,
    noise_seed,
    noise_file,
    epochs,
    batch_size,
    learning_rate,
    seed,
    limit_per_class,
    on_error,
    verbose,
    resume,
    overrides,
    callbacks,
    classes,
    val_fraction,
    distribute,
    stream,
    freeze_until,
    trunk_cache,
):
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
    config = run_config(
        preset,
        data,
        recipe,
        noise_rate=noise_rate,
        noise_type=noise_type,
        noise_seed=noise_seed,
        noise_file=noise_file,
        seed=seed,
        limit_per_class=limit_per_class,
        overrides=overrides,
        classes=list(classes) if classes else None,
        val_fraction=float(val_fraction),
        freeze_until=freeze_until,
    )
    state_path = out / STATE_FILE
    state = None
    if resume and state_path.is_file():
        state = _read_state(state_path)
    if state is not None:
        if "config" in state:
            _check_same_run(out, state["config"], config)
        else:
            print(
                f"[ferzoo] {state_path} records no run settings (an older "
                "ferzoo wrote it); resuming without checking them.",
                file=sys.stderr,
            )
    initial_epoch = 0 if state is None else int(state["epoch"]) + 1
    total_epochs = int(recipe["epochs"])

    size = int(recipe["image_size"])
    batch = int(recipe["batch_size"])
    common = dict(
        image_size=size, batch_size=batch, on_error=on_error, classes=classes
    )
    if freeze_until is not None and stream is None:
        stream = True  # only the labels are read: images come from maps
    common["stream"] = stream
    if dist.even_batches and batch % dist.num_replicas:
        raise ValueError(
            f"With {dist.num_replicas} devices the batch size must be a "
            f"multiple of {dist.num_replicas}. Received batch size: {batch}"
        )
    from ferzoo.data import load_training_splits

    splits = load_training_splits(
        data,
        val_fraction=val_fraction,
        val_seed=seed,
        noise_rate=noise_rate,
        noise_type=noise_type,
        noise_seed=noise_seed,
        noise_file=noise_file,
        augment=recipe.get("augment"),
        seed=seed,
        limit_per_class=limit_per_class,
        epochs=(initial_epoch, max(total_epochs, initial_epoch + 1)),
        drop_remainder=dist.even_batches,
        **common,
    )
    train_ds, info, val_ds = splits.train, splits.train_info, splits.val
    val_info = splits.val_info
    test_ds, test_info = _optional_split(data, "test", **common)
    if verbose:
        print(info.summary())
        print(f"[ferzoo] model selection: {splits.selection['description']}")

    if state is not None:
        recover_checkpoint(out, state)
        model = load_checkpoint(
            out / "last.keras",
            "Start over with --no-resume (resume=False), or pass another "
            "--output-dir",
        )
        records, best = state["records"], state["best"]
        write_history(out / "history.csv", records)
        print(f"[ferzoo] resuming {out} at epoch {initial_epoch + 1}.")
    else:
        records, best = [], -math.inf
        model = NoisyLabelClassifier.from_preset(
            preset,
            num_classes=info.num_classes,
            num_samples=info.num_samples,
            **({"freeze_until": freeze_until} if freeze_until else {}),
            **(overrides or {}),
        )
        # The class names travel with the model (.keras and preset).
        model.recipe = {**recipe, "class_names": list(info.class_names)}
        model.compile()
    if model.num_samples != info.num_samples:
        raise DataError(
            f"the resumed model has {model.num_samples} per-sample rows but "
            f"the data has {info.num_samples} training samples",
            path=out / "last.keras",
        )

    if freeze_until is not None:
        from ferzoo.data.trunk_cache import cached_datasets

        train_ds, val_ds, test_ds, trunk_report = cached_datasets(
            model,
            data,
            {"train": info, "val": val_info, "test": test_info},
            recipe,
            seed,
            (initial_epoch, max(total_epochs, initial_epoch + 1)),
            cache_dir=trunk_cache,
            verbose=bool(verbose),
            limit_per_class=limit_per_class,
            on_error=on_error,
            classes=classes,
        )
    out.mkdir(parents=True, exist_ok=True)
    if state is None:
        _remove_run_files(out)  # a ferzoo run folder's (outputs.claim)
    dist.prepare(model)
    monitor = TrainingMonitor(
        out,
        test_ds,
        None if test_info is None else test_info.labels,
        records,
        best,
        config=config,
        checkpoint=None if state is None else state.get("checkpoint"),
        history_file="history.csv",
    )
    if initial_epoch < total_epochs:
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=total_epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=(
                info.num_samples // batch
                if dist.even_batches
                else math.ceil(info.num_samples / batch)
            ),
            shuffle=False,  # the pipeline shuffles, seeded by epoch
            verbose=_verbosity(verbose),
            callbacks=[
                EpochSeeds(seed),
                monitor,
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
            "selection": splits.selection,
            "recipe": recipe,
            "seed": seed,
            "backend": keras.backend.backend(),
            "skipped": skipped_report(
                {"train": info, "val": val_info, "test": test_info}
            ),
            "distribute": dist.describe(),
        }
    )
    if freeze_until is not None:
        results["trunk_cache"] = trunk_report
    model.save_to_preset(
        out,
        {
            "description": f"trained from {preset}",
            "dataset": {
                "data": config["data"],
                "image_size": size,
                "num_classes": info.num_classes,
                "class_names": list(info.class_names),
            },
            "noise": info.noise,
            "run": config,
            "results": results["test"],
        },
    )
    atomic_write_json(out / RESULTS_FILE, results)
    return results


def skipped_report(infos, examples=10):
    """Per split: how many samples were skipped, and the first few."""
    report = {}
    for split, info in infos.items():
        if info is None:
            continue
        report[split] = {
            "count": len(info.skipped),
            "first": [f"{src}: {why}" for src, why in info.skipped[:examples]],
        }
    return report


def summarize(model, out, info, test_ds, test_info, records):
    """Final test report, noise-detection report and confusion matrix."""
    results = {"epochs_run": len(records), "history": records}
    tests = [r["test_accuracy"] for r in records if "test_accuracy" in r]
    f1s = [r["test_macro_f1"] for r in records if "test_macro_f1" in r]
    if tests:
        results["test"] = {}
        if "val_accuracy" in records[0]:  # never a training-accuracy pick
            best = int(np.argmax([r["val_accuracy"] for r in records]))
            results["test"] = {
                "best_on_val_accuracy": tests[best],
                "best_on_val_macro_f1": f1s[best],
                "best_epoch": records[best]["epoch"] + 1,
            }
        results["test"].update(
            {
                "last5_mean_accuracy": float(np.mean(tests[-5:])),
                "last5_mean_macro_f1": float(np.mean(f1s[-5:])),
                # Mean of the last 5 epochs (of all, when fewer ran).
                "last5_num_epochs": len(tests[-5:]),
            }
        )
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
    ds, info = _load(
        data, split, image_size=size, batch_size=batch_size, on_error=on_error
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


def trained_data(model_or_path):
    """The data spec a model was trained on, from its run's metadata."""
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
        model = NoisyLabelClassifier.from_preset(str(model_or_path))
    names = (model_metadata(model_or_path).get("dataset") or {}).get(
        "class_names"
    )
    if names and "class_names" not in model.recipe:
        model.recipe = {**model.recipe, "class_names": list(names)}
    return model


def _verbosity(verbose):
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return verbose
