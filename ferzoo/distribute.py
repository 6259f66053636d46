"""Data-parallel training on several devices or hosts, on either backend.

`setup("data-parallel")` picks the engine the backend already has and
makes it the process-wide one (as `keras.distribution.set_distribution`
does), so the model built and fitted afterwards is replicated and each
global batch is split across the devices:

- JAX: `keras.distribution.DataParallel` over every visible device. With
  `JAX_COORDINATOR_ADDRESS` (plus `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`)
  or Keras' `KERAS_DISTRIBUTION_*` variables set, it first calls
  `keras.distribution.initialize()`, so the devices of every process
  (host) form one mesh and each process reads its share of each batch.
- TensorFlow: `tf.distribute.MultiWorkerMirroredStrategy` when `TF_CONFIG`
  is set, else `tf.distribute.MirroredStrategy` over the local GPUs (or
  every logical CPU when there is no GPU).

The batch size stays the global one: learning-rate recipes do not scale
with the number of devices. Per-sample tables are replicated variables
written with every replica's rows (`ferzoo.layers.SampleTable`). Only the
chief process (index 0) writes a results folder; the others write to a
private temporary copy (`worker_output_dir`).

This is the one module outside `ferzoo.data` and `ferzoo.export` that
imports TensorFlow and JAX.
"""

import atexit
import functools
import os
import pathlib
import shutil
import tempfile

import keras

DISTRIBUTE_MODES = ("none", "data-parallel")

_JAX_ENV = ("JAX_COORDINATOR_ADDRESS", "KERAS_DISTRIBUTION_JOB_ADDRESSES")


class Distribution:
    """The active distribution: replicas, processes, and who is chief.

    Attributes:
        mode: str. `"none"` or `"data-parallel"`.
        num_replicas: int. Devices a global batch is split across.
        num_workers: int. Processes (hosts) taking part.
        worker_index: int. This process's index; 0 is the chief.
        engine: the backend object (`tf.distribute.Strategy`,
            `keras.distribution.DataParallel`) or None.
    """

    def __init__(self, mode, num_replicas=1, num_workers=1, worker_index=0):
        self.mode = mode
        self.num_replicas = int(num_replicas)
        self.num_workers = int(num_workers)
        self.worker_index = int(worker_index)
        self.engine = None

    @property
    def is_chief(self):
        return self.worker_index == 0

    @property
    def even_batches(self):
        """Whether every batch must split evenly over the devices (JAX).

        `ferzoo.training.train` then builds its training pipeline with
        `drop_remainder=True` and a batch size divisible by the replicas.
        """
        return self.num_replicas > 1 and keras.backend.backend() == "jax"

    def describe(self):
        return {
            "mode": self.mode,
            "backend": keras.backend.backend(),
            "num_replicas": self.num_replicas,
            "num_workers": self.num_workers,
        }

    def worker_output_dir(self, output_dir):
        """`output_dir` on the chief; a private temporary copy elsewhere.

        Non-chief workers run the same callbacks (predicting and saving
        are collective under some engines) but must not write the shared
        folder. Their copy starts with the shared folder's resume files,
        so every worker resumes from the same epoch.
        """
        out = pathlib.Path(output_dir)
        if self.is_chief:
            return out
        tmp = pathlib.Path(
            tempfile.mkdtemp(prefix=f"ferzoo-worker{self.worker_index}-")
        )
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        for name in ("state.json", "last.keras"):
            if (out / name).is_file():
                shutil.copy2(out / name, tmp / name)
        return tmp

    def prepare(self, model):
        """Divide a method's loss by the replicas under `tf.distribute`.

        `tf.distribute` sums the replicas' gradients; Keras divides
        compiled losses by the number of replicas
        (`scale_loss_for_distribution`), but ferzoo methods own
        `compute_loss`, so it is done here. JAX needs nothing: its step
        is one program over the global batch.

        On TensorFlow, the layers with batch statistics (batch
        normalization, average-expression anchoring: any layer with a
        `synchronized` switch) are synchronized across the replicas:
        their statistics are those of the global batch, as on one device
        and on JAX.
        Batch-level terms of a method's loss (SCN's and AFCN's rank
        regularization and low-importance group) stay per replica.
        """
        if self.num_replicas < 2:
            return model
        if keras.backend.backend() == "jax":
            return _divisible_batches(model, self.num_replicas)
        if keras.backend.backend() != "tensorflow":
            return model
        _synchronize_batch_statistics(model)
        if self.num_workers > 1:
            _local_symbolic_build(model, self.engine)
            _vector_logs(model)
        model.compute_loss = _scaled_loss(model.compute_loss, self.num_replicas)
        return model


def _synchronize_batch_statistics(model):
    """Global-batch statistics in the model's batch-level layers (TF).

    Every layer whose training statistics come from the batch takes the
    switch as Keras' `BatchNormalization` does: a boolean `synchronized`
    attribute (ferzoo's `AverageExpressionAnchoring` has one too). With
    it on, the layer computes those statistics over the global batch (an
    all-reduce across the replicas), as on one device. Set on the built
    layers, not saved: ferzoo backbones and heads rebuild their layers
    from their own arguments, so a checkpoint loads unchanged on one
    device and on JAX (which refuses `synchronized=True`).
    """
    for layer in model._flatten_layers(include_self=False):
        if isinstance(getattr(layer, "synchronized", None), bool):
            layer.synchronized = True


def _local_symbolic_build(model, strategy):
    """Build from one local replica's batch (`MultiWorkerMirroredStrategy`).

    Before its first step Keras builds the model from the first batch,
    reduced over the replicas with `strategy.reduce("MEAN", batch)`;
    under a multi-worker strategy that reduce takes one tensor, not a
    dict of inputs, and `fit` fails ("Attempt to convert a value
    ({'images': PerReplica...}) ... to a Tensor"; keras-team/keras#20329,
    open). The build needs only shapes and dtypes, which any replica's
    share has, so it is given the first local replica's share. Used only
    with several workers; Keras' own method runs when it is absent.
    """
    import tensorflow as tf

    build = getattr(model, "_maybe_symbolic_build", None)
    if build is None:
        return

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    @functools.wraps(build)
    def symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(local, next(it))
                break
        return build(data_batch=data_batch)

    model._maybe_symbolic_build = symbolic_build


def _vector_logs(model):
    """Return each step's scalar logs as 1-vectors (multi-worker TF).

    Keras averages a step's logs over the replicas with
    `strategy.reduce("MEAN", value, axis=0)` under a multi-worker
    strategy, which fails on a scalar ("Invalid reduction dimension 0 for
    input with 0 dimensions"). A `(1,)` log reduces over axis 0 to the
    same scalar mean.
    """
    from keras import tree

    def vector(value):
        if len(getattr(value, "shape", (0,))) == 0:
            return keras.ops.reshape(value, (1,))
        return value

    for name in ("train_step", "test_step"):
        step = getattr(model, name)

        def wrapped(data, step=step):
            return tree.map_structure(vector, step(data))

        setattr(model, name, functools.wraps(step)(wrapped))


def _divisible_batches(model, num_replicas):
    """JAX shards every batch evenly: keep every batch a whole one.

    `fit` (training and validation) drops each epoch's last partial
    batch (the order is reshuffled every epoch, so a different few
    samples wait each time). `predict` pads the data by repeating its
    last sample up to a whole number of global batches, so every batch
    (and, with several processes, every process's share of it) has the
    same static size, and trims the padding off the result: test
    predictions cover every sample. Its outputs are replicated on every
    device (`_replicated_predictions`), so each process holds the whole
    prediction array.
    """
    import tensorflow as tf

    fit, predict = model.fit, model.predict

    def batch_size(ds):
        from tensorflow.python.data.experimental.ops import distribute

        size = int(distribute.compute_batch_size(ds))
        if size < 1 or size % num_replicas:
            raise ValueError(
                f"With {num_replicas} devices the batch size must be a "
                f"multiple of {num_replicas}. Received batch size: {size}"
            )
        return size

    def whole(ds):
        if not isinstance(ds, tf.data.Dataset):
            return ds
        if getattr(ds, "ferzoo_drop_remainder", False):
            # An epoch-range pipeline built with whole batches, epoch by
            # epoch (rebatching it here would mix epochs).
            return ds
        return ds.unbatch().batch(batch_size(ds), drop_remainder=True)

    @functools.wraps(fit)
    def fit_whole(x=None, y=None, *args, validation_data=None, **kwargs):
        return fit(
            whole(x), y, *args, validation_data=whole(validation_data), **kwargs
        )

    @functools.wraps(predict)
    def predict_padded(x, *args, **kwargs):
        if not isinstance(x, tf.data.Dataset):
            return predict(x, *args, **kwargs)
        size = batch_size(x)
        count = int(x.reduce(0, lambda n, batch: n + _rows(batch)))
        if not count:
            return predict(x, *args, **kwargs)
        rows = x.unbatch()
        short = (-count) % size
        if short:
            rows = rows.concatenate(rows.skip(count - 1).repeat(short))
        out = predict(rows.batch(size, drop_remainder=True), *args, **kwargs)
        return out[:count]

    model.fit, model.predict = fit_whole, predict_padded
    _replicated_predictions(model)
    return model


def _replicated_predictions(model):
    """Make `predict_step`'s outputs whole on every device (JAX).

    Under `DataParallel` a prediction is sharded like its batch; with
    several processes each holds only its devices' rows and Keras cannot
    fetch the array ("spans non-addressable devices"). Constraining the
    outputs to a replicated layout all-gathers them inside the step.
    """
    from keras import tree

    step = model.predict_step

    def replicate(tensor):
        layout = keras.distribution.TensorLayout(
            [None] * len(tensor.shape),
            keras.distribution.distribution().device_mesh,
        )
        return keras.distribution.distribute_tensor(tensor, layout)

    @functools.wraps(step)
    def predict_step(state, data):
        outputs, state = step(state, data)
        return tree.map_structure(replicate, outputs), state

    model.predict_step = predict_step


def _rows(batch):
    import tensorflow as tf

    first = tf.nest.flatten(batch)[0]
    return tf.shape(first)[0]


def _scaled_loss(compute_loss, num_replicas):
    @functools.wraps(compute_loss)
    def scaled(*args, **kwargs):
        loss = compute_loss(*args, **kwargs)
        return keras.ops.multiply(loss, 1.0 / num_replicas)

    return scaled


_current = Distribution("none")


def current():
    """The `Distribution` the last `setup` made active."""
    return _current


def setup(distribute="none"):
    """Make `distribute` the process-wide distribution and return it.

    Args:
        distribute: str. `"none"` (one device; resets an earlier setup)
            or `"data-parallel"`.

    Returns:
        A `Distribution`.
    """
    global _current
    if distribute not in DISTRIBUTE_MODES:
        raise ValueError(
            f"`distribute` must be one of {list(DISTRIBUTE_MODES)}. "
            f"Received: distribute={distribute!r}"
        )
    backend = keras.backend.backend()
    if distribute == "none":
        _reset(backend)
        _current = Distribution("none")
    elif backend == "jax":
        _current = _setup_jax()
    elif backend == "tensorflow":
        _current = _setup_tensorflow()
    else:
        raise ValueError(
            "`distribute='data-parallel'` needs the jax or tensorflow "
            f"backend. Received backend: {backend}"
        )
    return _current


def _reset(backend):
    if backend == "jax":
        keras.distribution.set_distribution(None)
    elif backend == "tensorflow":
        import tensorflow as tf

        if tf.distribute.has_strategy():
            tf.distribute.experimental_set_strategy(None)


def _setup_jax():
    import jax

    if any(os.environ.get(k) for k in _JAX_ENV) and not _jax_initialized(jax):
        num = os.environ.get("JAX_NUM_PROCESSES")
        index = os.environ.get("JAX_PROCESS_ID")
        keras.distribution.initialize(
            job_addresses=os.environ.get("JAX_COORDINATOR_ADDRESS"),
            num_processes=None if num is None else int(num),
            process_id=None if index is None else int(index),
        )
    if jax.process_count() > 1:
        _nan_equal_multihost_check()
    devices = keras.distribution.list_devices()
    engine = keras.distribution.DataParallel(devices=devices)
    keras.distribution.set_distribution(engine)
    dist = Distribution(
        "data-parallel",
        num_replicas=len(devices),
        num_workers=jax.process_count(),
        worker_index=jax.process_index(),
    )
    dist.engine = engine
    return dist


def _jax_initialized(jax):
    # Not `jax.process_count()`: that starts the XLA backend, after
    # which `jax.distributed.initialize` refuses to run.
    return jax.distributed.is_initialized()


def _nan_equal_multihost_check():
    """Let NaN equal NaN in JAX's multi-process `device_put` check.

    With several processes, `jax.device_put` of a host value onto a
    global sharding asserts the value is the same on every process with
    `np.equal`, so a table created full of NaN (rows not yet written)
    fails it. The same check, with `equal_nan`.
    """
    import jax
    from jax.experimental import multihost_utils

    if getattr(multihost_utils.assert_equal, "ferzoo_nan_equal", False):
        return
    import numpy as np

    def assert_equal(in_tree, fail_message=""):
        def local(x):
            if isinstance(x, jax.Array) and not x.is_fully_addressable:
                return np.asarray(x.addressable_data(0))
            x = np.asarray(x)
            x = x[None] if x.ndim == 0 else x
            return np.concatenate([x] * jax.process_count())

        out = multihost_utils.process_allgather(in_tree, tiled=True)
        same = jax.tree.map(
            lambda a, b: np.array_equal(local(a), b, equal_nan=True),
            in_tree,
            out,
        )
        if not jax.tree.all(same):
            raise AssertionError(f"{fail_message}. Expected: {out}")

    assert_equal.ferzoo_nan_equal = True
    multihost_utils.assert_equal = assert_equal


# One `tf.distribute` strategy per device set and process (see
# `_tf_strategy`).
_tf_strategies = {}


def _tf_strategy(key, make):
    """The process's strategy for `key`, made once by `make()`.

    Every strategy numbers its collective ops from the same start, and
    TensorFlow's collective executor keys a collective by those numbers
    for the life of the process: a second `MirroredStrategy` over the
    same devices reuses the first one's instance keys, so its tables'
    all-gathers and its gradients' all-reduce meet collectives of another
    type ("Collective instance ... expected type 2 and data_type 3 but got
    type 0 and data_type 1") and the step aborts. One strategy serves
    every later model, so its keys keep counting up.
    `MultiWorkerMirroredStrategy` can be made only once per process
    anyway.
    """
    if key not in _tf_strategies:
        _tf_strategies[key] = make()
    return _tf_strategies[key]


def _setup_tensorflow():
    import tensorflow as tf

    if tf.distribute.has_strategy():
        tf.distribute.experimental_set_strategy(None)
    if os.environ.get("TF_CONFIG"):
        strategy = _tf_strategy(
            ("multi-worker", os.environ["TF_CONFIG"]),
            tf.distribute.MultiWorkerMirroredStrategy,
        )
        resolver = strategy.cluster_resolver
        workers = resolver.cluster_spec().as_dict()
        num_workers = sum(len(v) for v in workers.values())
        index = resolver.task_id
        if resolver.task_type == "worker" and "chief" in workers:
            index += 1
    else:
        devices = tf.config.list_logical_devices("GPU")
        devices = devices or tf.config.list_logical_devices("CPU")
        names = tuple(d.name for d in devices)
        strategy = _tf_strategy(
            ("mirrored",) + names,
            lambda: tf.distribute.MirroredStrategy(list(names)),
        )
        num_workers, index = 1, 0
    tf.distribute.experimental_set_strategy(strategy)
    dist = Distribution(
        "data-parallel",
        num_replicas=strategy.num_replicas_in_sync,
        num_workers=num_workers,
        worker_index=index,
    )
    dist.engine = strategy
    return dist
