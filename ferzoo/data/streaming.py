"""Data sets larger than memory: images read and decoded inside tf.data.

The readers list a split's samples (files, labels, names) and then decode
every image into memory. The streaming path keeps the listing (so sample
order, `sample_ids`, names, label noise and subsets are the same) and
decodes each image only when the pipeline reaches it, with the same PIL
decoder (`ferzoo.data.records.decode_image`) in a `tf.numpy_function`, so
pixels are identical to the in-memory path; shuffling, batching and
augmentation are the same code (`ferzoo.data.datasets.batch_pipeline`).

Memory then holds the file list and a few batches, not the data set.
Splits whose samples are not files (FER2013/FERPlus CSV rows, the
synthetic faces) stay in memory. Under several workers, Keras
(`DataParallel.distribute_dataset`) or `tf.distribute` shard the batched
pipeline per worker.
"""

import contextlib
import threading

import numpy as np
import tensorflow as tf

from ferzoo.data import ferplus
from ferzoo.data import readers
from ferzoo.data import records as records_lib
from ferzoo.data.sources import parse_data_spec
from ferzoo.data.sources import read_split
from ferzoo.errors import DataError

STREAM_THRESHOLD = 50_000
"""Training splits with more files than this stream when `stream=None`."""

_FILE_KINDS = ("imagefolder", "fer2013", "rafdb", "ferplus", "affectnet")
_lock = threading.Lock()


class LazyRecords(records_lib.Records):
    """`Records` whose images are file paths, decoded later (`paths`)."""

    paths: list = None


def _lazy_build_records(
    items,
    class_names,
    image_size,
    policy,
    where,
    limit_per_class=None,
    seed=0,
    num_workers=8,
):
    """`build_records` without decoding: the same subset and order."""
    records_lib.check_image_size(image_size)
    labels = np.array([it.label for it in items], "int32")
    listed = [it.name for it in items]
    keep = records_lib.stratified_subset(labels, limit_per_class, seed)
    items = [items[i] for i in keep]
    if any(not isinstance(it.payload, str) for it in items):
        raise _NotFiles()
    if not items:
        raise DataError("no usable samples in this split", path=where)
    lazy = LazyRecords(
        images=None,
        labels=np.array([it.label for it in items], "int32"),
        class_names=list(class_names),
        sources=[it.source for it in items],
        names=[it.name for it in items],
        skipped=list(policy.skipped),
        dropped=dict(policy.dropped),
        listed_names=listed,
    )
    lazy.paths = [it.payload for it in items]
    return lazy


class _NotFiles(Exception):
    pass


@contextlib.contextmanager
def _listing_only():
    # The readers call `build_records` by name; for the duration of one
    # listing they get the non-decoding version.
    modules = (readers, ferplus)
    with _lock:
        saved = [m.build_records for m in modules]
        for m in modules:
            m.build_records = _lazy_build_records
        try:
            yield
        finally:
            for m, fn in zip(modules, saved):
                m.build_records = fn


def list_split(
    data, split, image_size, on_error, limit, subset_seed, classes=None
):
    """A `LazyRecords` of a file-backed split, or None (not files)."""
    kind, _ = parse_data_spec(data)
    if kind not in _FILE_KINDS:
        return None
    try:
        with _listing_only():
            return read_split(
                data, split, image_size, on_error, limit, subset_seed, classes
            )
    except _NotFiles:
        return None


def read_records(
    data,
    split,
    image_size,
    on_error,
    limit,
    subset_seed,
    stream=None,
    classes=None,
):
    """`Records` in memory, or `LazyRecords` to stream.

    `stream=True` streams any file-backed split; `None` streams those
    with more than `STREAM_THRESHOLD` samples; `False` never streams.
    """
    if stream is not False:
        lazy = list_split(
            data, split, image_size, on_error, limit, subset_seed, classes
        )
        if lazy is not None and (stream or len(lazy) > STREAM_THRESHOLD):
            return lazy
    return read_split(
        data, split, image_size, on_error, limit, subset_seed, classes
    )


def stream_dataset(
    paths,
    labels,
    image_size,
    batch_size=64,
    training=False,
    augment=None,
    seed=0,
    on_error="raise",
    epochs=None,
    drop_remainder=False,
):
    """The pipeline of `make_dataset`, decoding the files `paths` on the fly.

    `paths` are the files of the samples (`LazyRecords.paths`, or a subset
    of them); `epochs` and `drop_remainder` are as in `make_dataset`. With
    `on_error="skip"` a sample whose file cannot be decoded is dropped
    when read (its table row keeps its value); with `"raise"` the error
    names the file.
    """
    from ferzoo.data.datasets import batch_pipeline

    size = records_lib.check_image_size(image_size)
    labels = np.asarray(labels, "int32")
    paths = np.array([str(p) for p in paths], dtype=object)
    if labels.shape != paths.shape:
        raise ValueError(
            "`labels` must have one entry per path. Received: "
            f"labels.shape={labels.shape}, {len(paths)} paths"
        )

    def read_file(path):
        path = path.decode() if isinstance(path, bytes) else str(path)
        try:
            return records_lib.decode_image(path, size)
        except Exception as e:  # PIL raises many types.
            raise DataError(
                f"cannot read image ({type(e).__name__}: {e})", path=path
            ) from e

    def read(path):
        image = tf.numpy_function(read_file, [path], tf.uint8)
        image.set_shape(size + (3,))
        return image

    return batch_pipeline(
        paths,
        labels,
        batch_size,
        training=training,
        augment=augment,
        seed=seed,
        drop_remainder=drop_remainder,
        epochs=epochs,
        read=read,
        skip_errors=on_error == "skip",
    )
