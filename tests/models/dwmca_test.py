import numpy as np
import pytest
from keras import ops

import ferzoo
from ferzoo.models import DWMCA
from tests.layers.apcl_test import np_separation
from tests.test_case import MethodTestCase
from tests.test_case import tiny_backbone

SMALL = {
    "token_dim": 16,
    "num_heads": 2,
    "fusion_dim": 32,
    "embedding_dim": 16,
    "anchors_per_class": 2,
}


def template_data(num_samples, rate=0.3, size=16, seed=0):
    """Learnable class templates plus pixel noise, with symmetric noise."""
    rng = np.random.default_rng(seed)
    clean = (np.arange(num_samples) % 7).astype("int32")
    templates = rng.uniform(0, 255, (7, size, size, 3))
    pixels = rng.uniform(0, 255, (num_samples, size, size, 3))
    images = (0.6 * templates[clean] + 0.4 * pixels).astype("float32")
    noise = ferzoo.data.symmetric_noise(clean, rate, 7, seed=seed)
    x = {"images": images, "sample_ids": np.arange(num_samples, dtype="int32")}
    return x, noise


class DWMCATest(MethodTestCase):
    image_size = 16

    def method_kwargs(self):
        return {"landmark_backbone": tiny_backbone(16), **SMALL}

    def test_method_basics(self):
        self.run_method_test(DWMCA, self.kwargs, self.data, (16, 7))

    def crafted(self, seed, n=16):
        """A `y_pred` with known fused distributions and distances."""
        rng = np.random.default_rng(seed)
        return {
            "final": rng.dirichlet(np.ones(7), n).astype("float32"),
            "squared_distances": rng.uniform(0, 9, (n, 7, 2)).astype("f4"),
        }

    def test_loss_terms_match_numpy(self):
        # On crafted outputs (the forward pass is checked against NumPy in
        # tests/layers/apcl_test.py); the anchors are the model's, spread
        # by hand so that some pairs are inside the margin and some not.
        model = DWMCA(
            **self.kwargs,
            center_weight=0.1,
            anchor_weight=2.0,
            anchor_margin=2.5,
        )
        x, y = self.data
        rng = np.random.default_rng(8)
        model.apcl.anchors.assign(rng.normal(0, 0.4, (7, 2, 16)))
        y_pred = self.crafted(1)
        loss = model.compute_loss(x, y, y_pred, training=False)
        final = y_pred["final"].astype("float64")
        sq = y_pred["squared_distances"]
        anchors = ops.convert_to_numpy(model.apcl.anchors)
        cls = -np.log(final[np.arange(16), y]).mean()
        anchor = np_separation(anchors, model.anchor_margin)
        center = sq[np.arange(16), y].min(-1).mean()
        terms = {m.name: float(m.result()) for m in model.loss_trackers}
        self.assertAllClose(terms["loss_cls"], cls, atol=1e-5)
        self.assertAllClose(terms["loss_anchor"], anchor, atol=1e-5)
        self.assertAllClose(terms["loss_center"], center, rtol=1e-5)
        self.assertAllClose(
            loss, cls + 2.0 * anchor + 0.1 * center, rtol=1e-5, atol=1e-5
        )
        self.assertTrue(0.0 < anchor < 1.0)
        distances = np.linalg.norm(
            anchors.reshape(14, 1, 16) - anchors.reshape(1, 14, 16), axis=-1
        )
        self.assertTrue((distances > 2.5).any() and (distances < 2.5).any())
        # Scores are the fused probability of the label, written in fit.
        self.assertTrue(np.isnan(model.clean_scores()).all())

    def test_label_table_reports_and_resets(self):
        # warmup_epochs=2: nothing is written in the 1st epoch; from the
        # 2nd the table holds the argmax where it differs from the label
        # and is reset to -1 where a later prediction agrees.
        model = DWMCA(**self.kwargs, warmup_epochs=2)
        x, y = self.data
        first = self.crafted(2)
        model.compute_loss(x, y, first, training=True)
        np.testing.assert_array_equal(model.relabels(), -1)
        model.epoch.assign(1)
        model.compute_loss(x, y, first, training=True)
        argmax = first["final"].argmax(1)
        table = model.relabels()
        np.testing.assert_array_equal(table, np.where(argmax != y, argmax, -1))
        self.assertTrue((table >= 0).sum() >= 8)
        # The loss uses the given labels, not the report.
        cls = -np.log(first["final"][np.arange(16), y]).mean()
        self.assertAllClose(model.loss_trackers[0].result(), cls, 1e-5)
        # A later batch that agrees on the first half resets those rows;
        # the second half keeps its report (other samples' ids).
        agree = self.crafted(3, n=8)
        agree["final"] = 0.1 * agree["final"] + 0.9 * np.eye(7)[y[:8]]
        agree["final"] = agree["final"].astype("float32")
        half = {
            "images": x["images"][:8],
            "sample_ids": x["sample_ids"][:8],
        }
        model.compute_loss(half, y[:8], agree, training=True)
        self.assertTrue((table[:8] >= 0).any())
        np.testing.assert_array_equal(model.relabels()[:8], -1)
        np.testing.assert_array_equal(model.relabels()[8:], table[8:])

    def test_invalid_args(self):
        with self.assertRaisesRegex(ValueError, "landmark_backbone"):
            DWMCA(**{**self.kwargs, "landmark_backbone": None})
        with self.assertRaisesRegex(ValueError, "num_heads"):
            DWMCA(**{**self.kwargs, "num_heads": 3})
        with self.assertRaisesRegex(ValueError, "anchor_margin"):
            DWMCA(**self.kwargs, anchor_margin=0.0)

    @pytest.mark.large
    def test_round_trips(self):
        kwargs = {**self.kwargs, "warmup_epochs": 0}
        self.run_model_saving_test(DWMCA, kwargs, self.data)
        # Multi-scale IR image stream and MobileFaceNet landmark stream.
        multi = {
            **SMALL,
            "backbone": ferzoo.backbones.IResNetBackbone(
                image_shape=(16, 16, 3),
                stackwise_num_filters=[8, 8, 16],
                stackwise_num_blocks=[1, 1, 1],
                stem_filters=8,
            ),
            "landmark_backbone": ferzoo.backbones.MobileFaceNetBackbone(
                image_shape=(24, 24, 3),
                stackwise_num_blocks=[1, 1, 1, 1, 1],
                width_multiplier=0.125,
            ),
            "num_samples": 16,
        }
        restored = self.run_model_saving_test(DWMCA, multi, self.data)
        self.run_serialization_test(restored)
        self.run_backend_consistency_test(DWMCA, kwargs, self.data)
        self.run_export_test(DWMCA, kwargs, self.data)
