import numpy as np
from keras import ops

from ferzoo.layers import APCL
from ferzoo.layers.apcl import anchor_center_loss
from ferzoo.layers.apcl import anchor_separation_loss
from ferzoo.layers.apcl import entropy_confidence
from tests.test_case import TestCase


def np_confidence(p):
    p = np.clip(p, 1e-7, 1.0)
    return 1.0 - (-(p * np.log(p)).sum(-1)) / np.log(p.shape[-1])


def np_fuse(p1, c1, p2, c2):
    return (c1[:, None] * p1 + c2[:, None] * p2) / (c1 + c2)[:, None]


def np_softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def np_separation(anchors, margin):
    n, k, _ = anchors.shape
    flat = anchors.reshape(n * k, -1)
    cls = np.repeat(np.arange(n), k)
    total, count = 0.0, 0
    for i in range(n * k):
        for j in range(n * k):
            if cls[i] != cls[j]:
                d = np.linalg.norm(flat[i] - flat[j])
                total += max(0.0, 1.0 - d / margin) ** 2
                count += 1
    return total / count


class APCLTest(TestCase):
    def test_confidence_matches_numpy(self):
        rng = np.random.default_rng(0)
        p = rng.dirichlet(np.ones(7), 5).astype("float32")
        self.assertAllClose(entropy_confidence(p), np_confidence(p), atol=1e-5)
        self.assertAllClose(entropy_confidence(np.eye(7)), np.ones(7), 1e-5)
        uniform = np.full((1, 7), 1 / 7, "float32")
        self.assertAllClose(entropy_confidence(uniform), [0.0], atol=1e-5)

    def test_layer_matches_numpy(self):
        rng = np.random.default_rng(1)
        layer = APCL(
            num_classes=4, anchors_per_class=3, temperature=0.5, num_heads=2
        )
        e = rng.normal(size=(6, 5)).astype("float32")
        tokens = rng.normal(size=(6, 9, 8)).astype("float32")
        logits = rng.normal(size=(6, 4)).astype("float32")
        out = {
            k: ops.convert_to_numpy(v)
            for k, v in layer(e, tokens, logits).items()
        }
        anchors = ops.convert_to_numpy(layer.anchors)
        self.assertGreater(anchors.std(), 0.01)  # random, not zeros
        # s_ij = softmax(-d(e, a_ij) / delta); t_g sums s over class anchors.
        d = np.linalg.norm(e[:, None, None] - anchors[None], axis=-1)
        s = np_softmax(-d.reshape(6, 12) / 0.5).reshape(6, 4, 3)
        self.assertAllClose(out["anchor"], s.sum(-1), atol=1e-5)
        self.assertAllClose(
            out["squared_distances"], d**2, atol=1e-4, rtol=1e-5
        )
        p = np_softmax(logits)
        self.assertAllClose(out["primary"], p, atol=1e-6)
        t_a = out["attention"]
        t = np_fuse(
            out["anchor"], np_confidence(out["anchor"]), t_a, np_confidence(t_a)
        )
        self.assertAllClose(out["corrected"], t, atol=1e-5)
        final = np_fuse(p, np_confidence(p), t, np_confidence(t))
        self.assertAllClose(out["final"], final, atol=1e-5)
        self.assertAllClose(out["final"].sum(-1), np.ones(6), atol=1e-5)
        self.assertAllClose(out["confidence"], np_confidence(final), 1e-5)

    def test_anchor_separation_matches_numpy_and_is_bounded(self):
        rng = np.random.default_rng(2)
        anchors = rng.normal(size=(3, 2, 4)).astype("float32")
        for margin in (0.5, 3.0, 10.0):
            self.assertAllClose(
                anchor_separation_loss(anchors, margin),
                np_separation(anchors, margin),
                atol=1e-5,
            )
        # Bounded: 1 when every anchor coincides, 0 when all are apart.
        same = np.zeros((3, 2, 4), "float32")
        self.assertAllClose(anchor_separation_loss(same, 1.0), 1.0, 1e-5)
        far = (np.arange(3)[:, None, None] * 100.0 + 0 * anchors).astype(
            "float32"
        )
        self.assertAllClose(anchor_separation_loss(far, 10.0), 0.0)
        for scale in (1e-3, 1.0, 1e3, 1e6):
            value = float(anchor_separation_loss(anchors * scale, 3.0))
            self.assertTrue(0.0 <= value <= 1.0, value)

    def test_center_loss_matches_numpy(self):
        rng = np.random.default_rng(3)
        sq = rng.uniform(0, 5, (6, 4, 3)).astype("float32")
        labels = rng.integers(0, 4, 6)
        want = sq[np.arange(6), labels].min(-1)
        self.assertAllClose(anchor_center_loss(sq, labels), want, atol=1e-6)
