import numpy as np
import pytest
from keras import ops

from ferzoo import losses
from ferzoo.data import load_split
from ferzoo.models import SCN
from tests.test_case import MethodTestCase
from tests.test_case import gradients
from tests.test_case import tiny_backbone
from tests.test_case import tiny_batch


def numpy_ce(logits, labels):
    z = logits - logits.max(1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]


def numpy_softmax(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def numpy_rank_loss(alpha, beta, margin):
    ranked = np.sort(alpha)[::-1]
    m = int(beta * len(alpha))
    return max(0.0, margin - (ranked[:m].mean() - ranked[m:].mean()))


class SCNTest(MethodTestCase):
    def setUp(self):
        super().setUp()
        self.kwargs = {
            "backbone": tiny_backbone(),
            "num_classes": 7,
            "num_samples": 16,
            "dropout": 0.0,
        }
        self.data = tiny_batch(16, size=32)

    def test_method_basics(self):
        # A zero margin makes a relabel after the warm-up near certain.
        kwargs = {**self.kwargs, "relabel_margin": 0.0}
        self.run_method_test(SCN, kwargs, self.data, (16, 7))

    def loss_of(self, model, out, labels, ids, training=True):
        """`compute_loss` on crafted outputs; `(loss, {term: value})`."""
        out = {k: np.asarray(v, "float32") for k, v in out.items()}
        out = {k: ops.convert_to_tensor(v) for k, v in out.items()}
        x = {"images": None, "sample_ids": ops.convert_to_tensor(ids)}
        for tracker in model.loss_trackers:
            tracker.reset_state()
        loss = model.compute_loss(x, labels, out, training=training)
        terms = {m.name[5:]: float(m.result()) for m in model.loss_trackers}
        return float(loss), terms

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

    def test_relabel_dynamics_across_epochs(self):
        # Crafted outputs for 4 samples, all in the low group (beta = 0):
        # relabelled, relabelled again, relabelled back, and counted.
        model = SCN(
            **{**self.kwargs, "num_samples": 6},
            warmup_epochs=1,
            high_fraction=0.0,
        )
        labels = np.array([0, 1, 2, 3])
        ids = np.array([0, 2, 4, 5])

        def step(classes):
            # Outputs that put almost all the mass on `classes` (-1: on
            # the current label, so nothing moves).
            current = model.current_labels(ids, labels)
            target = np.where(classes >= 0, classes, current)
            logits = 10.0 * np.eye(7)[target]
            out = {"logits": logits, "importance": np.ones(4)}
            self.loss_of(model, out, labels, ids)
            return model.relabels()

        table = step(np.array([5, -1, -1, -1]))
        np.testing.assert_array_equal(table, [5, -1, -1, -1, -1, -1])
        # A later epoch: a second sample moves, the first one stays moved.
        model.epoch.assign(1)
        table = step(np.array([-1, 6, -1, -1]))
        np.testing.assert_array_equal(table, [5, -1, 6, -1, -1, -1])
        self.assertEqual(int((table >= 0).sum()), 2)
        # Relabelled again (5 -> 4), measured against its current label.
        table = step(np.array([4, -1, -1, 0]))
        np.testing.assert_array_equal(table, [4, -1, 6, -1, -1, 0])
        # Relabelled back to its given label 1: the model now trains on 1.
        table = step(np.array([-1, 1, -1, -1]))
        np.testing.assert_array_equal(table, [4, -1, 1, -1, -1, 0])
        np.testing.assert_array_equal(
            ops.convert_to_numpy(model.current_labels(ids, labels)),
            [4, 1, 2, 0],
        )
        # An evaluation batch neither reads nor writes the table.
        out = {
            "logits": 10.0 * np.eye(7)[[3, 3, 3, 3]],
            "importance": [1.0] * 4,
        }
        _, terms = self.loss_of(model, out, labels, ids, training=False)
        self.assertAllClose(
            terms["wce"], numpy_ce(10.0 * np.eye(7)[[3] * 4], labels).mean()
        )
        np.testing.assert_array_equal(model.relabels(), table)

    def test_low_group_with_ties(self):
        # M = int(0.7 * 10) = 7; the 7th and 8th weights tie at 0.5. The
        # low group is every weight strictly below the M-th largest, so
        # the tied pair counts as high (the official code's topk splits
        # a tie arbitrarily); the rank loss uses the sorted values.
        alpha = np.array(
            [0.9, 0.5, 0.8, 0.2, 0.7, 0.5, 0.6, 0.3, 0.65, 0.1], "float32"
        )
        loss, low = losses.rank_regularization(alpha, 0.7, 0.5)
        np.testing.assert_array_equal(
            ops.convert_to_numpy(low), alpha < 0.5 - 1e-6
        )
        self.assertAllClose(
            float(loss), numpy_rank_loss(alpha, 0.7, 0.5), atol=1e-6
        )
        # All equal: nobody is below the M-th weight.
        _, low = losses.rank_regularization(np.full(8, 0.4), 0.7, 0.15)
        np.testing.assert_array_equal(ops.convert_to_numpy(low), False)

    def test_rank_regularization_matches_numpy(self):
        rng = np.random.default_rng(1)
        for n, beta, margin in [
            (10, 0.7, 0.15),
            (64, 0.7, 0.07),
            (7, 0.5, 0.3),
        ]:
            alpha = rng.uniform(0.2, 0.9, n).astype("float32")
            loss, low = losses.rank_regularization(alpha, beta, margin)
            self.assertAllClose(
                float(loss), numpy_rank_loss(alpha, beta, margin), atol=1e-6
            )
            m = int(beta * n)
            expected_low = np.isin(alpha, np.sort(alpha)[::-1][m:])
            np.testing.assert_array_equal(
                ops.convert_to_numpy(low), expected_low
            )
        # Well-separated groups give zero loss.
        alpha = np.array([0.9] * 7 + [0.1] * 3, "float32")
        self.assertEqual(float(losses.rank_regularization(alpha)[0]), 0.0)

    def test_relabel_rule_matches_numpy(self):
        rng = np.random.default_rng(2)
        probs = rng.dirichlet(np.ones(7) * 0.5, 50).astype("float32")
        labels = rng.integers(0, 7, 50)
        candidates = rng.uniform(size=50) < 0.5
        new, changed = losses.relabel(probs, labels, 0.2, candidates)
        p_given = probs[np.arange(50), labels]
        want = (probs.max(1) - p_given > 0.2) & candidates
        np.testing.assert_array_equal(ops.convert_to_numpy(changed), want)
        np.testing.assert_array_equal(
            ops.convert_to_numpy(new), np.where(want, probs.argmax(1), labels)
        )
        self.assertTrue(want.any() and not want.all())

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
        self.run_model_saving_test(SCN, kwargs, self.data)
        self.run_backend_consistency_test(SCN, kwargs, self.data)
        self.run_export_test(SCN, kwargs, self.data)
