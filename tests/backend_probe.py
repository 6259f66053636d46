"""Run one model on one batch under the current KERAS_BACKEND.

Usage: python -m tests.backend_probe FOLDER OUT.npz

Loads FOLDER/model.keras and FOLDER/batch.npz, runs a training-mode
forward pass, `compute_loss(training=True)` and its gradients, and saves
logits, loss, flattened gradients and every per-sample table to OUT.npz.
Used by `MethodTestCase.run_backend_consistency_test`.
"""

import os
import sys

import keras
import numpy as np
from keras import ops

import ferzoo.models  # noqa: F401  (registers every method for load_model)
from tests.test_case import table_values


def main(folder, out):
    model = keras.saving.load_model(os.path.join(folder, "model.keras"))
    batch = np.load(os.path.join(folder, "batch.npz"))
    x = {"images": batch["images"], "sample_ids": batch["sample_ids"]}
    y = batch["labels"]
    x_t = {k: ops.convert_to_tensor(v) for k, v in x.items()}
    y_t = ops.convert_to_tensor(y)
    model.epoch.assign(model.warmup_epochs)  # act as after the warm-up
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y_pred = model(x_t, training=True)
            loss = model.compute_loss(x_t, y_t, y_pred, training=True)
        grads = tape.gradient(loss, model.trainable_variables)
        logits = y_pred["logits"]
    else:
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        metric_vars = [v.value for v in model.metrics_variables]

        def loss_fn(tv, ntv):
            y_pred, ntv = model.stateless_call(tv, ntv, x_t, training=True)
            loss, (_, ntv, _) = model.stateless_compute_loss(
                tv, ntv, metric_vars, x_t, y_t, y_pred, training=True
            )
            return loss, (y_pred["logits"], ntv)

        (loss, (logits, ntv)), grads = jax.value_and_grad(
            loss_fn, has_aux=True
        )(trainable, non_trainable)
        for var, value in zip(model.non_trainable_variables, ntv):
            var.assign(value)
    flat = np.concatenate(
        [np.ravel(ops.convert_to_numpy(g)) for g in grads if g is not None]
    )
    results = {
        "logits": ops.convert_to_numpy(logits),
        "loss": np.array(float(ops.convert_to_numpy(loss))),
        "grads": flat,
    }
    for name, value in table_values(model).items():
        results[f"table_{name}"] = value
    np.savez(out, **results)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
