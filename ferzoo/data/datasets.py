"""From a data spec (`"fer2013:/data/fer2013"`) to a batched tf.data pipeline.

Batches are `({"images": (B, H, W, 3), "sample_ids": int32 (B,)}, labels)`;
`sample_ids` index the sorted sample list of the split, so per-sample
tables stay aligned across epochs and runs. Images are uint8 without
augmentation and float32 with it; models normalise pixels themselves.
"""

import dataclasses
import json

import numpy as np
import tensorflow as tf

from ferzoo.data.augment import Augmenter
from ferzoo.data.noise import apply_noise_file
from ferzoo.data.noise import pair_noise
from ferzoo.data.noise import symmetric_noise
from ferzoo.data.records import MissingSplitError
from ferzoo.data.splits import carve_val_split


@dataclasses.dataclass
class DatasetInfo:
    """What a loaded split holds: labels, clean labels, sources, issues.

    Args:
        class_names: list of str. The class order.
        labels: int32 array. The labels batches carry (noisy if noise
            was applied).
        clean_labels: int32 array or None. Labels before noise (train
            split only).
        noise_mask: bool array or None. `True` where a label was changed.
        sources: list of str. File or `file:line` of each sample.
        skipped: list of `(source, reason)`. Samples skipped on error.
        names: list of str. Image names (to match noise files).
        dropped: dict. Samples a protocol dropped on purpose, by reason.
        data: str. The data spec. split: str. The split.
        noise: dict. The noise protocol applied (empty if none).
    """

    class_names: list
    labels: np.ndarray
    clean_labels: object = None
    noise_mask: object = None
    sources: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    names: list = dataclasses.field(default_factory=list)
    dropped: dict = dataclasses.field(default_factory=dict)
    data: str = ""
    split: str = ""
    noise: dict = dataclasses.field(default_factory=dict)

    @property
    def num_samples(self):
        return int(len(self.labels))

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def counts(self):
        """Samples per class (of `labels`), as a list."""
        return np.bincount(self.labels, minlength=self.num_classes).tolist()

    @property
    def noise_rate(self):
        """Fraction of labels that differ from the clean ones."""
        if self.noise_mask is None or not len(self.noise_mask):
            return 0.0
        return float(np.mean(self.noise_mask))

    def summary(self):
        """A human-readable description of the split."""
        lines = [
            f"{self.data} [{self.split}]: {self.num_samples} samples, "
            f"{self.num_classes} classes"
        ]
        clean = None
        if self.clean_labels is not None and self.noise:
            clean = np.bincount(self.clean_labels, minlength=self.num_classes)
        for i, (name, count) in enumerate(zip(self.class_names, self.counts)):
            extra = "" if clean is None else f" (clean: {clean[i]})"
            lines.append(f"  {name:>10}: {count}{extra}")
        if self.noise:
            flipped = int(np.sum(self.noise_mask))
            lines.append(
                f"  noise: {self.noise} -> {flipped} labels changed "
                f"({self.noise_rate:.1%})"
            )
        if self.skipped:
            lines.append(f"  skipped: {len(self.skipped)} (first: ")
            lines[-1] += f"{self.skipped[0][0]}: {self.skipped[0][1]})"
        if self.dropped:
            lines.append(f"  dropped by protocol: {self.dropped}")
        return "\n".join(lines)

    def subset(self, indices, split=None):
        """The info of the samples at `indices`, in that order.

        Samples skipped or dropped while reading stay with the original
        split's info unless `split` (the new split's name) is given.
        """
        indices = np.asarray(indices, "int64")

        def take(values):
            return None if values is None else np.asarray(values)[indices]

        return dataclasses.replace(
            self,
            labels=take(self.labels),
            clean_labels=take(self.clean_labels),
            noise_mask=take(self.noise_mask),
            sources=[self.sources[i] for i in indices],
            names=[self.names[i] for i in indices],
            skipped=list(self.skipped) if split is None else [],
            dropped=dict(self.dropped) if split is None else {},
            split=self.split if split is None else split,
        )

    def to_json(self):
        """A JSON string of the counts and protocol (no per-sample data)."""
        return json.dumps(
            {
                "data": self.data,
                "split": self.split,
                "num_samples": self.num_samples,
                "class_names": list(self.class_names),
                "counts": self.counts,
                "noise": self.noise,
                "actual_noise_rate": self.noise_rate,
                "num_skipped": len(self.skipped),
                "dropped": dict(self.dropped),
            }
        )


def _to_rgb(images):
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            "`images` must have shape (N, H, W), (N, H, W, 1) or "
            f"(N, H, W, 3). Received: images.shape={images.shape}"
        )
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    if images.dtype != np.uint8:
        images = images.astype("float32")
    return images


def make_dataset(
    images,
    labels,
    batch_size=64,
    training=False,
    augment=None,
    seed=0,
    shuffle=None,
    drop_remainder=False,
    epochs=None,
):
    """Batch images and labels into `({"images", "sample_ids"}, labels)`.

    `sample_ids` is the row index into `images`. Grayscale input is
    replicated to 3 channels. With `training=True` the data is shuffled
    with `seed` (a new, seeded order each epoch) and `augment` applies
    its random transforms; otherwise only its eval transform (e.g. a
    centre crop) is applied.

    Args:
        images: array `(N, H, W)`, `(N, H, W, 1)` or `(N, H, W, 3)`.
        labels: int array `(N,)`.
        batch_size: int. Defaults to `64`.
        training: bool. Shuffle and augment. Defaults to `False`.
        augment: dict or None. A recipe, see `ferzoo.data.augment`.
        seed: int. Shuffle and augmentation seed. Defaults to `0`.
        shuffle: bool or None. Defaults to `training`.
        drop_remainder: bool. Drop the last partial batch.
        epochs: `(first, last)` or None. With `training=True`, the batches
            of epochs `first` to `last - 1` back to back (iterate it once,
            with `steps_per_epoch` batches per epoch); each epoch's order
            and augmentation come from `(seed, epoch)` alone, so epoch `k`
            is the same whether a run started at 0 or resumed at `k`.

    Returns:
        A `tf.data.Dataset`.

    Example:
    >>> import numpy as np
    >>> import ferzoo.data
    >>> ds = ferzoo.data.make_dataset(np.zeros((10, 48, 48), "uint8"),
    ...                               np.zeros(10, "int32"), batch_size=4)
    >>> x, y = next(iter(ds))
    >>> tuple(x["images"].shape), x["sample_ids"].numpy().tolist()
    ((4, 48, 48, 3), [0, 1, 2, 3])
    """
    if int(batch_size) < 1:
        raise ValueError(
            f"`batch_size` must be >= 1. Received: batch_size={batch_size}"
        )
    images = _to_rgb(images)
    labels = np.asarray(labels, "int32")
    if labels.shape != (images.shape[0],):
        raise ValueError(
            "`labels` must have shape (N,) matching `images`. Received: "
            f"labels.shape={labels.shape}, images.shape={images.shape}"
        )
    return batch_pipeline(
        images,
        labels,
        batch_size,
        training,
        augment,
        seed,
        shuffle,
        drop_remainder,
        epochs,
    )


def batch_pipeline(
    images,
    labels,
    batch_size,
    training=False,
    augment=None,
    seed=0,
    shuffle=None,
    drop_remainder=False,
    epochs=None,
    read=None,
    skip_errors=False,
):
    """The pipeline of `make_dataset`, shared with `ferzoo.data.streaming`.

    `images` holds the pixels, or with `read` one key per sample (a file
    path) that `read(key)` turns into its pixels inside tf.data, after the
    shuffle and before batching, so streamed and in-memory batches are the
    same. `skip_errors` drops samples whose `read` fails.
    """
    augmenter = Augmenter(augment)
    shuffle = training if shuffle is None else shuffle
    if training and epochs is not None:
        return _epoch_range_dataset(
            images,
            labels,
            batch_size,
            augmenter,
            seed,
            shuffle,
            drop_remainder,
            epochs,
            read,
            skip_errors,
        )
    ids = np.arange(len(labels), dtype="int32")
    ds = tf.data.Dataset.from_tensor_slices(
        ({"images": images, "sample_ids": ids}, labels)
    )
    if shuffle:
        ds = ds.shuffle(max(len(labels), 1), seed=seed)
    if read is not None:
        ds = ds.map(
            lambda x, y: (dict(x, images=read(x["images"])), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        if skip_errors:
            ds = ds.ignore_errors()
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    if training and augmenter.active:
        seeds = tf.data.Dataset.random(seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, seeds.batch(2))

        def train_map(batch, seed_pair):
            x, y = batch
            x = dict(x, images=augmenter.train(x["images"], seed_pair))
            return x, y

        ds = ds.map(train_map, num_parallel_calls=tf.data.AUTOTUNE)
    elif augmenter.eval_layers:
        ds = ds.map(
            lambda x, y: (dict(x, images=augmenter.evaluate(x["images"])), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def _epoch_range_dataset(
    images,
    labels,
    batch_size,
    augmenter,
    seed,
    shuffle,
    drop_remainder,
    epochs,
    read=None,
    skip_errors=False,
):
    """Epochs `first..last-1` back to back, each seeded by `(seed, epoch)`.

    Every epoch has `ceil(N / batch_size)` batches (`floor` with
    `drop_remainder`); when `skip_errors` dropped samples it is topped up
    with the epoch's first batches again, so `steps_per_epoch` stays true.
    """
    first, last = (int(e) for e in epochs)
    images = tf.constant(images)
    labels = tf.constant(labels)
    n = int(labels.shape[0])
    steps = n // int(batch_size) if drop_remainder else -(-n // int(batch_size))

    def one_epoch(epoch):
        key = tf.stack([tf.constant(int(seed), "int64"), epoch])
        order = tf.range(n, dtype="int32")
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, key)
        samples = tf.data.Dataset.from_tensor_slices(order)
        if read is not None:
            samples = samples.map(
                lambda i: (i, read(tf.gather(images, i))),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            if skip_errors:
                samples = samples.ignore_errors()
        batches = samples.batch(int(batch_size), drop_remainder=drop_remainder)
        if skip_errors:
            batches = batches.repeat().take(steps)
        steps_ds = tf.data.Dataset.range(tf.int64.max)
        keys = steps_ds.map(
            lambda step: tf.random.experimental.stateless_fold_in(key, step)
        )
        return tf.data.Dataset.zip(batches, keys)

    def gather(batch, batch_key):
        if read is None:
            ids, pixels = batch, tf.gather(images, batch)
        else:
            ids, pixels = batch
        x = {"images": pixels, "sample_ids": ids}
        if augmenter.active:
            x["images"] = augmenter.train(x["images"], batch_key)
        return x, tf.gather(labels, ids)

    ds = tf.data.Dataset.range(first, last).flat_map(one_epoch)
    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    ds.ferzoo_drop_remainder = bool(drop_remainder)
    return ds


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
    _check_noise(noise_rate, noise_type, noise_file)
    records = _read_records(
        data,
        split,
        image_size,
        on_error,
        limit_per_class,
        subset_seed,
        classes,
        stream,
    )
    info = _info_with_noise(
        records,
        data,
        split,
        noise_rate,
        noise_type,
        noise_seed,
        noise_file,
        on_error,
    )
    training = split == "train" if training is None else training
    ds = _records_dataset(
        _pixels(records),
        info.labels,
        image_size,
        on_error,
        batch_size=batch_size,
        training=training,
        augment=augment,
        seed=seed,
        epochs=epochs,
    )
    ds.ferzoo_info = info
    return ds, info


def _read_records(
    data, split, image_size, on_error, limit, subset_seed, classes, stream
):
    """`Records` in memory, or `LazyRecords` (file paths) to stream."""
    from ferzoo.data import streaming

    return streaming.read_records(
        data, split, image_size, on_error, limit, subset_seed, stream, classes
    )


def _pixels(records):
    """The pixels of `records`, or the file paths of `LazyRecords`.

    Either is indexed the same way (e.g. by a carved-out val split).
    """
    if records.images is None:
        return np.asarray(records.paths, dtype=object)
    return records.images


def _records_dataset(pixels, labels, image_size, on_error, **kwargs):
    """`make_dataset`, or its streamed twin when `pixels` are paths."""
    if pixels.dtype == object:
        from ferzoo.data import streaming

        return streaming.stream_dataset(
            pixels, labels, image_size, on_error=on_error, **kwargs
        )
    return make_dataset(pixels, labels, **kwargs)


def _check_noise(noise_rate, noise_type, noise_file):
    if noise_type not in ("symmetric", "pair"):
        raise ValueError(
            "`noise_type` must be 'symmetric' or 'pair'. "
            f"Received: noise_type={noise_type!r}"
        )
    if not 0.0 <= float(noise_rate) <= 1.0:
        raise ValueError(
            f"`noise_rate` must be in [0, 1]. Received: noise_rate={noise_rate}"
        )
    if noise_file is not None and noise_rate:
        raise ValueError(
            "Pass either `noise_rate` or `noise_file`, not both. Received: "
            f"noise_rate={noise_rate}, noise_file={noise_file!r}"
        )


def _info_with_noise(
    records,
    data,
    split,
    noise_rate,
    noise_type,
    noise_seed,
    noise_file,
    on_error="raise",
):
    """The `DatasetInfo` of `records`, with noise on the train split."""
    labels, clean, mask, noise = records.labels, None, None, {}
    num_classes = len(records.class_names)
    if split == "train":
        clean = records.labels.copy()
        if noise_file is not None:
            labels, noise = apply_noise_file(
                noise_file,
                records.names,
                records.class_names,
                getattr(records, "listed_names", None),
                on_error,
            )
        elif noise_rate:
            make = symmetric_noise if noise_type == "symmetric" else pair_noise
            result = make(clean, noise_rate, num_classes, seed=noise_seed)
            labels = result.labels
            noise = {"type": noise_type, "rate": noise_rate, "seed": noise_seed}
        mask = labels != clean
    return DatasetInfo(
        class_names=list(records.class_names),
        labels=labels,
        clean_labels=clean,
        noise_mask=mask,
        sources=records.sources,
        skipped=records.skipped,
        names=records.names,
        dropped=records.dropped,
        data=data,
        split=split,
        noise=noise,
    )


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
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(
            "`val_fraction` must be in [0, 1). "
            f"Received: val_fraction={val_fraction}"
        )
    _check_noise(noise_rate, noise_type, noise_file)
    records = _read_records(
        data,
        "train",
        image_size,
        on_error,
        limit_per_class,
        subset_seed,
        classes,
        stream,
    )
    info = _info_with_noise(
        records,
        data,
        "train",
        noise_rate,
        noise_type,
        noise_seed,
        noise_file,
        on_error,
    )
    images = _pixels(records)
    eval_args = dict(image_size=image_size, batch_size=batch_size)
    eval_args.update(on_error=on_error, classes=classes, stream=stream)
    try:
        val, val_info = load_split(data, "val", **eval_args)
        selection = {"type": "val_split", "num_samples": val_info.num_samples}
        selection["description"] = (
            f"official val split, {val_info.num_samples} samples"
        )
    except MissingSplitError:
        if not val_fraction:
            val = val_info = None
            selection = {
                "type": "last_epoch",
                "num_samples": 0,
                "description": "last epoch (no val split, val fraction 0)",
            }
        else:
            keep, held = carve_val_split(info.labels, val_fraction, val_seed)
            val_info = info.subset(held, "val (carved from train)")
            info = info.subset(keep)
            val = _records_dataset(
                images[held],
                val_info.labels,
                image_size,
                on_error,
                batch_size=batch_size,
            )
            val.ferzoo_info = val_info
            images = images[keep]
            selection = {
                "type": "carved",
                "fraction": float(val_fraction),
                "seed": int(val_seed),
                "num_samples": val_info.num_samples,
                "description": (
                    f"val carved from train, {val_info.num_samples} "
                    f"samples, seed {int(val_seed)}"
                ),
            }
    train = _records_dataset(
        images,
        info.labels,
        image_size,
        on_error,
        batch_size=batch_size,
        training=True,
        augment=augment,
        seed=seed,
        epochs=epochs,
        drop_remainder=drop_remainder,
    )
    train.ferzoo_info = info
    return TrainingSplits(train, info, val, val_info, selection)
