"""Run by tests/distribute_test.py in a fresh process (device flags first).

`python -m tests.distribute_child BACKEND OUT METHOD...` trains each
method on 64 tiny synthetic faces, on one device and then on two host
devices, and writes `OUT/<method>.npz` with both runs' tables and weights,
and the one-device run's predictions of 20 images (batch 16: a partial
last batch) made on one device and on two.
"""

import os
import sys

backend, out, methods = sys.argv[1], sys.argv[2], sys.argv[3:]
os.environ["KERAS_BACKEND"] = backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if backend == "jax":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
import tensorflow as tf  # noqa: E402

if backend == "tensorflow":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402

import ferzoo  # noqa: E402
from ferzoo import distribute  # noqa: E402
from ferzoo import training  # noqa: E402
from tests.test_case import table_values  # noqa: E402
from tests.test_case import tiny_backbone  # noqa: E402

RECIPE = {
    "optimizer": "adam",
    "learning_rate": 0.002,
    "epochs": 2,
    "batch_size": 16,
    "image_size": 32,
    # tf.distribute re-instantiates the pipeline and its augmentation
    # seeds stream differs from the one-device run (JAX's is the same);
    # without augmentation both backends see identical batches.
    "augment": None,
}


def tiny_preset(method, path):
    # The same initial weights whichever methods ran before in this process.
    keras.utils.set_random_seed(0)
    cls = getattr(ferzoo.models, method)
    extra = {}
    if method == "DWMCA":
        extra["landmark_backbone"] = tiny_backbone(32)
    model = cls(backbone=tiny_backbone(32), num_classes=7, **extra)
    model.recipe = RECIPE
    model.save_to_preset(path, {"recipe": RECIPE})
    return path


# Batch-level loss terms stay per replica under `tf.distribute` (see
# docs/distributed.md): on TensorFlow, SCN trains without its rank
# regularization and relabels every sample of a batch, not only its
# low-importance group, so that both runs optimize the same loss.
TF_OVERRIDES = {"SCN": {"rank_weight": 0.0, "relabel_low_group_only": False}}
IMAGES = np.random.default_rng(1).uniform(0, 255, (20, 32, 32, 3))
IMAGES = tf.data.Dataset.from_tensor_slices(IMAGES.astype("float32")).batch(16)

for method in methods:
    preset = tiny_preset(method, os.path.join(out, method + "_preset"))
    overrides = TF_OVERRIDES.get(method, {}) if backend == "tensorflow" else {}
    arrays = {}
    for mode in ("none", "data-parallel"):
        run = os.path.join(out, f"{method}_{mode}")
        results = training.train(
            preset,
            data="synthetic:64",
            output_dir=run,
            noise_rate=0.3,
            verbose=0,
            overrides={"warmup_epochs": 1, **overrides},
            distribute=mode,
        )
        print(method, mode, results["distribute"], flush=True)
        model = keras.saving.load_model(os.path.join(run, "last.keras"))
        for name, value in table_values(model).items():
            arrays[f"{mode}/table/{name}"] = value
        for i, w in enumerate(model.weights):
            arrays[f"{mode}/weight/{i}"] = keras.ops.convert_to_numpy(w)
        # The one-device model under this mode's distribution.
        model = keras.saving.load_model(
            os.path.join(out, f"{method}_none", "last.keras")
        )
        distribute.current().prepare(model)
        arrays[f"{mode}/predict"] = model.predict(IMAGES, verbose=0)
    np.savez(os.path.join(out, method + ".npz"), **arrays)
print("DONE")
