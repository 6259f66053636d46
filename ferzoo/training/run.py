"""One training path: `train(spec, output_dir)`.

A run is a few small steps, each a function here: `resolve` the spec
(`ferzoo.training.resume`), `read_resume_state` (and check it is the same
run), `load_data` (records, noise, the carved val split, pipelines),
`build_model` (from the preset, or the checkpoint to resume), `fit` (with
the `TrainingMonitor` writing checkpoints and records), then `summarize`
(test report, model selection, noise detection) and `write_outputs`
(`results.json`, the preset files). `fit_run` runs the steps up to the
fit and is what an audit's fold calls with its own data (one fit loop).
"""

import dataclasses
import math
import pathlib
import sys

import keras

from ferzoo import distribute as distribute_lib
from ferzoo import models  # noqa: F401  (registers every method)
from ferzoo import outputs
from ferzoo.errors import DataError
from ferzoo.errors import DivergedError
from ferzoo.training import checkpoints
from ferzoo.training import resume as resume_lib
from ferzoo.training import summary
from ferzoo.training.monitor import EpochSeeds
from ferzoo.training.monitor import TrainingMonitor


@dataclasses.dataclass
class RunData:
    """What the data step hands to the fit: pipelines and their infos.

    `steps_per_epoch` is None for a finite per-epoch pipeline.
    """

    train: object
    info: object
    val: object = None
    val_info: object = None
    test: object = None
    test_info: object = None
    selection: dict = None
    steps_per_epoch: int = None


@dataclasses.dataclass
class Fitted:
    """The outcome of `fit_run`."""

    spec: object  # resolved (as recorded)
    requested: object  # as given
    recipe: dict
    data: RunData
    model: object
    monitor: object
    trunk_report: dict = None


def train(spec, output_dir, resume=True, verbose="auto", callbacks=None):
    """Train the run `spec` (a `ferzoo.spec.RunSpec`) into `output_dir`.

    See `ferzoo.training.train` for the keyword form and what is written.
    """
    dist = distribute_lib.setup(spec.distribute)
    out = dist.worker_output_dir(output_dir)
    # Only the chief writes the shared folder; it owns and locks it.
    claim = None
    if dist.is_chief:
        claim = outputs.claim(out, "train", adopt=checkpoints._is_unmarked_run)
    done = False
    try:
        fitted = fit_run(spec, out, dist, resume, verbose, callbacks)
        results = summary.summarize(fitted, out, dist)
        summary.write_outputs(fitted, out, results)
        done = True
        return results
    finally:
        if claim is not None:
            fresh = not done and not (out / checkpoints.STATE_FILE).is_file()
            if fresh and claim.state == "new":
                checkpoints._remove_run_files(out)  # this run wrote them
            claim.release(remove=fresh and claim.state == "new")


def fit_run(
    spec,
    out,
    dist=None,
    resume=True,
    verbose="auto",
    callbacks=None,
    data_step=None,
    logs=True,
):
    """Resolve, check the resume state, load data, build and fit.

    `data_step(spec, recipe, epochs)` returns the `RunData` (default
    `load_data`); `logs=False` leaves out the TensorBoard logs.
    """
    dist = dist or distribute_lib.setup("none")
    out = pathlib.Path(out)
    keras.utils.set_random_seed(spec.seed)
    requested = spec
    spec, recipe = resume_lib.resolve(spec)
    state = read_resume_state(out, spec, resume)
    initial_epoch = 0 if state is None else int(state["epoch"]) + 1
    total = int(recipe["epochs"])
    epochs = (initial_epoch, max(total, initial_epoch + 1))
    batch = int(recipe["batch_size"])
    if dist.even_batches and batch % dist.num_replicas:
        raise ValueError(
            f"With {dist.num_replicas} devices the batch size must be a "
            f"multiple of {dist.num_replicas}. Received batch size: {batch}"
        )
    if data_step is None:
        data = load_data(spec, recipe, epochs, dist, verbose)
    else:
        data = data_step(spec, recipe, epochs)
    model, records, best = build_model(spec, recipe, data.info, out, state)
    fitted = Fitted(spec, requested, recipe, data, model, None)
    if spec.freeze_until is not None:
        fitted.trunk_report = _cache_trunk(fitted, epochs, verbose)
    out.mkdir(parents=True, exist_ok=True)
    if state is None:
        checkpoints._remove_run_files(out)  # a ferzoo run folder's
    spec.write(out)
    dist.prepare(model)
    fitted.monitor = TrainingMonitor(
        out,
        data.test,
        None if data.test_info is None else data.test_info.labels,
        records,
        best,
        config=resume_lib.run_config(spec),
        checkpoint=None if state is None else state.get("checkpoint"),
        history_file="history.csv",
        spec=spec.to_dict(),
    )
    extra = [keras.callbacks.TensorBoard(str(out / "logs"))] if logs else []
    if initial_epoch < total:
        model.fit(
            data.train,
            validation_data=data.val,
            epochs=total,
            initial_epoch=initial_epoch,
            steps_per_epoch=data.steps_per_epoch,
            shuffle=False,  # the pipeline shuffles, seeded by epoch
            verbose=_verbosity(verbose),
            callbacks=[
                EpochSeeds(spec.seed),
                fitted.monitor,
                *extra,
                *(callbacks or []),
            ],
        )
    if fitted.monitor.diverged:
        raise DivergedError(
            f"{out}: the loss became non-finite at epoch "
            f"{len(fitted.monitor.records) + 1}; lower the learning rate "
            "(--learning-rate)"
        )
    return fitted


def read_resume_state(out, spec, resume=True):
    """The folder's resume state (None to start afresh), checked to be
    the run `spec` (a resolved spec) is."""
    path = out / checkpoints.STATE_FILE
    if not (resume and path.is_file()):
        return None
    state = checkpoints._read_state(path)
    if state is not None:
        resume_lib.check_same_run(out, state, spec, path)
    return state


def load_data(spec, recipe, epochs, dist, verbose="auto"):
    """The data step: the training splits (noise, the carved val split)
    and the test split, as pipelines."""
    from ferzoo.data import load_training_splits

    common = _split_options(spec, recipe)
    batch = common["batch_size"]
    splits = load_training_splits(
        spec.data.source,
        val_fraction=spec.selection.val_fraction,
        val_seed=spec.seed,
        noise_rate=spec.noise.rate,
        noise_type=spec.noise.type or "symmetric",
        noise_seed=spec.noise.seed,
        noise_file=spec.noise.file,
        augment=recipe.get("augment"),
        seed=spec.seed,
        limit_per_class=spec.data.limit_per_class,
        epochs=epochs,
        drop_remainder=dist.even_batches,
        **common,
    )
    info = splits.train_info
    test, test_info = _optional_split(spec.data.source, "test", **common)
    if verbose:
        print(info.summary())
        print(f"[ferzoo] model selection: {splits.selection['description']}")
    steps = (
        info.num_samples // batch
        if dist.even_batches
        else math.ceil(info.num_samples / batch)
    )
    return RunData(
        splits.train,
        info,
        splits.val,
        splits.val_info,
        test,
        test_info,
        splits.selection,
        steps,
    )


def _split_options(spec, recipe):
    stream = spec.data.stream
    if spec.freeze_until is not None and stream is None:
        stream = True  # only the labels are read: images come from maps
    return dict(
        image_size=int(recipe["image_size"]),
        batch_size=int(recipe["batch_size"]),
        on_error=spec.data.on_error,
        classes=list(spec.data.classes) if spec.data.classes else None,
        stream=stream,
    )


def _optional_split(data, split, **kwargs):
    from ferzoo.data import MissingSplitError
    from ferzoo.data import load_split

    try:
        return load_split(data, split=split, **kwargs)
    except MissingSplitError as e:  # a split that is there but bad raises
        print(
            f"[ferzoo] no {split} split ({e}); continuing without it.",
            file=sys.stderr,
        )
        return None, None


def build_model(spec, recipe, info, out, state):
    """`(model, records, best)`: the checkpoint to resume, or a new model
    of the preset for `info`'s classes and samples."""
    from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier

    if state is not None:
        checkpoints.recover_checkpoint(out, state)
        model = checkpoints.load_checkpoint(
            out / "last.keras",
            "Start over with --no-resume (resume=False), or pass another "
            "--output-dir",
        )
        records, best = state["records"], state["best"]
        checkpoints.write_history(out / "history.csv", records)
        if spec.fold is None:  # an audit's folds resume silently
            print(
                f"[ferzoo] resuming {out} at epoch {int(state['epoch']) + 2}."
            )
    else:
        records, best = [], -math.inf
        model = NoisyLabelClassifier.from_preset(
            spec.preset,
            num_classes=info.num_classes,
            num_samples=info.num_samples,
            **_freeze(spec),
            **{
                # To every backbone (the heads take its policy).
                "dtype": recipe.get("dtype_policy", "float32"),
                # A class balance (the spec's or the preset's) counts this
                # run's training labels; unused without one.
                "class_counts": info.counts,
                **spec.overrides,
            },
        )
        # The class names travel with the model (.keras and preset).
        model.recipe = {**recipe, "class_names": list(info.class_names)}
        model.compile()
    if model.num_samples != info.num_samples:
        raise DataError(
            f"the resumed model has {model.num_samples} per-sample rows but "
            f"the data has {info.num_samples} training samples; use a new "
            "--output-dir or --no-resume",
            path=out / "last.keras",
        )
    return model, records, best


def _freeze(spec):
    return {"freeze_until": spec.freeze_until} if spec.freeze_until else {}


def _cache_trunk(fitted, epochs, verbose):
    """Swap the pipelines for the frozen trunk's cached maps."""
    from ferzoo.data.trunk_cache import cached_datasets

    spec, data = fitted.spec, fitted.data
    data.train, data.val, data.test, report = cached_datasets(
        fitted.model,
        spec.data.source,
        {"train": data.info, "val": data.val_info, "test": data.test_info},
        fitted.recipe,
        spec.seed,
        epochs,
        cache_dir=spec.trunk_cache,
        verbose=bool(verbose),
        limit_per_class=spec.data.limit_per_class,
        on_error=spec.data.on_error,
        classes=list(spec.data.classes) if spec.data.classes else None,
    )
    return report


def _verbosity(verbose):
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return verbose
