"""Batches of images and labels: the tf.data pipeline of every split.

Batches are `({"images": (B, H, W, 3), "sample_ids": int32 (B,)}, labels)`;
`sample_ids` index the split's samples, so per-sample tables stay aligned
across epochs and runs. Images are uint8 without augmentation and float32
with it; models normalise pixels themselves. `ferzoo.data.streaming` runs
the same pipeline over file paths decoded inside tf.data.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from ferzoo.data.augment import Augmenter


@dataclasses.dataclass(frozen=True)
class Batching:
    """How a split is batched: `make_dataset`'s keywords, as one value."""

    batch_size: int = 64
    training: bool = False
    augment: object = None
    seed: int = 0
    shuffle: object = None
    drop_remainder: bool = False
    epochs: object = None

    def __post_init__(self):
        if int(self.batch_size) < 1:
            raise ValueError(
                "`batch_size` must be >= 1. "
                f"Received: batch_size={self.batch_size}"
            )

    @property
    def shuffled(self):
        """`shuffle`, which defaults to `training`."""
        return self.training if self.shuffle is None else self.shuffle


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
    batching = Batching(
        batch_size, training, augment, seed, shuffle, drop_remainder, epochs
    )
    images = _to_rgb(images)
    labels = np.asarray(labels, "int32")
    if labels.shape != (images.shape[0],):
        raise ValueError(
            "`labels` must have shape (N,) matching `images`. Received: "
            f"labels.shape={labels.shape}, images.shape={images.shape}"
        )
    return batch_pipeline(images, labels, batching)


def batch_pipeline(images, labels, batching, read=None, skip_errors=False):
    """The pipeline of `make_dataset`, shared with `ferzoo.data.streaming`.

    `images` holds the pixels, or with `read` one key per sample (a file
    path) that `read(key)` turns into its pixels inside tf.data, after the
    shuffle and before batching, so streamed and in-memory batches are the
    same. `batching` is a `Batching`; `skip_errors` drops samples whose
    `read` fails.
    """
    b = batching
    augmenter = Augmenter(b.augment)
    if b.training and b.epochs is not None:
        return _epoch_range_dataset(
            images, labels, b, augmenter, read, skip_errors
        )
    ids = np.arange(len(labels), dtype="int32")
    ds = tf.data.Dataset.from_tensor_slices(
        ({"images": images, "sample_ids": ids}, labels)
    )
    if b.shuffled:
        ds = ds.shuffle(max(len(labels), 1), seed=b.seed)
    if read is not None:
        ds = ds.map(
            lambda x, y: (dict(x, images=read(x["images"])), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        if skip_errors:
            ds = ds.ignore_errors()
    ds = ds.batch(int(b.batch_size), drop_remainder=b.drop_remainder)
    if b.training and augmenter.active:
        seeds = tf.data.Dataset.random(b.seed, rerandomize_each_iteration=True)
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


def _epoch_range_dataset(images, labels, b, augmenter, read, skip_errors):
    """Epochs `first..last-1` back to back, each seeded by `(seed, epoch)`.

    `b` is the `Batching` (with `epochs`, `training`).

    Every epoch has `ceil(N / batch_size)` batches (`floor` with
    `drop_remainder`); when `skip_errors` dropped samples it is topped up
    with the epoch's first batches again, so `steps_per_epoch` stays true.
    """
    first, last = (int(e) for e in b.epochs)
    batch_size, drop_remainder = int(b.batch_size), b.drop_remainder
    images = tf.constant(images)
    labels = tf.constant(labels)
    n = int(labels.shape[0])
    steps = n // batch_size if drop_remainder else -(-n // batch_size)

    def one_epoch(epoch):
        key = tf.stack([tf.constant(int(b.seed), "int64"), epoch])
        order = tf.range(n, dtype="int32")
        if b.shuffled:
            order = tf.random.experimental.stateless_shuffle(order, key)
        samples = tf.data.Dataset.from_tensor_slices(order)
        if read is not None:
            samples = samples.map(
                lambda i: (i, read(tf.gather(images, i))),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            if skip_errors:
                samples = samples.ignore_errors()
        batches = samples.batch(batch_size, drop_remainder=drop_remainder)
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
