import numpy as np

from ferzoo.layers import AverageExpressionAnchoring
from tests.test_case import TestCase


class AverageExpressionAnchoringTest(TestCase):
    def test_batch_mean_in_training_moving_mean_at_inference(self):
        layer = AverageExpressionAnchoring(momentum=0.5)
        f = np.array([[1.0, 2.0, 0.0], [3.0, 6.0, 4.0]], "float32")
        layer.build(f.shape)
        layer.alpha.assign([0.5, -1.0, 2.0])
        # mean = [2, 4, 2]; f + alpha * mean.
        want = f + np.array([1.0, -4.0, 4.0], "float32")
        self.assertAllClose(layer(f, training=True), want)
        self.assertAllClose(layer.moving_mean, [1.0, 2.0, 1.0])
        # Inference uses the moving mean, so one image gives one answer.
        self.assertAllClose(
            layer(f[:1], training=False), [[1.5, 0.0, 2.0]], atol=1e-6
        )

    def test_serialization(self):
        self.run_serialization_test(AverageExpressionAnchoring(momentum=0.9))
