"""DWMCA's APCL head and loss against NumPy on the fixed batch.

DWMCA has no public code; its reference is the paper's equations written
out in NumPy. On the batch and trunk of the EAC fixture
(`tests/fixtures/official/eac.npz`: a 3x3 convolution + ReLU, recomputed
here in NumPy) the feature map's 36 positions are the tokens, its mean
the embedding and the fixture's linear head the primary classifier; the
APCL head of a DWMCA model (seeded anchors) turns them into the fused
distribution, and the model's loss is compared with: anchor distribution
`s = softmax(-d / delta)` summed per class, self-attention of the query
token over the tokens, entropy-confidence fusions, `L_cls = -log final_y`,
the bounded anchor separation `L_a`, the nearest-anchor centre loss `L_c`
and `lambda_cls L_cls + lambda_a L_a + lambda_c L_c`.
"""

import numpy as np
from keras import ops

from tests.layers.apcl_test import np_attention_distribution
from tests.layers.apcl_test import np_confidence
from tests.layers.apcl_test import np_fuse
from tests.layers.apcl_test import np_separation
from tests.layers.apcl_test import np_softmax
from tests.models.afcn_reference_test import np_conv_relu
from tests.models.official import load
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_dwmca


class DWMCAReferenceTest(TestCase):
    def test_against_numpy_equations(self):
        f = load("eac")
        w = {k[8:]: v for k, v in f.items() if k.startswith("weights/")}
        labels = f["labels"]
        n = len(labels)
        feats = np_conv_relu(
            f["images"].astype("float64"),
            w["features.0.weight"],
            w["features.0.bias"],
        )
        tokens = feats.reshape(n, 36, 8)
        embedding = feats.mean((1, 2))
        primary_logits = embedding @ w["fc.weight"].T + w["fc.bias"]
        model = tiny_dwmca(
            tiny_backbone(16),
            tiny_backbone(16),
            n,
            token_dim=8,
            fusion_dim=16,
            embedding_dim=8,
            similarity_temperature=2.0,
            anchor_margin=3.0,
            center_weight=0.05,
            anchor_weight=2.0,
        )
        rng = np.random.default_rng(12)
        anchors = embedding.mean(0) + rng.normal(0, 1.0, (7, 2, 8))
        model.apcl.anchors.assign(anchors)
        f32 = [a.astype("float32") for a in (embedding, tokens, primary_logits)]
        y_pred = model.apcl(*f32)
        x = {"images": None, "sample_ids": np.arange(n, dtype="int32")}
        loss = model.compute_loss(x, labels, y_pred, training=True)
        terms = {m.name[5:]: float(m.result()) for m in model.loss_trackers}
        # NumPy: the three distributions and their fusions.
        sq = ((embedding[:, None, None] - anchors[None]) ** 2).sum(-1)
        s = np_softmax(-np.sqrt(sq).reshape(n, 14) / 2.0).reshape(n, 7, 2)
        t_g = s.sum(-1)
        t_a = np_attention_distribution(model.apcl, embedding, tokens)
        p = np_softmax(primary_logits)
        t = np_fuse(t_g, np_confidence(t_g), t_a, np_confidence(t_a))
        final = np_fuse(p, np_confidence(p), t, np_confidence(t))
        self.assertAllClose(y_pred["final"], final, atol=1e-5)
        cls = -np.log(final[np.arange(n), labels]).mean()
        anchor = np_separation(anchors, 3.0)
        center = sq[np.arange(n), labels].min(-1).mean()
        self.assertTrue(0.0 < anchor < 1.0, anchor)
        self.assertAllClose(terms["cls"], cls, atol=1e-5)
        self.assertAllClose(terms["anchor"], anchor, atol=1e-5)
        self.assertAllClose(terms["center"], center, rtol=1e-5)
        self.assertAllClose(
            loss, cls + 2.0 * anchor + 0.05 * center, atol=1e-4, rtol=1e-5
        )
        # Clean score: the fused probability of the label; the report
        # holds the argmax where it differs from the label.
        self.assertAllClose(
            model.clean_scores(), final[np.arange(n), labels], atol=1e-5
        )
        argmax = final.argmax(1)
        np.testing.assert_array_equal(
            model.relabels(), np.where(argmax != labels, argmax, -1)
        )
        self.assertGreater(ops.convert_to_numpy(t_a).std(), 1e-4)
