import numpy as np
from keras import ops

from ferzoo.layers import DynamicChannelWeighting
from ferzoo.layers import DynamicWeightedCrossAttention
from ferzoo.layers import MultiScaleTokens
from tests.test_case import TestCase


class CrossAttentionTest(TestCase):
    def test_channel_weighting_matches_numpy(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(3, 5, 8)).astype("float32")
        layer = DynamicChannelWeighting(hidden_dim=2)
        out = ops.convert_to_numpy(layer(x))
        w1, b1 = [ops.convert_to_numpy(v) for v in layer.squeeze.weights]
        w2, b2 = [ops.convert_to_numpy(v) for v in layer.excite.weights]
        h = np.maximum(x.mean(1) @ w1 + b1, 0)
        alpha = 1 / (1 + np.exp(-(h @ w2 + b2)))
        self.assertAllClose(out, x * alpha[:, None], atol=1e-5)

    def test_attention_is_per_sample(self):
        rng = np.random.default_rng(1)
        img = rng.normal(size=(4, 6, 8)).astype("float32")
        lm = rng.normal(size=(4, 3, 8)).astype("float32")
        layer = DynamicWeightedCrossAttention(num_heads=2, channel_hidden_dim=4)
        a, b = [ops.convert_to_numpy(t) for t in layer(img, lm)]
        perm = np.array([2, 0, 3, 1])
        pa, pb = [ops.convert_to_numpy(t) for t in layer(img[perm], lm[perm])]
        self.assertAllClose(pa, a[perm], atol=1e-6)
        self.assertAllClose(pb, b[perm], atol=1e-6)
        # Other samples of the batch have no influence at all.
        other_img, other_lm = img.copy(), lm.copy()
        other_img[1:] = rng.normal(size=(3, 6, 8))
        other_lm[1:] = rng.normal(size=(3, 3, 8))
        oa, ob = [ops.convert_to_numpy(t) for t in layer(other_img, other_lm)]
        self.assertAllClose(oa[0], a[0], atol=1e-6)
        self.assertAllClose(ob[0], b[0], atol=1e-6)
        self.assertGreater(np.abs(oa[1] - a[1]).max(), 1e-3)

    def test_multi_scale_tokens(self):
        layer = MultiScaleTokens(token_dim=4)
        maps = [
            np.ones((2, 8, 8, 3), "float32"),
            np.ones((2, 4, 4, 5), "float32"),
            np.ones((2, 2, 2, 6), "float32"),
        ]
        self.assertEqual(tuple(layer(maps).shape), (2, 12, 4))
        single = MultiScaleTokens(token_dim=4)
        self.assertEqual(tuple(single(maps[0]).shape), (2, 64, 4))
