import keras
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


def np_attention_distribution(layer, embedding, tokens):
    """t_a from the layer's weights: query token + self-attention, NumPy.

    The query is `query_projection(e)`, prepended to the tokens; Keras'
    multi-head attention (per-head dense projections, scaled dot product,
    softmax over the sequence, output dense) gives the query position's
    output, which `output_projection` maps to class logits.
    """

    def weights(dense):
        return dense.kernel.numpy().astype("float64"), dense.bias.numpy()

    wq, bq = weights(layer.query_projection)
    query = embedding @ wq + bq
    seq = np.concatenate([query[:, None], tokens], axis=1)
    mha = layer.attention
    q = np.einsum("bsd,dhk->bshk", seq, mha._query_dense.kernel.numpy())
    q = q + mha._query_dense.bias.numpy()
    k = np.einsum("bsd,dhk->bshk", seq, mha._key_dense.kernel.numpy())
    k = k + mha._key_dense.bias.numpy()
    v = np.einsum("bsd,dhk->bshk", seq, mha._value_dense.kernel.numpy())
    v = v + mha._value_dense.bias.numpy()
    scores = np.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(q.shape[-1])
    probs = np_softmax(scores)
    heads = np.einsum("bhqs,bshk->bqhk", probs, v)
    out = np.einsum("bqhk,hkd->bqd", heads, mha._output_dense.kernel.numpy())
    out = out + mha._output_dense.bias.numpy()
    wo, bo = weights(layer.output_projection)
    return np_softmax(out[:, 0] @ wo + bo)


def layer_gradients(layer, embedding, tokens, logits, v):
    """Gradients of `sum(final * v)` for the anchors and primary logits."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        logits = tf.Variable(logits)
        with tf.GradientTape() as tape:
            out = layer(embedding, tokens, logits)
            value = ops.sum(out["final"] * v)
        grads = tape.gradient(value, [layer.anchors, logits])
        return [np.asarray(g) for g in grads]
    import jax

    trainable = layer.trainable_variables
    index = [i for i, w in enumerate(trainable) if w is layer.anchors][0]
    frozen = [w.value for w in layer.non_trainable_variables]

    def fn(anchors, logits):
        values = [w.value for w in trainable]
        values[index] = anchors
        out, _ = layer.stateless_call(values, frozen, embedding, tokens, logits)
        return ops.sum(out["final"] * v)

    grads = jax.grad(fn, (0, 1))(layer.anchors.value, logits)
    return [np.asarray(g) for g in grads]


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
        t_a = np_attention_distribution(layer, e, tokens)
        self.assertAllClose(out["attention"], t_a, atol=1e-5)
        self.assertGreater(np.abs(t_a - 0.25).max(), 1e-3)
        t = np_fuse(
            out["anchor"], np_confidence(out["anchor"]), t_a, np_confidence(t_a)
        )
        self.assertAllClose(out["corrected"], t, atol=1e-5)
        final = np_fuse(p, np_confidence(p), t, np_confidence(t))
        self.assertAllClose(out["final"], final, atol=1e-5)
        self.assertAllClose(out["final"].sum(-1), np.ones(6), atol=1e-5)
        self.assertAllClose(out["confidence"], np_confidence(final), 1e-5)

    def test_confidences_are_constants_in_the_gradient(self):
        # The fusions treat their confidence weights as constants: the
        # gradients of sum(final * v) are those of the weighted averages,
        # derived here by hand (primary: softmax Jacobian; anchors: the
        # softmax over -d / delta and d's derivative).
        rng = np.random.default_rng(4)
        layer = APCL(
            num_classes=3, anchors_per_class=2, temperature=0.7, num_heads=2
        )
        e = rng.normal(size=(5, 4)).astype("float32")
        tokens = rng.normal(size=(5, 6, 8)).astype("float32")
        logits = rng.normal(size=(5, 3)).astype("float32")
        v = rng.normal(size=(5, 3)).astype("float32")
        out = {
            k: ops.convert_to_numpy(w).astype("float64")
            for k, w in layer(e, tokens, logits).items()
        }
        d_anchors, d_logits = layer_gradients(layer, e, tokens, logits, v)
        p, t = out["primary"], out["corrected"]
        c_p, c_t = np_confidence(p), np_confidence(t)
        c_g = np_confidence(out["anchor"])
        c_a = np_confidence(out["attention"])
        w_p, w_t = c_p / (c_p + c_t), c_t / (c_p + c_t)
        # d/d logits = w_p * J_softmax(p)^T v.
        want = w_p[:, None] * p * (v - (p * v).sum(1, keepdims=True))
        self.assertAllClose(d_logits, want, atol=1e-5, rtol=1e-4)
        # d/d anchors through t_g only.
        anchors = ops.convert_to_numpy(layer.anchors).astype("float64")
        flat = anchors.reshape(6, 4)
        r = (w_t * c_g / (c_g + c_a))[:, None] * v  # dL/dt_g, (5, 3)
        r_m = np.repeat(r, 2, axis=1)  # per anchor, (5, 6)
        diff = flat[None] - e[:, None].astype("float64")  # (5, 6, 4)
        d = np.linalg.norm(diff, axis=-1)
        s = np_softmax(-d / 0.7)
        d_l = s * (r_m - (s * r_m).sum(1, keepdims=True))
        want = np.einsum("bm,bmk->mk", d_l, -diff / (0.7 * d[..., None]))
        self.assertAllClose(d_anchors.reshape(6, 4), want, atol=1e-5, rtol=1e-4)

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
