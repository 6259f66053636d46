import numpy as np
import pytest
from absl.testing import parameterized
from keras import ops

from ferzoo.models import DualBranch
from tests.test_case import MethodTestCase
from tests.test_case import gradients
from tests.test_case import numpy_softmax


class DualBranchTest(MethodTestCase):
    def method_kwargs(self):
        return {"branch_filters": 8}

    def test_method_basics(self):
        model = self.run_method_test(
            DualBranch, self.kwargs, self.data, (16, 7)
        )
        # The last epoch's fit gave the scores: the sample the auxiliary
        # branch agrees with most is cleaner than the one it agrees with
        # least (a mixture whose components were swapped fails this).
        scores = model.clean_scores()
        similarity = model.similarity_table.numpy()
        self.assertAllClose(scores, model.clean_table.numpy())
        high, low = np.argmax(similarity), np.argmin(similarity)
        self.assertGreater(scores[high], scores[low] + 0.1, scores)

    @parameterized.parameters((None, None), ("ada_df", 0.0), ("reversed", 0.2))
    def test_loss_terms_match_numpy(self, fused_target, min_weight):
        # `None`: the defaults, which must be Ada-DF's direction and floor.
        kwargs = {"fused_target": fused_target, "min_weight": min_weight}
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        model = DualBranch(
            **self.kwargs, warmup_epochs=0, dropout=0.0, **kwargs
        )
        floor = 0.2 if min_weight is None else min_weight
        x, y = self.data
        rng = np.random.default_rng(3)
        w = rng.uniform(size=16).astype("float32")
        class_dist = rng.dirichlet(np.ones(7), 7).astype("float32")
        model.clean_table.table.assign(w)
        model.class_distribution.assign(class_dist)
        model.epoch.assign(4)  # e = 5 > beta = 3
        y_pred = model(x, training=False)
        loss = model.compute_loss(x, y, y_pred, training=True)
        aux = ops.convert_to_numpy(y_pred["aux_logits"]).astype("float64")
        tgt = ops.convert_to_numpy(y_pred["logits"]).astype("float64")
        p_aux, p_tgt = numpy_softmax(aux), numpy_softmax(tgt)
        rows = np.arange(16)
        sim = p_aux[rows, y] / np.linalg.norm(p_aux, axis=1)
        # Ada-DF's direction: clean -> class distribution of the label,
        # with w rescaled into [floor, 1] as Ada-DF's weights.
        v = (floor + (1 - floor) * w)[:, None]
        fused = v * class_dist[y] + (1 - v) * p_aux
        if fused_target == "reversed":
            fused = v * p_aux + (1 - v) * class_dist[y]
        ce = np.mean(w * -np.log(p_aux[rows, y]))
        kld = np.mean(np.sum(fused * (np.log(fused) - np.log(p_tgt)), 1))
        mu1 = np.exp(-((1 - 3 / 5) ** 2))
        trackers = {m.name: m.result() for m in model.loss_trackers}
        self.assertAllClose(trackers["loss_ce"], ce, atol=1e-5, rtol=1e-5)
        self.assertAllClose(trackers["loss_kld"], kld, atol=1e-5, rtol=1e-5)
        self.assertAllClose(loss, mu1 * ce + kld, atol=1e-5, rtol=1e-5)

        # Gradients: the fused target is a constant (stop-gradient), so
        # the auxiliary logits learn from mu1 * w * CE alone and the
        # target logits from the KLD: d/dz = (q - f) / N.
        def total(aux_logits, logits):
            out = {"aux_logits": aux_logits, "logits": logits}
            return model.compute_loss(x, y, out, training=True)

        d_aux, d_tgt = gradients(total, aux, tgt)
        onehot = np.eye(7)[y]
        want_aux = mu1 * w[:, None] * (p_aux - onehot) / 16
        self.assertAllClose(d_aux, want_aux, atol=1e-6, rtol=1e-4)
        self.assertAllClose(d_tgt, (p_tgt - fused) / 16, atol=1e-6, rtol=1e-4)
        # The epoch's tables hold this batch's similarities and predictions.
        self.assertAllClose(model.similarity_table.numpy(), sim, atol=1e-6)
        self.assertAllClose(model.distribution_table.numpy(), p_aux, 1e-6)
        np.testing.assert_array_equal(model.given_label_table.numpy(), y)
        self.assertAllClose(model.clean_scores(), w)

    def test_invalid_args(self):
        with self.assertRaisesRegex(ValueError, "threshold"):
            DualBranch(**self.kwargs, threshold=1.5)
        with self.assertRaisesRegex(ValueError, "schedule"):
            DualBranch(**self.kwargs, schedule="cosine")
        with self.assertRaisesRegex(ValueError, "fused_target"):
            DualBranch(**self.kwargs, fused_target="mean")

    @pytest.mark.large
    def test_round_trips(self):
        kwargs = {**self.kwargs, "warmup_epochs": 0}
        self.run_round_trip_tests(DualBranch, kwargs, self.data)
