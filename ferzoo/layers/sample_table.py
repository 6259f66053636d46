import keras
from keras import ops

from ferzoo.layers.arguments import check_positive_int


@keras.saving.register_keras_serializable(package="ferzoo")
class SampleTable(keras.layers.Layer):
    """A per-sample table: one row of state for each training sample.

    Holds relabels, confidences or similarities in a non-trainable variable
    indexed by the `sample_ids` of a batch, so the state is saved with the
    model weights and carried by JAX's stateless train step. Rows start at
    `fill_value`.

    Args:
        num_samples: int. Number of rows (training samples).
        row_shape: tuple of ints. Shape of one row. Defaults to `()`.
        fill_value: float or int. Initial value of every row. Defaults to
            `0`.
        table_dtype: str. Dtype of the table. Defaults to `"float32"`.

    Example:
    >>> table = ferzoo.layers.SampleTable(num_samples=4, fill_value=-1,
    ...                                   table_dtype="int32")
    >>> table.update([1, 3], [5, 6])
    >>> [int(v) for v in table.gather([0, 1, 3])]
    [-1, 5, 6]
    """

    def __init__(
        self,
        num_samples,
        row_shape=(),
        fill_value=0,
        table_dtype="float32",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int(num_samples=num_samples)
        self.num_samples = num_samples
        self.row_shape = tuple(int(d) for d in row_shape)
        self.fill_value = fill_value
        self.table_dtype = table_dtype
        self.table = self.add_weight(
            name="table",
            shape=(num_samples,) + self.row_shape,
            initializer=keras.initializers.Constant(fill_value),
            dtype=table_dtype,
            trainable=False,
            # Every replica writes the same gathered rows (see `update`).
            aggregation="only_first_replica",
        )
        self.built = True

    def gather(self, sample_ids):
        """Rows for `sample_ids` (any integer dtype)."""
        ids = ops.cast(sample_ids, "int32")
        return ops.take(self.table, ids, axis=0)

    def update(self, sample_ids, values):
        """Write `values` into the rows of `sample_ids`."""
        ids = ops.reshape(ops.cast(sample_ids, "int32"), (-1,))
        values = ops.cast(values, self.table.dtype)
        ids, values = _gather_replicas(ids, values)
        self.table.assign(
            ops.scatter_update(self.table, ops.expand_dims(ids, 1), values)
        )

    def reset(self):
        """Set every row back to `fill_value`."""
        self.table.assign(
            ops.full(self.table.shape, self.fill_value, self.table.dtype)
        )

    def numpy(self):
        """The whole table as a NumPy array."""
        return ops.convert_to_numpy(self.table)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_samples": self.num_samples,
                "row_shape": list(self.row_shape),
                "fill_value": self.fill_value,
                "table_dtype": self.table_dtype,
            }
        )
        return config


def _gather_replicas(ids, values):
    """All replicas' rows, so a multi-device table is complete.

    With JAX (`keras.distribution`) arrays are global and nothing is to
    do. Under a `tf.distribute` strategy each replica holds its share of
    the batch; gathering them makes every replica write every row. This
    is the one place a layer touches TensorFlow, and only on that backend.
    """
    if keras.backend.backend() != "tensorflow":
        return ids, values
    import tensorflow as tf  # noqa: TID251

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return ids, values
    # `tf.identity` places each tensor on this replica's device: a batch
    # tensor passed through unchanged (DualBranch's int32 labels) has
    # none, and `MultiWorkerMirroredStrategy` refuses to gather it
    # ("destinations can not be empty").
    ids, values = tf.identity(ids), tf.identity(values)
    return context.all_gather(ids, axis=0), context.all_gather(values, 0)
