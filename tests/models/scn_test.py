import numpy as np
import pytest
from keras import ops

from ferzoo.data import load_split
from ferzoo.models import SCN
from tests.test_case import MethodTestCase
from tests.test_case import gradients
from tests.test_case import numpy_ce
from tests.test_case import numpy_rank_loss
from tests.test_case import numpy_softmax
from tests.test_case import tiny_backbone


class SCNTest(MethodTestCase):
    def method_kwargs(self):
        return {"dropout": 0.0}

    def test_method_basics(self):
        # A zero margin makes a relabel after the warm-up near certain.
        kwargs = {**self.kwargs, "relabel_margin": 0.0}
        self.run_method_test(SCN, kwargs, self.data, (16, 7))

    def test_loss_and_gradients_match_numpy(self):
        # L = gamma RR + (1 - gamma) WCE with gamma = 0.3, the gradients
        # of both heads' outputs in closed form.
        model = SCN(**self.kwargs, rank_weight=0.3, warmup_epochs=100)
        rng = np.random.default_rng(5)
        logits = rng.normal(0, 2, (10, 7))
        alpha = rng.uniform(0.4, 0.6, 10)
        labels = np.arange(10) % 7
        out = {"logits": logits, "importance": alpha}
        loss, terms = self.loss_of(model, out, labels, np.arange(10))
        z = alpha[:, None] * logits
        wce = numpy_ce(z, labels).mean()
        rank = numpy_rank_loss(alpha, 0.7, 0.15)
        self.assertGreater(rank, 0.01)
        self.assertAllClose(terms["wce"], wce, atol=1e-5)
        self.assertAllClose(terms["rank"], rank, atol=1e-6)
        self.assertAllClose(loss, 0.3 * rank + 0.7 * wce, atol=1e-5)

        def total(logits, alpha):
            y_pred = {"logits": logits, "importance": alpha}
            x = {"images": None, "sample_ids": np.arange(10)}
            return model.compute_loss(x, labels, y_pred, training=True)

        d_logits, d_alpha = gradients(total, logits, alpha)
        residual = (numpy_softmax(z) - np.eye(7)[labels]) / 10
        want_logits = 0.7 * alpha[:, None] * residual
        high = np.argsort(-alpha)[:7]
        d_rank = np.full(10, 1 / 3)
        d_rank[high] = -1 / 7
        want_alpha = 0.7 * (logits * residual).sum(1) + 0.3 * d_rank
        self.assertAllClose(d_logits, want_logits, atol=1e-6, rtol=1e-4)
        self.assertAllClose(d_alpha, want_alpha, atol=1e-6, rtol=1e-4)

    def test_relabels_persist_and_are_used(self):
        # The paper's path (low-importance group, margin 0.2) on crafted
        # outputs, checked against NumPy.
        model = SCN(**self.kwargs, warmup_epochs=1)
        x, y = self.data
        rng = np.random.default_rng(3)
        crafted = {
            "logits": rng.normal(0, 4, (16, 7)).astype("float32"),
            "importance": rng.uniform(0.3, 0.9, 16).astype("float32"),
        }
        model.compute_loss(x, y, crafted, training=True)
        alpha, logits = crafted["importance"], crafted["logits"]
        p = numpy_softmax(alpha[:, None] * logits.astype("float64"))
        low = alpha < np.sort(alpha)[::-1][int(0.7 * 16) - 1]
        want = low & (p.max(1) - p[np.arange(16), y] > 0.2)
        self.assertTrue(want.any() and not want.all())
        table = model.relabels()
        np.testing.assert_array_equal(table, np.where(want, p.argmax(1), -1))
        # The next epoch trains on the new labels: with one full batch,
        # its logged WCE is the NumPy CE of the model's alpha * logits
        # under the new labels (and not under the old ones).
        y_pred = model(x, training=True)
        logits = ops.convert_to_numpy(y_pred["logits"]).astype("float64")
        alpha = ops.convert_to_numpy(y_pred["importance"]).astype("float64")
        new = np.where(table >= 0, table, y)
        want_wce = numpy_ce(alpha[:, None] * logits, new).mean()
        old_wce = numpy_ce(alpha[:, None] * logits, y).mean()
        self.assertGreater(abs(want_wce - old_wce), 1e-3)
        history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        self.assertAllClose(history.history["loss_wce"][0], want_wce, 1e-5)

    def test_relabelling_starts_in_the_warmup_epochs_th_epoch(self):
        # The official loop: `for i in range(1, epochs + 1)`, relabel when
        # `i >= relabel_epoch` (10). So the 9th epoch keeps the labels and
        # the 10th relabels. Keras counts epochs from 0.
        x, y = self.data
        for epoch_number, relabels in ((9, False), (10, True)):
            model = SCN(**self.kwargs, warmup_epochs=10, relabel_margin=0.0)
            model.fit(
                x,
                y,
                batch_size=16,
                epochs=epoch_number,
                initial_epoch=epoch_number - 1,
                verbose=0,
            )
            self.assertEqual(
                bool((model.relabels() >= 0).any()), relabels, epoch_number
            )

    def test_fit_sizes_the_tables_from_the_data(self):
        x, y = self.data
        model = SCN(backbone=tiny_backbone(), warmup_epochs=0)
        self.assertIsNone(model.num_samples)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        self.assertEqual(model.num_samples, 16)
        self.assertEqual(model.get_config()["num_samples"], 16)
        self.assertTrue(np.isfinite(model.clean_scores()).all())
        ds, info = load_split("synthetic:14", image_size=32, batch_size=7)
        model = SCN(backbone=tiny_backbone(), warmup_epochs=0)
        model.fit(ds, epochs=1, verbose=0)
        self.assertEqual(model.num_samples, info.num_samples)

    def test_invalid_args(self):
        with self.assertRaisesRegex(ValueError, "high_fraction"):
            SCN(**self.kwargs, high_fraction=1.5)

    @pytest.mark.large
    def test_round_trips(self):
        kwargs = {**self.kwargs, "warmup_epochs": 0}
        self.run_round_trip_tests(SCN, kwargs, self.data)
