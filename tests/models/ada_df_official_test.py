"""DualBranch against outputs recorded from Ada-DF's code.

`tests/fixtures/official/ada_df.npz` (`scripts/record_official_fixtures.py`):
their `ResNet18.forward` on a tiny trunk gives the auxiliary and target
logits and attention weights; their loss at epoch 2 (inside the ramp,
beta = 3) and epoch 5; their epoch-end `generate_adaptive_LD` on known
outputs. DualBranch has no attention heads (the BMM posterior w takes
their place, docs/methods/dual_branch.md), so the test feeds the recorded
logits to `compute_loss` and sets the clean table so that ferzoo's floored
weight `0.2 + 0.8 w` is their rescaled attention weight. Documented
departures the test applies: the fused target is detached (the recording
also holds the gradient with their target detached), the auxiliary CE is
weighted by w (Eq. 10), there is no rank regularization, and the mining's
fallback row is `(1 - t) / (C - 1)` off the diagonal where Ada-DF's is
`0.4 / (C - 1)` (equal at t = 0.6).
"""

import numpy as np
from absl.testing import parameterized
from keras import ops

from ferzoo.models import DualBranch
from tests.models.official import load
from tests.test_case import TestCase
from tests.test_case import gradients
from tests.test_case import tiny_backbone


class AdaDFOfficialTest(TestCase):
    def setUp(self):
        super().setUp()
        self.f = load("ada_df")

    @parameterized.parameters(2, 5)
    def test_loss_and_gradients(self, epoch):
        f = self.f
        prefix = f"epoch{epoch}/"
        e = {k[len(prefix) :]: v for k, v in f.items() if k.startswith(prefix)}
        labels = f["labels"]
        n = len(labels)
        model = DualBranch(
            backbone=tiny_backbone(16),
            num_samples=n,
            schedule="ada_df",  # their ramp-up exp(-(1 - e / beta)^2)
            ramp_epochs=3,
            min_weight=0.2,
        )
        model.epoch.assign(epoch - 1)  # their epoch is 1-based
        model.class_distribution.assign(f["class_distribution"])
        w = (e["weights"] - 0.2) / 0.8  # 0.2 + 0.8 w = their weight
        self.assertTrue(w.min() < 0.05 and w.max() > 0.95)
        model.clean_table.table.assign(w.astype("float32"))
        mu1, mu2 = (float(v) for v in model.loss_weights())
        self.assertAllClose(mu1, e["alpha_2"], atol=1e-6)  # CE weight
        self.assertAllClose(mu2, e["alpha_1"], atol=1e-6)  # KLD weight
        x = {"images": None, "sample_ids": np.arange(n, dtype="int32")}
        y_pred = {"aux_logits": e["aux_logits"], "logits": e["logits"]}
        loss = model.compute_loss(x, labels, y_pred, training=True)
        terms = {m.name: float(m.result()) for m in model.loss_trackers}
        self.assertAllClose(terms["loss_kld"], e["loss_kld"], atol=1e-5)
        # Documented: the CE of Eq. 10 is weighted by w.
        ce = np.mean(w * e["ce_per_sample"])
        self.assertAllClose(terms["loss_ce"], ce, atol=1e-5)
        # Documented: no rank regularization term.
        self.assertAllClose(
            loss, e["loss"] - e["loss_rr"] - mu1 * (e["loss_ce"] - ce), 1e-5
        )

        def total(aux_logits, logits):
            out = {"aux_logits": aux_logits, "logits": logits}
            return model.compute_loss(x, labels, out, training=True)

        d_aux, d_logits = gradients(total, e["aux_logits"], e["logits"])
        self.assertAllClose(d_logits, e["grad_logits"], atol=1e-6, rtol=1e-4)
        # Documented: detached target, w-weighted CE.
        self.assertAllClose(
            d_aux,
            w[:, None] * e["grad_aux_logits_detached"],
            atol=1e-6,
            rtol=1e-4,
        )
        self.assertGreater(
            np.abs(e["grad_aux_logits"] - e["grad_aux_logits_detached"]).max(),
            1e-3,
        )

    @parameterized.parameters(0.6, 0.7)
    def test_epoch_end_mining(self, threshold):
        f = self.f
        logits = f["mining/logits"][1:]  # their dummy first row dropped
        labels = f["mining/labels"][1:]
        n = len(labels)
        model = DualBranch(
            backbone=tiny_backbone(16), num_samples=n, threshold=threshold
        )
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        model.distribution_table.table.assign(probs.astype("float32"))
        model.given_label_table.table.assign(labels)
        rng = np.random.default_rng(0)
        model.similarity_table.table.assign(rng.uniform(0, 1, n))
        model.end_epoch(0)
        got = ops.convert_to_numpy(model.class_distribution)
        want = f[f"mining/LD_{threshold}"]
        # Documented: Ada-DF's fallback rows put 0.4 / (C - 1) off the
        # diagonal; ferzoo's (1 - t) / (C - 1). Equal at t = 0.6.
        fallback = np.isclose(np.diag(want), threshold)
        self.assertTrue(fallback.any() and not fallback.all())
        off = (1 - threshold) / 6
        adjusted = np.where(
            fallback[:, None] & ~np.eye(7, dtype=bool), off, want
        )
        self.assertAllClose(got, adjusted, atol=1e-5)
        if threshold == 0.6:
            self.assertAllClose(got, want, atol=1e-5)
