"""Data sets larger than memory: images read and decoded inside tf.data.

The readers list a split's samples (files, labels, names) and then decode
every image into memory. The streaming path keeps the listing (the readers
run under `ferzoo.data.records.listing_only`, so sample order,
`sample_ids`, names, label noise and subsets are the same) and decodes
each image only when the pipeline reaches it, with the same PIL decoder
(`ferzoo.data.records.decode_image`) in a `tf.numpy_function`, so pixels
are identical to the in-memory path; shuffling, batching and augmentation
are the same code (`ferzoo.data.pipeline.batch_pipeline`).

Memory then holds the file list and a few batches, not the data set.
Splits whose samples are not files (FER2013/FERPlus CSV rows, the
synthetic faces) stay in memory. Under several workers, Keras
(`DataParallel.distribute_dataset`) or `tf.distribute` shard the batched
pipeline per worker.
"""

import numpy as np
import tensorflow as tf

from ferzoo.data import records as records_lib
from ferzoo.data.pipeline import Batching
from ferzoo.data.pipeline import batch_pipeline
from ferzoo.data.records import LazyRecords  # noqa: F401 (re-exported)
from ferzoo.data.sources import parse_data_spec
from ferzoo.data.sources import read_split
from ferzoo.errors import DataError

STREAM_THRESHOLD = 50_000
"""Training splits with more files than this stream when `stream=None`."""

_FILE_KINDS = ("imagefolder", "fer2013", "rafdb", "ferplus", "affectnet")


def _read_split(spec, split):
    return read_split(
        spec.data,
        split,
        spec.image_size,
        spec.on_error,
        spec.limit_per_class,
        spec.subset_seed,
        spec.classes,
    )


def list_split(spec, split):
    """A `LazyRecords` of a file-backed split of the `DataSpec`, or None."""
    kind, _ = parse_data_spec(spec.data)
    if kind not in _FILE_KINDS:
        return None
    try:
        with records_lib.listing_only():
            return _read_split(spec, split)
    except records_lib.NotFiles:
        return None


def read_records(spec, split):
    """`Records` of a split of the `DataSpec` in memory, or `LazyRecords`.

    `spec.stream=True` streams any file-backed split; `None` streams those
    with more than `STREAM_THRESHOLD` samples; `False` never streams.
    """
    if spec.stream is not False:
        lazy = list_split(spec, split)
        if lazy is not None and (spec.stream or len(lazy) > STREAM_THRESHOLD):
            return lazy
    return _read_split(spec, split)


def stream_dataset(paths, labels, image_size, on_error="raise", **pipeline):
    """The pipeline of `make_dataset`, decoding the files `paths` on the fly.

    `paths` are the files of the samples (`LazyRecords.paths`, or a subset
    of them); `pipeline` holds `make_dataset`'s keywords (`batch_size`,
    `training`, `augment`, `seed`, `epochs`, `drop_remainder`). With
    `on_error="skip"` a sample whose file cannot be decoded is dropped
    when read (its table row keeps its value); with `"raise"` the error
    names the file.
    """
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

    batching = Batching(**pipeline)
    return batch_pipeline(paths, labels, batching, read, on_error == "skip")
