import numpy as np
from keras import ops

from ferzoo.layers import PixelNormalization
from ferzoo.layers import SampleTable
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
