import numpy as np
import pytest

from ferzoo.backbones import FaceLandmark68Backbone
from tests.backbones.dlib_resnet_test import pooled_features
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_batch
from tests.test_case import tiny_dwmca


class FaceLandmark68BackboneTest(TestCase):
    def test_backbone_basics(self):
        images = np.random.uniform(0, 255, (2, 32, 32, 3))
        self.run_backbone_test(
            FaceLandmark68Backbone,
            {"image_shape": (32, 32, 3)},
            images,
            (2, 2, 2, 256),
        )

    def test_frozen_by_default(self):
        backbone = FaceLandmark68Backbone(image_shape=(32, 32, 3))
        self.assertEqual(backbone.trainable_weights, [])
        self.assertEqual(backbone.count_params(), 321_888)
        trainable = FaceLandmark68Backbone(
            image_shape=(32, 32, 3), trainable=True
        )
        self.assertEqual(len(trainable.trainable_weights), 2 + 15 * 3)
        self.assertEqual(
            [tuple(backbone.get_layer(n).output.shape)[1:3]
             for n in backbone.stage_output_names],
            [(16, 16), (8, 8), (4, 4), (2, 2)],
        )  # fmt: skip

    def test_dwmca_landmark_stream_stays_frozen(self):
        landmark = FaceLandmark68Backbone(image_shape=(32, 32, 3))
        model = tiny_dwmca(tiny_backbone(), landmark, num_samples=8)
        before = [np.array(w) for w in landmark.weights]
        x, y = tiny_batch(8)
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        for a, b in zip(before, landmark.weights):
            np.testing.assert_array_equal(a, np.asarray(b))

    def test_invalid_args(self):
        with self.assertRaisesRegex(ValueError, "`image_shape`"):
            FaceLandmark68Backbone(image_shape=(32, 32))
        with self.assertRaisesRegex(ValueError, "`weights_preset`"):
            FaceLandmark68Backbone(weights_preset=["face_landmark68"])

    @pytest.mark.large
    def test_matches_faceapi_tfjs(self):
        # face-api's landmarks = mean of the 7x7 map @ fc + bias (TF.js).
        pooled, ref = pooled_features(
            "landmark", FaceLandmark68Backbone, "face_landmark68"
        )
        fc = ref["fc_weights_columns"]
        points = pooled @ fc + ref["fc_bias"][: fc.shape[1]]
        expected = ref["outputs"][:, : fc.shape[1]]
        self.assertLess(np.abs(points - expected).max(), 1e-4)
        # Landmarks are relative coordinates: mostly inside [0, 1].
        self.assertTrue(0.0 < np.median(ref["outputs"]) < 1.0)
