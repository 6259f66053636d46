"""Keras callbacks of a benchmark cell: epoch times, time budget, fit."""

import json
import os
import time

import numpy as np


def epoch_timer(path):
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Seconds per epoch (training part and total), kept across resumes."""

        def __init__(self):
            super().__init__()
            self.times = json.loads(path.read_text()) if path.is_file() else []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()
            self.train_end = None

        def on_test_begin(self, logs=None):
            if self.train_end is None:
                self.train_end = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            end = time.perf_counter()
            self.times.append(
                {
                    "epoch": epoch,
                    "train_seconds": (self.train_end or end) - self.start,
                    "total_seconds": end - self.start,
                }
            )
            path.write_text(json.dumps(self.times))

    return EpochTimer()


def time_budget(seconds):
    import keras

    class TimeBudget(keras.callbacks.Callback):
        """Stop after the epoch that leaves no time for another one."""

        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()
            self.longest = 0.0
            self.epoch_start = self.start

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            self.longest = max(self.longest, now - self.epoch_start)
            if now - self.start + 1.3 * self.longest > seconds:
                self.model.stop_training = True

    return TimeBudget()


def fit_record(epoch, predicted, given, clean):
    """How the model fits its training labels, flipped and clean apart.

    Args:
        epoch: int. 1-based epoch the predictions come from.
        predicted: int array. Predicted class of each training image
            (no augmentation).
        given: int array. The labels trained on (noisy).
        clean: int array. The labels before noise.

    Returns:
        A dict: `train_accuracy` (against the given labels),
        `clean_fit` (on the samples whose label was not flipped),
        `flipped_given` (the fraction of flipped samples predicted as
        their wrong given label: memorisation), `flipped_true` (as their
        true label), `num_flipped`.
    """
    predicted, given, clean = map(np.asarray, (predicted, given, clean))
    flipped = given != clean
    num_flipped = int(flipped.sum())

    def frac(mask, labels):
        return (
            float(np.mean(predicted[mask] == labels[mask]))
            if mask.any()
            else None
        )

    return {
        "epoch": int(epoch),
        "train_accuracy": float(np.mean(predicted == given)),
        "clean_fit": frac(~flipped, given),
        "flipped_given": frac(flipped, given),
        "flipped_true": frac(flipped, clean),
        "num_flipped": num_flipped,
    }


def memorisation(path, split_kwargs, every, total_epochs, trunk_cache=None):
    """Training-set fit every `every` epochs and at the last one.

    `split_kwargs` are `ferzoo.data.load_split` arguments of the cell's
    training split (same subset and noise) without shuffling or random
    augmentation. With `trunk_cache` (a model with a frozen trunk) the
    images are the trunk's cached maps of that split. Records go to
    `path`, kept across resumes.
    """
    import keras

    class Memorisation(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.records = (
                json.loads(path.read_text()) if path.is_file() else []
            )
            self.data = None

        def on_epoch_end(self, epoch, logs=None):
            done = epoch + 1
            if done % every and done != total_epochs:
                return
            if self.data is None and trunk_cache is not None:
                self.data = cached_split(self.model, split_kwargs, trunk_cache)
            if self.data is None:
                from ferzoo.data import load_split

                self.data = load_split(**split_kwargs)
            ds, info = self.data
            probs = self.model.predict(ds, verbose=0)
            record = fit_record(
                done, np.argmax(probs, -1), info.labels, info.clean_labels
            )
            self.records = [r for r in self.records if r["epoch"] != done]
            self.records.append(record)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(self.records))
            os.replace(tmp, path)

    return Memorisation()


def cached_split(model, split_kwargs, trunk_cache):
    """`(batches, info)` of the training split from its cached trunk maps."""
    from ferzoo.data import load_split
    from ferzoo.data import trunk_cache as cache_lib

    kwargs = dict(split_kwargs, stream=True)  # info only: nothing decoded
    _, info = load_split(**kwargs)
    maps, full, _ = cache_lib.split_maps(
        model,
        kwargs["data"],
        "train",
        kwargs["image_size"],
        trunk_cache,
        kwargs["batch_size"],
        verbose=False,
        limit_per_class=kwargs.get("limit_per_class"),
    )
    maps = cache_lib.take_rows(maps, cache_lib.rows_of(info, full))
    batches = cache_lib.map_batches(maps, info.labels, kwargs["batch_size"])
    return batches, info
