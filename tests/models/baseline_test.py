import numpy as np
import pytest

from ferzoo.models import Baseline
from tests.test_case import MethodTestCase
from tests.test_case import gradients
from tests.test_case import tiny_backbone
from tests.test_case import tiny_batch


class BaselineTest(MethodTestCase):
    def setUp(self):
        super().setUp()
        self.kwargs = {"backbone": tiny_backbone(), "num_samples": 16}
        self.data = tiny_batch(16, size=32)

    def test_method_basics(self):
        self.run_method_test(Baseline, self.kwargs, self.data, (16, 7))

    def test_loss_score_and_gradient_match_numpy(self):
        model = Baseline(**self.kwargs)
        rng = np.random.default_rng(0)
        logits = rng.normal(0, 2, (6, 7))
        labels = np.array([0, 3, 6, 2, 2, 5])
        ids = np.array([1, 4, 5, 9, 10, 15])
        x = {"images": None, "sample_ids": ids}
        loss = model.compute_loss(x, labels, {"logits": logits})
        p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        ce = -np.log(p[np.arange(6), labels]).mean()
        self.assertAllClose(loss, ce, atol=1e-5)
        # The clean score: the probability of the given label.
        scores = model.clean_scores()
        self.assertAllClose(scores[ids], p[np.arange(6), labels], atol=1e-6)
        self.assertTrue(np.isnan(np.delete(scores, ids)).all())
        (grad,) = gradients(
            lambda z: model.compute_loss(x, labels, {"logits": z}), logits
        )
        want = (p - np.eye(7)[labels]) / 6
        self.assertAllClose(grad, want, atol=1e-6, rtol=1e-4)

    @pytest.mark.large
    def test_round_trips(self):
        self.run_model_saving_test(Baseline, self.kwargs, self.data)
        self.run_backend_consistency_test(Baseline, self.kwargs, self.data)
        self.run_export_test(Baseline, self.kwargs, self.data)
