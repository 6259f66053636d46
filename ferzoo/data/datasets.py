"""From a data spec (`"fer2013:/data/fer2013"`) to a batched tf.data pipeline.

Batches are `({"images": (B, H, W, 3), "sample_ids": int32 (B,)}, labels)`;
`sample_ids` index the sorted sample list of the split, so per-sample
tables stay aligned across epochs and runs. Images are uint8 without
augmentation and float32 with it; models normalise pixels themselves.
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from ferzoo.data.augment import Augmenter
from ferzoo.data.noise import pair_noise
from ferzoo.data.noise import read_noise_file
from ferzoo.data.noise import symmetric_noise


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
    ids = np.arange(len(labels), dtype="int32")
    ds = tf.data.Dataset.from_tensor_slices(
        ({"images": images, "sample_ids": ids}, labels)
    )
    return batch_pipeline(
        ds,
        len(labels),
        batch_size,
        training,
        augment,
        seed,
        shuffle,
        drop_remainder,
    )


def batch_pipeline(
    ds,
    num_samples,
    batch_size,
    training=False,
    augment=None,
    seed=0,
    shuffle=None,
    drop_remainder=False,
    decode=None,
):
    """Shuffle, (decode,) batch and augment a dataset of single samples.

    Shared by the in-memory path and `ferzoo.data.streaming`, so both
    give the same batches: `decode(ds)` (applied after the shuffle)
    turns streamed samples into the in-memory ones.
    """
    augmenter = Augmenter(augment)
    shuffle = training if shuffle is None else shuffle
    if shuffle:
        ds = ds.shuffle(max(num_samples, 1), seed=seed)
    if decode is not None:
        ds = decode(ds)
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    if training and augmenter.active:
        seeds = tf.data.Dataset.random(seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, seeds.batch(2))

        def train_map(batch, seed_pair):
            x, y = batch
            x = dict(x, images=augmenter.train(x["images"], seed_pair))
            return x, y

        ds = ds.map(train_map, num_parallel_calls=tf.data.AUTOTUNE)
        # The same batches again, ending in a `batch` so that Keras'
        # multi-process `DataParallel` can read the batch size (the zip
        # and map above hide it from `compute_batch_size`).
        ds = ds.unbatch().batch(int(batch_size), drop_remainder=drop_remainder)
    elif augmenter.eval_layers:
        ds = ds.map(
            lambda x, y: (dict(x, images=augmenter.evaluate(x["images"])), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


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
    stream=None,
):
    """Load a split of a data set as a tf.data pipeline plus its info.

    `data` is `"KIND:PATH"`: `synthetic` (no path, or `synthetic:N`
    training samples; the embedded default), `imagefolder:DIR`
    (`DIR/train|val|test/<class>/` or one folder), `fer2013:DIR_OR_CSV`,
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
    from ferzoo.data import streaming

    records = streaming.read_records(
        data, split, image_size, on_error, limit_per_class, subset_seed, stream
    )
    labels, clean, mask, noise = records.labels, None, None, {}
    num_classes = len(records.class_names)
    if split == "train":
        clean = records.labels.copy()
        if noise_file is not None:
            labels = read_noise_file(
                noise_file, records.names, records.class_names
            )
            noise = {"type": "file", "file": os.fspath(noise_file)}
        elif noise_rate:
            make = symmetric_noise if noise_type == "symmetric" else pair_noise
            result = make(clean, noise_rate, num_classes, seed=noise_seed)
            labels = result.labels
            noise = {"type": noise_type, "rate": noise_rate, "seed": noise_seed}
        mask = labels != clean
    info = DatasetInfo(
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
    training = split == "train" if training is None else training
    if isinstance(records, streaming.LazyRecords):
        ds = streaming.stream_dataset(
            records,
            labels,
            image_size,
            batch_size,
            training,
            augment,
            seed,
            on_error,
        )
    else:
        ds = make_dataset(
            records.images,
            labels,
            batch_size=batch_size,
            training=training,
            augment=augment,
            seed=seed,
        )
    ds.ferzoo_info = info
    return ds, info
