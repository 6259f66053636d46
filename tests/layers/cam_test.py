import keras
import numpy as np
from keras import ops

from ferzoo.layers import FlipClassActivationMaps
from ferzoo.layers.cam import class_activation_maps
from ferzoo.layers.cam import flip_horizontal
from tests.test_case import TestCase
from tests.test_case import gradients


def numpy_cam(features, kernel):
    # CAM_c(h, w) = sum_k w_kc A_k(h, w), written as explicit loops.
    b, h, w, _ = features.shape
    out = np.zeros((b, h, w, kernel.shape[1]), "float64")
    for c in range(kernel.shape[1]):
        out[..., c] = (features * kernel[:, c]).sum(-1)
    return out


class CAMTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.features = rng.normal(size=(6, 5, 4, 8)).astype("float32")
        self.kernel = rng.normal(size=(8, 7)).astype("float32")

    def test_cam_matches_numpy(self):
        maps = class_activation_maps(self.features, self.kernel)
        self.assertAllClose(
            maps, numpy_cam(self.features, self.kernel), atol=1e-5
        )

    def test_cam_is_closed_form_of_gap_linear_head(self):
        # The spatial mean of CAM_c is the class score minus its bias.
        maps = ops.convert_to_numpy(
            class_activation_maps(self.features, self.kernel)
        )
        scores = self.features.mean(axis=(1, 2)) @ self.kernel
        np.testing.assert_allclose(maps.mean(axis=(1, 2)), scores, atol=1e-5)

    def test_flip_back_is_exact(self):
        layer = FlipClassActivationMaps()
        mirrored = self.features[:, :, ::-1]
        maps, back = layer(self.features, mirrored, self.kernel)
        self.assertEqual(tuple(maps.shape), (6, 5, 4, 7))
        # Bit-exact: the flip back is a pure permutation of the same sums.
        np.testing.assert_array_equal(
            ops.convert_to_numpy(maps), ops.convert_to_numpy(back)
        )
        # A different second view: flipped back against NumPy.
        other = np.random.default_rng(1).normal(size=self.features.shape)
        other = other.astype("float32")
        maps, back = layer(self.features, other, self.kernel)
        self.assertAllClose(
            back, numpy_cam(other, self.kernel)[:, :, ::-1], atol=1e-5
        )
        self.assertAllClose(
            maps, numpy_cam(self.features, self.kernel), atol=1e-5
        )

    def test_maps_train_features_not_the_kernel(self):
        # As EAC (maps from `fc.weight.data`): a loss on the maps has no
        # gradient for the classifier kernel, only for the features.
        layer = FlipClassActivationMaps()
        mirrored = self.features[:, ::-1]

        def loss(features, kernel):
            maps, back = layer(features, mirrored, kernel)
            return ops.mean(ops.square(maps - back))

        d_features, d_kernel = gradients(loss, self.features, self.kernel)
        np.testing.assert_array_equal(d_kernel, 0.0)
        self.assertGreater(np.abs(d_features).max(), 1e-3)

    def test_flip_and_symbolic_shape(self):
        images = np.arange(2 * 3 * 4 * 3, dtype="float32").reshape(2, 3, 4, 3)
        flipped = ops.convert_to_numpy(flip_horizontal(images))
        np.testing.assert_array_equal(flipped, images[:, :, ::-1])
        features = keras.KerasTensor((2, 5, 4, 8))
        maps, back = FlipClassActivationMaps()(
            features, features, keras.KerasTensor((8, 7))
        )
        self.assertEqual(tuple(maps.shape), (2, 5, 4, 7))
        self.assertEqual(tuple(back.shape), (2, 5, 4, 7))
