"""From a data spec (`"fer2013:/data/fer2013"`) to batched tf.data pipelines.

One path for every caller: `read_data` turns a `DataSpec` and a split
name into a `SplitData` (the samples' pixels, or their file paths to
stream, and a `DatasetInfo` with the noisy and clean labels), and
`read_training_data` adds the split model selection uses (the data set's
own val split, or one carved out of the noisy training split).
`SplitData.dataset` batches either (`ferzoo.data.pipeline`);
`load_split` and `load_training_splits` are those steps behind keyword
arguments.
"""

import dataclasses

import numpy as np

from ferzoo.data import streaming
from ferzoo.data.info import DatasetInfo
from ferzoo.data.noise import noisy_labels
from ferzoo.data.pipeline import batch_pipeline  # noqa: F401 (re-exported)
from ferzoo.data.pipeline import make_dataset
from ferzoo.data.records import MissingSplitError
from ferzoo.data.spec import DataSpec
from ferzoo.data.splits import carve_val_split


@dataclasses.dataclass
class SplitData:
    """One split of a `DataSpec`: its samples and their info.

    Args:
        pixels: uint8 array `(N, H, W, 3)`, or an object array of the
            samples' file paths (a streamed split, decoded in tf.data).
        info: DatasetInfo. Labels (noisy on the training split), clean
            labels, noise mask, names and sources, row for row.
        spec: DataSpec. What was read.
    """

    pixels: np.ndarray
    info: DatasetInfo
    spec: DataSpec

    @property
    def streamed(self):
        return self.pixels.dtype == object

    def subset(self, indices, split=None):
        """The samples at `indices`, as `DatasetInfo.subset`."""
        return dataclasses.replace(
            self,
            pixels=self.pixels[indices],
            info=self.info.subset(indices, split),
        )

    def dataset(self, batch_size=64, **kwargs):
        """The split's batches, with `ferzoo_info` set to its info.

        `kwargs` (`training`, `augment`, `seed`, `epochs`,
        `drop_remainder`) are `make_dataset`'s; a streamed split goes
        through `ferzoo.data.streaming.stream_dataset`.
        """
        labels = self.info.labels
        if self.streamed:
            ds = streaming.stream_dataset(
                self.pixels,
                labels,
                self.spec.image_size,
                on_error=self.spec.on_error,
                batch_size=batch_size,
                **kwargs,
            )
        else:
            ds = make_dataset(self.pixels, labels, batch_size, **kwargs)
        ds.ferzoo_info = self.info
        return ds


def read_data(spec, split="train"):
    """Read one split of a `DataSpec`, with its noise on the train split.

    Images are decoded into memory, or listed to stream (`spec.stream`,
    see `ferzoo.data.streaming`); the noise (`spec.noise`) is applied to
    the `train` split only and recorded in `info.noise`, with the clean
    labels and the mask of changed labels.

    Args:
        spec: DataSpec. The data and its noise.
        split: str. `"train"`, `"val"` or `"test"`.

    Returns:
        A `SplitData`.

    Example:
    >>> from ferzoo.data import DataSpec, read_data
    >>> spec = DataSpec.from_kwargs("synthetic:70", noise_rate=0.2)
    >>> data = read_data(spec)
    >>> data.info.num_samples, int(data.info.noise_mask.sum())
    (70, 14)
    """
    records = streaming.read_records(spec, split)
    if split == "train":
        labels, noise = noisy_labels(spec.noise, records, spec.on_error)
        info = DatasetInfo.from_records(
            records, spec.data, split, labels, records.labels.copy(), noise
        )
    else:
        info = DatasetInfo.from_records(records, spec.data, split)
    if records.images is None:  # listed, to stream
        pixels = np.asarray(records.paths, dtype=object)
    else:
        pixels = records.images
    return SplitData(pixels, info, spec)


@dataclasses.dataclass
class TrainingData:
    """The training split, the split to select on, and how it was made.

    Args:
        train: SplitData. The training samples (after any carve-out).
        val: SplitData or None. The samples to select on.
        selection: dict. See `TrainingSplits`.
    """

    train: SplitData
    val: object
    selection: dict


def _check_val_fraction(val_fraction):
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(
            "`val_fraction` must be in [0, 1). "
            f"Received: val_fraction={val_fraction}"
        )


def read_training_data(spec, val_fraction=0.1, val_seed=0):
    """The noisy training split of a `DataSpec` and a split to select on.

    The data set's own val split (read without `limit_per_class`) when it
    has one; else a seeded, class-stratified `val_fraction` of the noisy
    training split (`carve_val_split`), or nothing with `val_fraction=0`.
    See `load_training_splits`.

    Returns:
        A `TrainingData`.
    """
    _check_val_fraction(val_fraction)
    train = read_data(spec, "train")
    try:
        val_spec = dataclasses.replace(spec, limit_per_class=None)
        val = read_data(val_spec, "val")
        n = val.info.num_samples
        selection = {"type": "val_split", "num_samples": n}
        selection["description"] = f"official val split, {n} samples"
    except MissingSplitError:
        if not val_fraction:
            selection = {"type": "last_epoch", "num_samples": 0}
            selection["description"] = (
                "last epoch (no val split, val fraction 0)"
            )
            return TrainingData(train, None, selection)
        keep, held = carve_val_split(train.info.labels, val_fraction, val_seed)
        val = train.subset(held, "val (carved from train)")
        train = train.subset(keep)
        n = val.info.num_samples
        selection = {
            "type": "carved",
            "fraction": float(val_fraction),
            "seed": int(val_seed),
            "num_samples": n,
            "description": (
                f"val carved from train, {n} samples, seed {int(val_seed)}"
            ),
        }
    return TrainingData(train, val, selection)


@dataclasses.dataclass
class TrainingSplits:
    """The training pipeline, the validation pipeline and how it was made.

    Args:
        train: tf.data.Dataset. Training batches; `sample_ids` index
            `train_info` (the training samples left after any carve-out).
        train_info: DatasetInfo. The training samples, with noisy and
            clean labels and the noise mask.
        val: tf.data.Dataset or None. Validation batches (no shuffling,
            no augmentation), or `None` when selecting on nothing.
        val_info: DatasetInfo or None. The validation samples.
        selection: dict. What model selection uses: `type` is
            `"val_split"` (the data set's own), `"carved"` (held out of
            the noisy training split; with `fraction`, `seed`) or
            `"last_epoch"`; `num_samples`; `description`, a sentence
            for logs and reports.
    """

    train: object
    train_info: DatasetInfo
    val: object
    val_info: object
    selection: dict


# The arguments of `load_split` and `load_training_splits` that make their
# `DataSpec`, under the same names.
_SPEC_ARGS = (
    "data",
    "image_size",
    "on_error",
    "limit_per_class",
    "subset_seed",
    "classes",
    "stream",
    "noise_rate",
    "noise_type",
    "noise_seed",
    "noise_file",
)


def _spec(arguments):
    """The `DataSpec` of a keyword wrapper's arguments (its `locals()`)."""
    return DataSpec.from_kwargs(**{k: arguments[k] for k in _SPEC_ARGS})


def load_split(
    data,
    split="train",
    image_size=48,
    batch_size=64,
    noise_rate=0.0,
    noise_type="symmetric",
    noise_seed=0,
    noise_file=None,
    augment=None,
    seed=0,
    on_error="raise",
    limit_per_class=None,
    training=None,
    subset_seed=0,
    classes=None,
    epochs=None,
    stream=None,
):
    """Load a split of a data set as a tf.data pipeline plus its info.

    `data` is `"KIND:PATH"`: `synthetic` (no path, or `synthetic:N`
    training samples; the embedded default), `imagefolder:DIR`
    (`DIR/train|val|test/<class>/`, or one folder of class folders: the
    train and test split, no val split), `fer2013:DIR_OR_CSV`,
    `rafdb:DIR`, `ferplus:DIR_OR_CSV` or `affectnet:DIR_OR_CSV`. Label
    noise (a seeded rate, or an EAC-style `noise_file`) is applied to the
    `train` split only; other splits ignore the noise arguments.

    Args:
        data: str. The data spec.
        split: str. `"train"`, `"val"` or `"test"`. Defaults to `"train"`.
        image_size: int. Images are resized to this square. Defaults
            to `48`.
        batch_size: int. Defaults to `64`.
        noise_rate: float. Fraction of each class to flip. Defaults to 0.
        noise_type: str. `"symmetric"` or `"pair"`.
        noise_seed: int. Seed of the flips. Defaults to `0`.
        noise_file: str or None. RAF-DB-format noisy label file.
        augment: dict or None. Augmentation recipe (train split).
        seed: int. Shuffle and augmentation seed. Defaults to `0`.
        on_error: str. `"raise"` or `"skip"` bad samples.
        limit_per_class: int or None. A fixed, seeded, per-class cap.
        training: bool or None. Shuffle and augment; defaults to
            `split == "train"`.
        subset_seed: int. Seed of the `limit_per_class` subset.
        classes: list of str, or None. The class order of `imagefolder`
            (default: the train split's class folders, for every split)
            or `rafdb` data (default: RAF-DB's order).
        epochs: `(first, last)` or None. See `make_dataset`.
        stream: bool or None. Decode images inside tf.data from their
            files (`ferzoo.data.streaming`) instead of into memory;
            `None` streams file-backed splits above `STREAM_THRESHOLD`.

    Returns:
        `(dataset, info)`: a `tf.data.Dataset` (with `ferzoo_info` set)
        and a `DatasetInfo`.

    Example:
    >>> import ferzoo.data
    >>> ds, info = ferzoo.data.load_split("synthetic:70", noise_rate=0.2)
    >>> info.num_samples, info.counts[0], int(info.noise_mask.sum())
    (70, 10, 14)
    """
    spec = _spec(locals())  # before any other local
    split_data = read_data(spec, split)
    training = split == "train" if training is None else training
    ds = split_data.dataset(
        batch_size, training=training, augment=augment, seed=seed, epochs=epochs
    )
    return ds, split_data.info


def load_training_splits(
    data,
    val_fraction=0.1,
    val_seed=0,
    image_size=48,
    batch_size=64,
    noise_rate=0.0,
    noise_type="symmetric",
    noise_seed=0,
    noise_file=None,
    augment=None,
    seed=0,
    on_error="raise",
    limit_per_class=None,
    subset_seed=0,
    classes=None,
    epochs=None,
    stream=None,
    drop_remainder=False,
):
    """Load the training split and a validation split to select on.

    The data set's own val split is used when it has one. Otherwise (e.g.
    RAF-DB) a seeded, class-stratified `val_fraction` of the training
    split is held out (`carve_val_split`): the noise is applied to the
    whole training split first, so the held-out labels are as noisy as
    the ones trained on, and the split is stratified by those noisy
    labels. The remaining training samples keep their relative order and
    are renumbered `0..N-1`: those are the `sample_ids` of the batches
    and the rows of `train_info` (labels, clean labels, noise mask,
    names). With `val_fraction=0` there is nothing to select on (`val` is
    `None`; the last epoch is the result).

    Args:
        data: str. The data spec (see `load_split`).
        val_fraction: float. Fraction of each class to hold out when the
            data has no val split, in `[0, 1)`. Defaults to `0.1`.
        val_seed: int. Seed of the hold-out. Defaults to `0`.
        image_size, batch_size, noise_rate, noise_type, noise_seed,
        noise_file, augment, seed, on_error, limit_per_class,
        subset_seed, classes, epochs, stream: as in `load_split` (noise,
            augmentation, `limit_per_class`, `epochs` apply to the training
            split; a carved-out val split streams when the training split
            does).
        drop_remainder: bool. Drop each epoch's last partial training
            batch (for devices that need equal batches).

    Returns:
        A `TrainingSplits`.

    Example:
    >>> import ferzoo.data
    >>> splits = ferzoo.data.load_training_splits("synthetic:70")
    >>> splits.selection["description"]
    'official val split, 17 samples'
    """
    _check_val_fraction(val_fraction)
    spec = _spec(locals())  # before any other local
    return training_splits(
        read_training_data(spec, val_fraction, val_seed),
        batch_size,
        augment=augment,
        seed=seed,
        epochs=epochs,
        drop_remainder=drop_remainder,
    )


def training_splits(data, batch_size=64, **kwargs):
    """The `TrainingSplits` of a `TrainingData`: its two pipelines.

    `kwargs` (`augment`, `seed`, `epochs`, `drop_remainder`) shape the
    training batches; the val batches are neither shuffled nor augmented.
    """
    train = data.train.dataset(batch_size, training=True, **kwargs)
    val = None if data.val is None else data.val.dataset(batch_size)
    val_info = None if data.val is None else data.val.info
    return TrainingSplits(train, data.train.info, val, val_info, data.selection)
