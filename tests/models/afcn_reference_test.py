"""AFCN against a NumPy re-derivation of its equations on the fixed batch.

AFCN has no public code; its reference is the reconstruction in
`specs/afcn.md` (sample certainty, weighted CE, rank loss, label
correction, CAMs of x and flip(x), fusion consistency, joint loss) written
out in NumPy: the trunk (3x3 convolution + ReLU) and every head as loops
and matrix products on the batch and weights of the EAC fixture
(`tests/fixtures/official/eac.npz`), so nothing is taken from the model's
outputs. Checked: each loss term, the joint loss, the gradients of both
heads' kernels, and the relabel decisions after the warm-up.
"""

import numpy as np

from ferzoo.models import AFCN
from tests.models.official import ConvBackbone
from tests.models.official import load
from tests.models.official import set_conv
from tests.models.official import set_dense
from tests.test_case import TestCase
from tests.test_case import loss_gradients


def np_conv_relu(images, kernel, bias):
    """3x3 cross-correlation, padding 1, then ReLU; torch kernel layout."""
    b, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((b, h, w, kernel.shape[0])) + bias
    for di in range(3):
        for dj in range(3):
            window = padded[:, di : di + h, dj : dj + w, :]
            out += window @ kernel[:, :, di, dj].T
    return np.maximum(out, 0.0)


def np_softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def np_afcn(images, labels, w, wa, ba, rank_weight, cons_weight):
    """Every quantity of AFCN's loss, in float64."""
    k, b = w["features.0.weight"], w["features.0.bias"]
    feats = np_conv_relu(images.astype("float64"), k, b)
    flipped = np_conv_relu(images[:, :, ::-1].astype("float64"), k, b)
    fc_w, fc_b = w["fc.weight"].T, w["fc.bias"]  # (C, K)
    pooled = feats.mean((1, 2))
    logits = pooled @ fc_w + fc_b
    alpha = 1 / (1 + np.exp(-(pooled @ wa + ba)[:, 0]))  # certainty
    n, num_classes = logits.shape
    z = alpha[:, None] * logits
    p = np_softmax(z)
    onehot = np.eye(num_classes)[labels]
    wce = -np.log(p[np.arange(n), labels]).mean()
    # Rank loss: top M = int(0.7 n) against the rest, margin 0.15.
    m = int(0.7 * n)
    order = np.argsort(-alpha)
    rank = max(0.0, 0.15 - (alpha[order[:m]].mean() - alpha[order[m:]].mean()))
    # CAMs (no bias), the flip view's mirrored back, fused by the mean.
    cam = np.einsum("bhwc,ck->bhwk", feats, fc_w)
    cam_back = np.einsum("bhwc,ck->bhwk", flipped, fc_w)[:, :, ::-1]
    fused = (cam + cam_back) / 2
    cons = 0.5 * (
        ((cam - fused) ** 2).mean() + ((cam_back - fused) ** 2).mean()
    )
    total = wce + rank_weight * rank + cons_weight * cons
    # Gradients of the heads' kernels (the CAMs do not train the kernel).
    residual = (p - onehot) / n
    d_alpha = (logits * residual).sum(1)
    if rank > 0:
        d_rank = np.full(n, 1 / (n - m))
        d_rank[order[:m]] = -1 / m
        d_alpha = d_alpha + rank_weight * d_rank
    d_fc = pooled.T @ (alpha[:, None] * residual)
    d_wa = pooled.T @ (d_alpha * alpha * (1 - alpha))[:, None]
    # Label correction: low group, p_max - p_y > 0.2.
    low = np.isin(np.arange(n), order[m:])
    move = low & (p.max(1) - p[np.arange(n), labels] > 0.2)
    relabels = np.where(move, p.argmax(1), -1)
    return {
        "wce": wce,
        "rank": rank,
        "cons": cons,
        "total": total,
        "d_fc": d_fc,
        "d_wa": d_wa,
        "relabels": relabels,
        "alpha": alpha,
    }


class AFCNReferenceTest(TestCase):
    def test_against_numpy_equations(self):
        f = load("eac")
        w = {k[8:]: v for k, v in f.items() if k.startswith("weights/")}
        labels = f["labels"]
        n = len(labels)
        rng = np.random.default_rng(11)
        wa = rng.normal(0, 0.05, (8, 1))
        ba = np.array([0.1])
        model = AFCN(
            backbone=ConvBackbone(),
            num_samples=n,
            warmup_epochs=3,
            rank_weight=0.5,
            consistency_weight=3.0,
        )
        set_conv(model.backbone, w, "features.0.")
        set_dense(model.classifier, w, "fc.")
        model.importance.kernel.assign(wa)
        model.importance.bias.assign(ba)
        model.epoch.assign(2)  # the 3rd epoch: corrections start
        x = {"images": f["images"], "sample_ids": np.arange(n, dtype="int32")}
        ref = np_afcn(f["images"], labels, w, wa, ba, 0.5, 3.0)
        self.assertGreater(ref["rank"], 0.01)
        self.assertGreater(ref["cons"], 0.1)
        loss, grads = loss_gradients(model, x, labels)
        self.assertAllClose(loss, ref["total"], atol=1e-4, rtol=1e-5)
        self.assertAllClose(
            grads[model.classifier.kernel.path],
            ref["d_fc"],
            atol=1e-5,
            rtol=1e-3,
        )
        self.assertAllClose(
            grads[model.importance.kernel.path],
            ref["d_wa"],
            atol=1e-5,
            rtol=1e-3,
        )
        model.label_table.reset()
        y_pred = model(x, training=True)
        model.compute_loss(x, labels, y_pred, training=True)
        terms = {m.name[5:]: float(m.result()) for m in model.loss_trackers}
        self.assertAllClose(terms["wce"], ref["wce"], atol=1e-5)
        self.assertAllClose(terms["rank"], ref["rank"], atol=1e-6)
        self.assertAllClose(terms["consistency"], ref["cons"], rtol=1e-5)
        self.assertAllClose(model.clean_scores(), ref["alpha"], atol=1e-6)
        moved = ref["relabels"] >= 0
        self.assertTrue(moved.any() and not moved.all(), ref["relabels"])
        np.testing.assert_array_equal(model.relabels(), ref["relabels"])
