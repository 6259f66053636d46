"""Shared test helpers, after keras-hub's `TestCase`.

Each model's test file is short because the checks live here:
serialization, backbone basics, method training contracts, saving,
presets, cross-backend equality and SavedModel export.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import keras
import numpy as np
from absl.testing import parameterized
from keras import ops
from keras.src.utils.naming import to_snake_case

import ferzoo

REPO = pathlib.Path(__file__).resolve().parent.parent


def load_script(name, module_name=None):
    """The module of `scripts/<name>` (scripts are not a package)."""
    import importlib.util

    path = REPO / "scripts" / name
    spec = importlib.util.spec_from_file_location(
        module_name or path.stem, path
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_backbone(image_size=32, filters=(8, 16)):
    """A two-stage SmallCNN: fast enough for every method test."""
    return ferzoo.backbones.SmallCNNBackbone(
        image_shape=(image_size, image_size, 3),
        stackwise_num_filters=list(filters),
        num_convs_per_stage=1,
    )


def tiny_dwmca(backbone, landmark_backbone, num_samples, **kwargs):
    """A DWMCA with small streams (token 16, 2 heads, fusion 32, anchors 2)."""
    sizes = dict(
        token_dim=16,
        num_heads=2,
        fusion_dim=32,
        embedding_dim=16,
        anchors_per_class=2,
    )
    return ferzoo.models.DWMCA(
        backbone=backbone,
        landmark_backbone=landmark_backbone,
        num_samples=num_samples,
        **{**sizes, **kwargs},
    )


def tiny_batch(num_samples=16, size=32, num_classes=7, seed=0):
    """`(x, y)` with RGB pixels in [0, 255], sample ids and labels."""
    rng = np.random.default_rng(seed)
    x = {
        "images": rng.uniform(0, 255, (num_samples, size, size, 3)).astype(
            "float32"
        ),
        "sample_ids": np.arange(num_samples, dtype="int32"),
    }
    y = rng.integers(0, num_classes, num_samples).astype("int32")
    return x, y


# --- NumPy references shared by the method tests ---------------------------
def numpy_softmax(logits):
    """Softmax over the last axis."""
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def numpy_ce(logits, labels):
    """Per-sample cross-entropy of integer `labels` under `logits`."""
    z = logits - logits.max(1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]


def numpy_rank_loss(alpha, beta, margin):
    """SCN's RR-Loss: margin hinge on the top-beta and the rest's means."""
    ranked = np.sort(alpha)[::-1]
    m = int(beta * len(alpha))
    return max(0.0, margin - (ranked[:m].mean() - ranked[m:].mean()))


def raw_outputs(model, x):
    """`call(x, training=False)` as a dict, compiled (fast on JAX)."""
    return keras.Model.predict(model, x, batch_size=len(x["images"]), verbose=0)


def symmetrize_kernels(model):
    """Make every conv kernel left-right symmetric: a flip-equivariant net."""
    for layer in model.backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            k = np.asarray(layer.kernel.numpy())
            layer.kernel.assign(0.5 * (k + k[:, ::-1]))


def noisy_synthetic(num_samples=224, size=32):
    """Synthetic faces with 30% symmetric label noise, as a train batch."""
    images, clean = ferzoo.data.make_synthetic_faces(
        num_samples, image_size=size
    )
    noisy = ferzoo.data.symmetric_noise(clean, 0.3, 7, seed=0).labels
    x = {
        "images": np.repeat(images[..., None], 3, -1).astype("float32"),
        "sample_ids": np.arange(num_samples, dtype="int32"),
    }
    return x, noisy


def gradients(fn, *values):
    """NumPy gradients of the scalar `fn(*values)` for each of `values`.

    Uses the current backend's autodiff (a `tf.GradientTape` or
    `jax.grad`); a value the result does not depend on gets zeros.
    """
    values = [np.asarray(v, "float32") for v in values]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        variables = [tf.Variable(v) for v in values]
        with tf.GradientTape() as tape:
            out = fn(*variables)
        grads = tape.gradient(out, variables)
        return [
            np.zeros_like(v) if g is None else np.asarray(g)
            for g, v in zip(grads, values)
        ]
    import jax

    argnums = tuple(range(len(values)))
    # Variable writes inside `fn` (per-sample tables) stay in the scope.
    with keras.StatelessScope():
        grads = jax.grad(fn, argnums)(*values)
    return [np.asarray(g) for g in grads]


def loss_gradients(model, x, y):
    """`(loss, {variable path: gradient})` of one training-mode step.

    The forward pass and `compute_loss` as the backend's train step runs
    them (a `tf.GradientTape`, or `stateless_call` under `jax.grad`), for
    every trainable variable. Tables written by the loss are written for
    real on TensorFlow and discarded on JAX.
    """
    variables = model.trainable_variables
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x, y, y_pred, training=True)
        grads = tape.gradient(loss, variables)
    else:
        import jax

        frozen = [v.value for v in model.non_trainable_variables]

        def fn(values):
            y_pred, state = model.stateless_call(
                values, frozen, x, training=True
            )
            mapping = list(zip(variables, values))
            mapping += list(zip(model.non_trainable_variables, state))
            with keras.StatelessScope(state_mapping=mapping):
                return model.compute_loss(x, y, y_pred, training=True)

        loss, grads = jax.value_and_grad(fn)([v.value for v in variables])
    return float(loss), {
        v.path: np.zeros(v.shape) if g is None else np.asarray(g)
        for v, g in zip(variables, grads)
    }


class TestCase(parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)

    def assertAllClose(self, actual, expected, atol=1e-6, rtol=1e-6, msg=""):
        np.testing.assert_allclose(
            ops.convert_to_numpy(actual),
            ops.convert_to_numpy(expected),
            atol=atol,
            rtol=rtol,
            err_msg=msg,
        )

    def tmp_dir(self):
        path = tempfile.mkdtemp(prefix="ferzoo-test-")
        self.addCleanup(shutil.rmtree, path, ignore_errors=True)
        return path

    # --- Serialization -------------------------------------------------
    def run_serialization_test(self, instance):
        config = instance.get_config()
        json.dumps(config)  # flat and JSON-able
        revived = instance.__class__.from_config(config)
        self.assertEqual(
            json.dumps(config, sort_keys=True, default=str),
            json.dumps(revived.get_config(), sort_keys=True, default=str),
        )
        serialized = keras.saving.serialize_keras_object(instance)
        again = keras.saving.deserialize_keras_object(serialized)
        self.assertIsInstance(again, instance.__class__)
        self.assertEqual(
            json.dumps(config, sort_keys=True, default=str),
            json.dumps(again.get_config(), sort_keys=True, default=str),
        )

    # --- Backbones -----------------------------------------------------
    def run_backbone_test(
        self,
        cls,
        init_kwargs,
        input_data,
        expected_output_shape,
        run_mixed_precision=True,
    ):
        backbone = cls(**init_kwargs)
        output = backbone(input_data)
        self.assertEqual(tuple(output.shape), tuple(expected_output_shape))
        self.assertEqual(backbone.num_features, expected_output_shape[-1])
        # uint8 pixels give the same features as float pixels.
        as_uint8 = np.asarray(input_data).round().clip(0, 255).astype("uint8")
        np.testing.assert_allclose(
            ops.convert_to_numpy(backbone(as_uint8)),
            ops.convert_to_numpy(backbone(as_uint8.astype("float32"))),
            atol=1e-5,
        )
        # tf.data predict.
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices(np.asarray(input_data)).batch(2)
        predicted = backbone.predict(ds, verbose=0)
        self.assertEqual(tuple(predicted.shape), tuple(expected_output_shape))
        # The default name is the snake_case class name.
        self.assertTrue(backbone.name.startswith(to_snake_case(cls.__name__)))
        self.run_serialization_test(backbone)
        if run_mixed_precision:
            mixed = cls(**{**init_kwargs, "dtype": "mixed_bfloat16"})
            out = mixed(input_data)
            self.assertEqual(tuple(out.shape), tuple(expected_output_shape))
            self.assertEqual(
                keras.backend.standardize_dtype(out.dtype), "bfloat16"
            )


def table_values(model):
    """`{name: numpy array}` of every per-sample table of `model`."""
    from ferzoo.layers import SampleTable

    return {
        layer.name: layer.numpy().copy()
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, SampleTable)
    }


class MethodTestCase(TestCase):
    """Checks every method in `ferzoo.models` must pass.

    `setUp` gives `self.kwargs` (a tiny backbone, 7 classes, 16 samples
    and the method's `method_kwargs()`) and `self.data` (16 images of
    `image_size`).
    """

    image_size = 32

    def method_kwargs(self):
        """The method's own arguments of `self.kwargs` (subclasses)."""
        return {}

    def setUp(self):
        super().setUp()
        self.kwargs = {
            "backbone": tiny_backbone(self.image_size),
            "num_classes": 7,
            "num_samples": 16,
            **self.method_kwargs(),
        }
        self.data = tiny_batch(16, size=self.image_size)

    def loss_of(self, model, y_pred, labels, ids, training=True):
        """`compute_loss` on crafted outputs; `(loss, {term: value})`."""
        y_pred = {
            k: ops.convert_to_tensor(np.asarray(v, "float32"))
            for k, v in y_pred.items()
        }
        x = {"images": None, "sample_ids": ops.convert_to_tensor(ids)}
        for tracker in model.loss_trackers:
            tracker.reset_state()
        loss = model.compute_loss(x, labels, y_pred, training=training)
        terms = {m.name[5:]: float(m.result()) for m in model.loss_trackers}
        return float(loss), terms

    def run_round_trip_tests(self, cls, init_kwargs, train_data):
        """Saving, the two backends' equality and the SavedModel export."""
        self.run_model_saving_test(cls, init_kwargs, train_data)
        self.run_backend_consistency_test(cls, init_kwargs, train_data)
        self.run_export_test(cls, init_kwargs, train_data)

    def run_method_test(
        self, cls, init_kwargs, train_data, expected_output_shape
    ):
        x, y = train_data
        # Acting from the 3rd epoch: the 1st is inside the warm-up.
        model = cls(**{**init_kwargs, "warmup_epochs": 3})
        with self.assertRaisesRegex(ValueError, "loss"):
            model.compile(loss="sparse_categorical_crossentropy")
        model.compile()
        before = table_values(model)
        self.assertNotEmpty(before, "methods keep per-sample tables")
        # The 1st epoch is inside the warm-up: relabel tables must not move.
        # A method without warm-up state (Baseline, DacFER) scores every
        # sample from the 1st epoch on.
        h1 = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        during = table_values(model)
        warmup_tables = getattr(model, "warmup_tables", ())
        for name in warmup_tables:
            np.testing.assert_array_equal(before[name], during[name], name)
        if not warmup_tables:
            self.assertTrue(
                np.isfinite(during["score_table"]).all(),
                "a method without warm-up scores every sample at once",
            )
        h2 = model.fit(x, y, batch_size=8, epochs=3, initial_epoch=1, verbose=0)
        self.assertEqual(int(ops.convert_to_numpy(model.epoch)), 2)
        # After the warm-up they move.
        after_warmup = table_values(model)
        for name in warmup_tables:
            self.assertTrue(
                (before[name] != after_warmup[name]).any(),
                f"{name} did not move after the warm-up",
            )
        for history in (h1.history, h2.history):
            self.assertTrue(np.isfinite(history["loss"]).all(), history)
            for term in model.loss_terms:
                self.assertIn(f"loss_{term}", history)
                self.assertTrue(np.isfinite(history[f"loss_{term}"]).all())
        # evaluate() neither reads nor writes the tables: a val split
        # larger than the training split (ids past `num_samples`) works,
        # and its loss is the loss of the same model with fresh tables.
        after_fit = table_values(model)
        val_x = {
            "images": np.concatenate([x["images"], x["images"][::-1]]),
            "sample_ids": np.arange(2 * len(y), dtype="int32"),
        }
        val_y = np.concatenate([y, y[::-1]])
        val_loss = model.evaluate(val_x, val_y, batch_size=8, verbose=0)[0]
        for name, value in table_values(model).items():
            np.testing.assert_array_equal(after_fit[name], value, name)
        tables = {
            layer.name: layer
            for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, ferzoo.layers.SampleTable)
        }
        for table in tables.values():
            table.reset()
        fresh_loss = model.evaluate(val_x, val_y, batch_size=8, verbose=0)[0]
        self.assertAllClose(val_loss, fresh_loss, atol=1e-6, rtol=1e-6)
        for name, table in tables.items():
            table.table.assign(after_fit[name])
        # Every sample got a finite clean score.
        scores = model.clean_scores()
        self.assertEqual(scores.shape, (len(y),))
        self.assertTrue(np.isfinite(scores).all(), scores)
        # predict on bare images returns probabilities.
        probs = model.predict(x["images"], batch_size=8, verbose=0)
        self.assertEqual(probs.shape, tuple(expected_output_shape))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        self.run_serialization_test(model)
        return model

    def run_model_saving_test(self, cls, init_kwargs, train_data):
        x, y = train_data
        model = cls(**init_kwargs)
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        path = os.path.join(self.tmp_dir(), "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        self.assertIsInstance(restored, cls)
        np.testing.assert_allclose(
            model.predict(x["images"], verbose=0),
            restored.predict(x["images"], verbose=0),
            atol=1e-6,
        )
        original_tables = table_values(model)
        for name, value in table_values(restored).items():
            np.testing.assert_array_equal(original_tables[name], value)
        # Training continues from the restored state.
        restored.fit(x, y, batch_size=8, epochs=1, verbose=0)
        return restored

    def run_backend_consistency_test(self, cls, init_kwargs, train_data):
        """Same weights and batch: same logits, loss, grads and tables.

        Runs both backends in subprocesses, so it runs once, in the
        TensorFlow pass of the backend matrix.
        """
        if keras.backend.backend() != "tensorflow":
            self.skipTest("runs both backends from the TensorFlow pass")
        x, y = train_data
        model = cls(**init_kwargs)
        folder = self.tmp_dir()
        model.save(os.path.join(folder, "model.keras"))
        np.savez(
            os.path.join(folder, "batch.npz"),
            images=x["images"],
            sample_ids=x["sample_ids"],
            labels=y,
        )
        results = {}
        for backend in ("tensorflow", "jax"):
            out = os.path.join(folder, f"{backend}.npz")
            env = {**os.environ, "KERAS_BACKEND": backend}
            proc = subprocess.run(
                [sys.executable, "-m", "tests.backend_probe", folder, out],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
            )
            self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
            results[backend] = dict(np.load(out))
        tf_out, jax_out = results["tensorflow"], results["jax"]
        self.assertEqual(sorted(tf_out), sorted(jax_out))
        for key in tf_out:
            tol = 1e-4 if key == "grads" else 1e-5
            np.testing.assert_allclose(
                tf_out[key], jax_out[key], atol=tol, rtol=1e-4, err_msg=key
            )

    def run_export_test(self, cls, init_kwargs, train_data):
        import tensorflow as tf

        x, _ = train_data
        model = cls(**init_kwargs)
        path = os.path.join(self.tmp_dir(), "saved")
        ferzoo.export.export_saved_model(model, path)
        reloaded = tf.saved_model.load(path)
        served = reloaded.serve(tf.constant(x["images"][:5])).numpy()
        np.testing.assert_allclose(
            served, model.predict(x["images"][:5], verbose=0), atol=1e-5
        )
