import numpy as np
import pytest
from keras import ops

from ferzoo.models import DacFER
from tests.test_case import MethodTestCase
from tests.test_case import loss_gradients
from tests.test_case import numpy_ce


class DacFERTest(MethodTestCase):
    def method_kwargs(self):
        return {"attention_reduction": 4}

    def test_method_basics(self):
        # The clean scores against NumPy: `test_loss_terms_match_numpy`.
        self.run_method_test(DacFER, self.kwargs, self.data, (16, 7))

    def test_loss_terms_match_numpy(self):
        model = DacFER(**self.kwargs, consistency_weight=0.7)
        x, y = self.data
        y_pred = model(x, training=True)
        # The CAMs are those of the attended features of x and of flip(x),
        # each its own forward pass (batch-norm statistics per view).
        views = (x["images"], x["images"][:, :, ::-1])
        features, flipped = (
            ops.convert_to_numpy(
                model.channel_attention(model.backbone(v, training=True))
            ).astype("float64")
            for v in views
        )
        kernel = model.classifier.kernel.numpy()
        cam = np.einsum("bhwc,ck->bhwk", features, kernel)
        cam_flip = np.einsum("bhwc,ck->bhwk", flipped, kernel)[:, :, ::-1]
        np.testing.assert_allclose(
            ops.convert_to_numpy(y_pred["cam"]), cam, atol=1e-4
        )
        np.testing.assert_allclose(
            ops.convert_to_numpy(y_pred["cam_flipped"]), cam_flip, atol=1e-4
        )
        logits = features.mean((1, 2)) @ kernel
        logits += model.classifier.bias.numpy()
        np.testing.assert_allclose(
            ops.convert_to_numpy(y_pred["logits"]), logits, atol=1e-4
        )
        loss = model.compute_loss(x, y, y_pred, training=True)
        ce = numpy_ce(logits, y).mean()
        errors = ((cam - cam_flip) ** 2).mean((1, 2, 3))
        self.assertGreater(errors.mean(), 1e-4)
        terms = {m.name: float(m.result()) for m in model.loss_trackers}
        self.assertAllClose(terms["loss_ce"], ce, atol=1e-5)
        self.assertAllClose(terms["loss_consistency"], errors.mean(), 1e-6)
        self.assertAllClose(loss, ce + 0.7 * errors.mean(), atol=1e-5)
        # The clean score is minus the per-sample consistency error.
        self.assertAllClose(model.clean_scores(), -errors, atol=1e-6)

    def test_consistency_does_not_train_the_classifier(self):
        # As EAC (maps from `fc.weight.data`): the classifier's kernel
        # learns from the CE alone, d/dW = P^T (softmax - onehot) / B with
        # P the pooled attended features of x, although the consistency
        # term is far from 0 and weighted 5 (EAC's lambda).
        model = DacFER(**self.kwargs, consistency_weight=5.0)
        x, y = self.data
        _, grads = loss_gradients(model, x, y)
        features = model.channel_attention(
            model.backbone(x["images"], training=True)
        )
        pooled = ops.convert_to_numpy(features).astype("float64").mean((1, 2))
        kernel = model.classifier.kernel.numpy()
        logits = pooled @ kernel + model.classifier.bias.numpy()
        z = logits - logits.max(1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        want = pooled.T @ (p - np.eye(7)[y]) / 16
        got = grads[model.classifier.kernel.path]
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-3)
        # The features do get the consistency gradient.
        conv = [v for v in model.backbone.trainable_variables][0]
        self.assertGreater(np.abs(grads[conv.path]).max(), 1e-4)

    def test_invalid_args(self):
        with self.assertRaisesRegex(ValueError, "consistency_weight"):
            DacFER(**self.kwargs, consistency_weight=-1)
        with self.assertRaisesRegex(ValueError, "attention_reduction"):
            DacFER(**{**self.kwargs, "attention_reduction": 0})

    @pytest.mark.large
    def test_round_trips(self):
        self.run_round_trip_tests(DacFER, self.kwargs, self.data)
