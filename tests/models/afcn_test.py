import math

import keras
import numpy as np
import pytest
from keras import ops

from ferzoo.models import AFCN
from tests.models.dacfer_test import noisy_synthetic
from tests.models.dacfer_test import numpy_ce
from tests.models.dacfer_test import raw_outputs
from tests.models.dacfer_test import symmetrize_kernels
from tests.models.scn_test import numpy_rank_loss
from tests.test_case import MethodTestCase
from tests.test_case import gradients
from tests.test_case import loss_gradients
from tests.test_case import tiny_backbone
from tests.test_case import tiny_batch


def crafted_outputs(n=10, num_classes=7, seed=0):
    """A `y_pred` dict with known logits, certainties and CAMs."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, num_classes)).astype("float32")
    return {
        "logits": logits,
        "importance": rng.uniform(0.4, 0.6, n).astype("float32"),
        "cam": rng.normal(size=(n, 4, 4, num_classes)).astype("float32"),
        "cam_flipped": rng.normal(size=(n, 4, 4, num_classes)).astype(
            "float32"
        ),
    }


def glorot_kernel(model, seed=0):
    """Give the (zero-initialised) classifier a Glorot-uniform kernel."""
    kernel = model.classifier.kernel
    kernel.assign(keras.initializers.GlorotUniform(seed=seed)(kernel.shape))


def numpy_softmax(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


class AFCNTest(MethodTestCase):
    def setUp(self):
        super().setUp()
        self.kwargs = {
            "backbone": tiny_backbone(),
            "num_classes": 7,
            "num_samples": 16,
        }
        self.data = tiny_batch(16, size=32)

    def test_method_basics(self):
        # A zero margin makes a relabel after the warm-up near certain.
        kwargs = {**self.kwargs, "relabel_margin": 0.0}
        self.run_method_test(AFCN, kwargs, self.data, (16, 7))

    def loss_of(self, model, y_pred, labels, ids, training=True):
        y_pred = {k: ops.convert_to_tensor(v) for k, v in y_pred.items()}
        x = {"images": None, "sample_ids": ops.convert_to_tensor(ids)}
        for tracker in model.loss_trackers:
            tracker.reset_state()
        loss = model.compute_loss(x, labels, y_pred, training=training)
        terms = {m.name[5:]: float(m.result()) for m in model.loss_trackers}
        return float(loss), terms

    def test_loss_terms_match_numpy(self):
        for entropy_weight in (0.0, 0.4):
            model = AFCN(
                **self.kwargs,
                rank_weight=0.3,
                consistency_weight=2.0,
                entropy_weight=entropy_weight,
            )
            out = crafted_outputs()
            labels = np.arange(10) % 7
            loss, terms = self.loss_of(model, out, labels, np.arange(10))
            # Certainty: head, blended with 1 - H(p) / log C.
            p = numpy_softmax(out["logits"].astype("float64"))
            entropy = -(p * np.log(p)).sum(1)
            alpha = (1 - entropy_weight) * out["importance"]
            alpha += entropy_weight * (1 - entropy / math.log(7))
            wce = numpy_ce(alpha[:, None] * out["logits"], labels).mean()
            rank = numpy_rank_loss(alpha, 0.7, 0.15)
            self.assertGreater(rank, 0)
            fused = 0.5 * (out["cam"] + out["cam_flipped"])
            cons = 0.5 * (
                ((out["cam"] - fused) ** 2).mean()
                + ((out["cam_flipped"] - fused) ** 2).mean()
            )
            self.assertAllClose(terms["wce"], wce, atol=1e-5)
            self.assertAllClose(terms["rank"], rank, atol=1e-6)
            self.assertAllClose(terms["consistency"], cons, atol=1e-6)
            self.assertAllClose(loss, wce + 0.3 * rank + 2.0 * cons, 1e-5)
            # The clean score is the certainty.
            self.assertAllClose(model.clean_scores()[:10], alpha, atol=1e-6)

    def test_relabeling_rules(self):
        model = AFCN(**self.kwargs, warmup_epochs=2, relabel_margin=0.2)
        out = crafted_outputs(16, seed=3)
        # Certainties in [0.1, 0.5]: alpha * logits flattens p enough that
        # the rule on softmax(logits) would move other samples.
        alpha = 0.1 + 2.0 * (out["importance"] - 0.4)
        out["importance"] = alpha.astype("float32")
        labels = np.arange(16) % 7
        ids = np.arange(16)
        # Inside the warm-up (the 1st epoch of warmup_epochs=2), or
        # outside training: the table never moves.
        self.loss_of(model, out, labels, ids)
        model.epoch.assign(1)
        self.loss_of(model, out, labels, ids, training=False)
        np.testing.assert_array_equal(model.relabels(), -1)
        # From the 2nd epoch (0-based 1): low-certainty group with
        # p_max - p_y > 0.2.
        self.loss_of(model, out, labels, ids)
        alpha = out["importance"]
        p = numpy_softmax(alpha[:, None] * out["logits"])
        low = alpha < np.sort(alpha)[::-1][int(0.7 * 16) - 1]
        want = low & (p.max(1) - p[ids, labels] > 0.2)
        self.assertTrue(want.any() and not want.all())
        self.assertTrue((low & ~want).any())
        q = numpy_softmax(out["logits"])
        unweighted = low & (q.max(1) - q[ids, labels] > 0.2)
        self.assertTrue((unweighted != want).any())
        table = model.relabels()
        np.testing.assert_array_equal(table, np.where(want, p.argmax(1), -1))
        # The stored labels persist: the next loss (a batch of other
        # outputs, so nothing is relabelled again) is a NumPy CE of
        # alpha * logits with the new labels, not with the old ones.
        other = crafted_outputs(16, seed=4)
        other["importance"] = np.full(16, 0.5, "float32")
        _, terms = self.loss_of(model, other, labels, ids)
        weighted = 0.5 * other["logits"].astype("float64")
        new = np.where(want, p.argmax(1), labels)
        self.assertAllClose(
            terms["wce"], numpy_ce(weighted, new).mean(), atol=1e-5
        )
        self.assertGreater(
            abs(terms["wce"] - numpy_ce(weighted, labels).mean()), 1e-4
        )
        # Evaluation batches keep their own labels.
        _, terms = self.loss_of(model, other, labels, ids, training=False)
        self.assertAllClose(
            terms["wce"], numpy_ce(weighted, labels).mean(), atol=1e-5
        )

    def test_gradients_match_numpy(self):
        # The entropy part of the certainty is a constant (stop-gradient):
        # d/dz of L_wce is alpha (softmax(alpha z) - onehot) / N, the rank
        # and consistency terms do not depend on the logits.
        model = AFCN(**self.kwargs, entropy_weight=0.5, warmup_epochs=100)
        out = crafted_outputs(seed=2)
        labels = np.arange(10) % 7
        logits = out["logits"].astype("float64")
        p = numpy_softmax(logits)
        entropy = -(p * np.log(p)).sum(1)
        alpha = 0.5 * out["importance"] + 0.5 * (1 - entropy / math.log(7))

        def total(logits):
            y_pred = {**out, "logits": logits}
            x = {"images": None, "sample_ids": np.arange(10)}
            return model.compute_loss(x, labels, y_pred, training=True)

        (d_logits,) = gradients(total, logits)
        z = alpha[:, None] * logits
        want = alpha[:, None] * (numpy_softmax(z) - np.eye(7)[labels]) / 10
        self.assertAllClose(d_logits, want, atol=1e-6, rtol=1e-4)

    def test_consistency_does_not_train_the_classifier(self):
        # The classifier's kernel learns from the weighted CE alone:
        # d/dW = P^T (alpha (softmax(alpha z) - onehot)) / B, with P the
        # pooled features of x, although L_cons is weighted 3.
        model = AFCN(**self.kwargs, warmup_epochs=100)
        glorot_kernel(model)
        x, y = self.data
        _, grads = loss_gradients(model, x, y)
        features = model.backbone(x["images"], training=True)
        pooled = ops.convert_to_numpy(features).astype("float64").mean((1, 2))
        logits = pooled @ model.classifier.kernel.numpy()
        logits += model.classifier.bias.numpy()
        alpha = ops.convert_to_numpy(model.importance(pooled.astype("f4")))
        alpha = alpha[:, 0].astype("float64")
        z = alpha[:, None] * logits
        residual = alpha[:, None] * (numpy_softmax(z) - np.eye(7)[y]) / 16
        got = grads[model.classifier.kernel.path]
        np.testing.assert_allclose(
            got, pooled.T @ residual, atol=1e-5, rtol=1e-3
        )

    def test_certainty_gets_no_push_at_initialisation(self):
        # A zero classifier: CE(alpha * logits) is log C for every alpha, so
        # the weighted CE cannot be lowered by driving the certainty to 0
        # (with a random head on a pretrained backbone it could, and alpha
        # collapsed: docs/methods/afcn.md, "A zero-initialised classifier").
        model = AFCN(**self.kwargs)
        x, y = self.data
        out = raw_outputs(model, x)
        self.assertGreater(float(np.std(out["importance"])), 1e-4)
        _, terms = self.loss_of(model, out, y, x["sample_ids"], False)
        self.assertAllClose(terms["wce"], math.log(7), atol=1e-6)
        self.assertAllClose(terms["consistency"], 0.0, atol=1e-12)
        for alpha in (0.01, 0.9):
            out["importance"] = np.full(16, alpha, "float32")
            _, terms = self.loss_of(model, out, y, x["sample_ids"], False)
            self.assertAllClose(terms["wce"], math.log(7), atol=1e-6)

    def test_consistency_zero_for_flip_symmetric_model(self):
        model = AFCN(**self.kwargs)
        glorot_kernel(model)
        x, y = self.data
        out = raw_outputs(model, x)
        _, terms = self.loss_of(model, out, y, x["sample_ids"], False)
        self.assertGreater(terms["consistency"], 1e-5)
        symmetrize_kernels(model)
        out = raw_outputs(model, x)
        _, terms = self.loss_of(model, out, y, x["sample_ids"], False)
        self.assertLess(terms["consistency"], 1e-9)

    def test_short_fit_lowers_consistency(self):
        x, y = noisy_synthetic()
        model = AFCN(**{**self.kwargs, "num_samples": len(y)}, warmup_epochs=2)
        glorot_kernel(model)  # maps to shrink from the first step
        norm = np.linalg.norm(model.classifier.kernel.numpy())
        history = model.fit(x, y, batch_size=32, epochs=4, verbose=0).history
        consistency = history["loss_consistency"]
        self.assertLess(consistency[-1], 0.5 * consistency[0], consistency)
        # Not by shrinking the head: the maps do not train the kernel, so
        # its norm does not collapse.
        after = np.linalg.norm(model.classifier.kernel.numpy())
        self.assertGreater(after, 0.9 * norm, (norm, after))

    def test_invalid_args(self):
        with self.assertRaisesRegex(ValueError, "entropy_weight"):
            AFCN(**self.kwargs, entropy_weight=2.0)
        with self.assertRaisesRegex(ValueError, "consistency_weight"):
            AFCN(**self.kwargs, consistency_weight=-1.0)

    @pytest.mark.large
    def test_round_trips(self):
        kwargs = {**self.kwargs, "warmup_epochs": 0}
        for run in (
            self.run_model_saving_test,
            self.run_backend_consistency_test,
            self.run_export_test,
        ):
            run(AFCN, kwargs, self.data)
