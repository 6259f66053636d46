"""DWMCA's two streams: per-sample attention, scales, landmarks, a fit.

`dwmca_test.py` checks the method's contract and its loss against NumPy.
"""

import keras
import numpy as np
from keras import ops

import ferzoo
from ferzoo.models import DWMCA
from tests.models.dwmca_test import SMALL
from tests.models.dwmca_test import template_data
from tests.test_case import MethodTestCase
from tests.test_case import raw_outputs
from tests.test_case import tiny_backbone


class DWMCAStreamsTest(MethodTestCase):
    image_size = 16

    def method_kwargs(self):
        return {"landmark_backbone": tiny_backbone(16), **SMALL}

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
