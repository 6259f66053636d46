import keras
import numpy as np
import pytest
from keras import ops

import ferzoo
from ferzoo.models import DWMCA
from tests.layers.apcl_test import np_separation
from tests.models.dacfer_test import raw_outputs
from tests.test_case import MethodTestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_batch

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
    def setUp(self):
        super().setUp()
        self.kwargs = {
            "backbone": tiny_backbone(16),
            "landmark_backbone": tiny_backbone(16),
            "num_classes": 7,
            "num_samples": 16,
            **SMALL,
        }
        self.data = tiny_batch(16, size=16)

    def test_method_basics(self):
        self.run_method_test(DWMCA, self.kwargs, self.data, (16, 7))

    def test_attention_is_per_sample_and_fused_sums_to_one(self):
        model = DWMCA(**self.kwargs)
        x, _ = self.data
        images = x["images"][:6]
        out = model(images, training=False)
        final = ops.convert_to_numpy(out["final"])
        self.assertAllClose(final.sum(-1), np.ones(6), atol=1e-5)
        self.assertTrue((final > 0).all())
        # Inference on a permuted batch permutes the outputs exactly;
        # `predict` (call in inference mode) returns the fused distribution.
        perm = np.array([3, 0, 5, 1, 4, 2])
        permuted = model.predict(images[perm], batch_size=6, verbose=0)
        self.assertAllClose(permuted, final[perm], atol=1e-6)
        # Changing the other samples leaves sample 0 untouched.
        other = images.copy()
        other[1:] = x["images"][6:11]
        changed = model.predict(other, batch_size=6, verbose=0)
        self.assertAllClose(changed[0], final[0], atol=1e-6)
        self.assertGreater(np.abs(changed[1] - final[1]).max(), 1e-4)

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

    def test_noisy_fit_flags_flipped_samples_and_separates_anchors(self):
        x, noise = template_data(280)
        model = DWMCA(
            backbone=tiny_backbone(16),
            landmark_backbone=tiny_backbone(16),
            num_samples=280,
            **SMALL,
        )
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        history = model.fit(x, noise.labels, batch_size=32, epochs=5, verbose=0)
        # The anchors of a class end nearer that class's embeddings (true
        # classes) than the other classes' embeddings: distance to the
        # nearest anchor of class c, own class against the rest.
        embeddings = raw_outputs(model, x)["embedding"]
        anchors = ops.convert_to_numpy(model.apcl.anchors)
        clean = np.arange(280) % 7
        dist = np.linalg.norm(
            embeddings[:, None, None] - anchors[None], axis=-1
        ).min(-1)
        own = np.array([dist[clean == c, c].mean() for c in range(7)])
        other = np.array([dist[clean != c, c].mean() for c in range(7)])
        self.assertGreaterEqual((own < other).sum(), 6, (own, other))
        self.assertLess(own.mean() + 0.3, other.mean(), (own, other))
        anchor_loss = history.history["loss_anchor"]
        self.assertLess(anchor_loss[-1], anchor_loss[0])
        scores = model.clean_scores()
        clean, flipped = scores[~noise.mask].mean(), scores[noise.mask].mean()
        self.assertLess(flipped + 0.1, clean, (clean, flipped))

    def test_freeze_landmark_backbone(self):
        model = DWMCA(**self.kwargs, freeze_landmark_backbone=True)
        self.assertFalse(model.landmark_backbone.trainable)
        frozen = {id(v) for v in model.landmark_backbone.weights}
        self.assertFalse(frozen & {id(v) for v in model.trainable_weights})
        revived = DWMCA.from_config(model.get_config())
        self.assertFalse(revived.landmark_backbone.trainable)
        fresh = {**self.kwargs, "landmark_backbone": tiny_backbone(16)}
        self.assertTrue(DWMCA(**fresh).landmark_backbone.trainable)

    def test_multi_scale_image_stream(self):
        backbone = ferzoo.backbones.IResNetBackbone(
            image_shape=(32, 32, 3),
            stackwise_num_filters=[8, 8, 16],
            stackwise_num_blocks=[1, 1, 1],
            stem_filters=8,
        )
        landmark = ferzoo.backbones.MobileFaceNetBackbone(
            image_shape=(24, 24, 3),
            stackwise_num_blocks=[1, 1, 1, 1, 1],
            width_multiplier=0.125,
        )
        model = DWMCA(
            backbone=backbone, landmark_backbone=landmark, num_scales=2, **SMALL
        )
        # Symbolic checks only: the eager pass is in `test_round_trips`.
        # Stages 2 and 3 (8x8 and 4x4) pooled to a 4x4 grid: 32 tokens.
        shapes = [tuple(o.shape) for o in model.image_features.outputs]
        self.assertEqual(shapes, [(None, 8, 8, 8), (None, 4, 4, 16)])
        maps = [np.ones((1,) + shape[1:], "float32") for shape in shapes]
        self.assertEqual(tuple(model.image_tokens(maps).shape), (1, 32, 16))
        config = model.get_config()
        self.assertEqual(
            config["landmark_backbone"]["class_name"], "MobileFaceNetBackbone"
        )

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
