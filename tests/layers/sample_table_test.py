import subprocess
import sys

import numpy as np
import pytest
from keras import ops

from ferzoo.layers import PixelNormalization
from ferzoo.layers import SampleTable
from tests.test_case import REPO
from tests.test_case import TestCase


class SampleTableTest(TestCase):
    def test_gather_update_reset(self):
        table = SampleTable(5, row_shape=(2,), fill_value=0.5)
        table.update(np.array([4, 1]), np.array([[1.0, 2.0], [3.0, 4.0]]))
        np.testing.assert_array_equal(
            ops.convert_to_numpy(table.gather(np.array([1, 0, 4]))),
            [[3, 4], [0.5, 0.5], [1, 2]],
        )
        table.reset()
        np.testing.assert_array_equal(table.numpy(), np.full((5, 2), 0.5))

    def test_is_saved_state_not_trained(self):
        table = SampleTable(3, table_dtype="int32", fill_value=-1)
        self.assertEqual(table.trainable_weights, [])
        self.assertEqual(len(table.non_trainable_weights), 1)
        self.run_serialization_test(table)

    def test_invalid(self):
        with self.assertRaisesRegex(ValueError, "num_samples"):
            SampleTable(0)


class PixelNormalizationTest(TestCase):
    def test_uint8_and_float_agree(self):
        layer = PixelNormalization()
        pixels = np.array([[[[0, 128, 255]]]], "uint8")
        out = ops.convert_to_numpy(layer(pixels))
        want = (pixels / 255.0 - np.array(layer.mean)) / np.array(layer.std)
        np.testing.assert_allclose(out, want, atol=1e-6)
        np.testing.assert_allclose(
            ops.convert_to_numpy(layer(pixels.astype("float32"))), out
        )


MIRRORED = """
import os
os.environ["KERAS_BACKEND"] = "tensorflow"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
import numpy as np
import ferzoo
from tests.test_case import tiny_backbone, tiny_batch
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
x, y = tiny_batch(32, size=32)
with strategy.scope():
    model = ferzoo.models.SCN(
        backbone=tiny_backbone(), num_samples=32, warmup_epochs=0,
        relabel_margin=0.0, relabel_low_group_only=False,
    )
    model.compile()
model.fit(x, y, batch_size=16, epochs=1, verbose=0)
print("ROWS", int(np.isfinite(model.clean_scores()).sum()))
"""


class MultiDeviceTest(TestCase):
    @pytest.mark.large
    def test_tables_are_complete_under_a_mirrored_strategy(self):
        # Two replicas each see half of every batch; the table must get
        # every sample's row, not one replica's share.
        proc = subprocess.run(
            [sys.executable, "-c", MIRRORED],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        self.assertIn("ROWS 32", proc.stdout)
