import math

import keras
import numpy as np
import pytest
from keras import ops

from ferzoo.models import AFCN
from tests.test_case import MethodTestCase
from tests.test_case import gradients
from tests.test_case import loss_gradients
from tests.test_case import numpy_ce
from tests.test_case import numpy_rank_loss
from tests.test_case import numpy_softmax
from tests.test_case import raw_outputs


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


class AFCNTest(MethodTestCase):
    def test_method_basics(self):
        # A zero margin makes a relabel after the warm-up near certain.
        kwargs = {**self.kwargs, "relabel_margin": 0.0}
        self.run_method_test(AFCN, kwargs, self.data, (16, 7))

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
        z = ops.convert_to_numpy(model.importance(pooled.astype("f4")))
        alpha = 1.0 / (1.0 + np.exp(-z[:, 0].astype("float64")))
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

    def test_invalid_args(self):
        with self.assertRaisesRegex(ValueError, "entropy_weight"):
            AFCN(**self.kwargs, entropy_weight=2.0)
        with self.assertRaisesRegex(ValueError, "consistency_weight"):
            AFCN(**self.kwargs, consistency_weight=-1.0)

    @pytest.mark.large
    def test_round_trips(self):
        kwargs = {**self.kwargs, "warmup_epochs": 0}
        self.run_round_trip_tests(AFCN, kwargs, self.data)
