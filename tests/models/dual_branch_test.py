import keras
import numpy as np
import pytest
from absl.testing import parameterized
from keras import ops
from scipy import stats

from ferzoo.data.noise import symmetric_noise
from ferzoo.layers import AverageExpressionAnchoring
from ferzoo.mixture import mine_class_distributions
from ferzoo.models import DualBranch
from tests.test_case import MethodTestCase
from tests.test_case import gradients
from tests.test_case import tiny_backbone
from tests.test_case import tiny_batch


def numpy_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def numpy_class_distributions(dists, labels, num_classes, t):
    out = np.zeros((num_classes, num_classes))
    for c in range(num_classes):
        rows = [d for d, y in zip(dists, labels) if y == c]
        mean = np.mean(rows, axis=0) if rows else None
        if mean is not None and mean[c] >= t:
            out[c] = mean
        else:
            out[c] = (1 - t) / (num_classes - 1)
            out[c, c] = t
    return out


class DualBranchTest(MethodTestCase):
    def setUp(self):
        super().setUp()
        self.kwargs = {
            "backbone": tiny_backbone(),
            "num_classes": 7,
            "num_samples": 16,
            "branch_filters": 8,
        }
        self.data = tiny_batch(16, size=32)

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

    def test_warmup_uses_no_clean_weights(self):
        # Inside the warm-up (the 1st of warmup_epochs=2) w is 1 whatever
        # the clean table holds: plain CE, target = the class distribution.
        model = DualBranch(**self.kwargs, warmup_epochs=2)
        x, y = self.data
        rng = np.random.default_rng(6)
        w = rng.uniform(size=16).astype("float32")
        model.clean_table.table.assign(w)
        class_dist = rng.dirichlet(np.ones(7), 7)
        model.class_distribution.assign(class_dist.astype("float32"))
        y_pred = model(x, training=False)
        model.compute_loss(x, y, y_pred, training=True)
        p_aux = numpy_softmax(ops.convert_to_numpy(y_pred["aux_logits"]))
        p_tgt = numpy_softmax(ops.convert_to_numpy(y_pred["logits"]))
        fused = class_dist[y]
        ce = np.mean(-np.log(p_aux[np.arange(16), y]))
        kld = np.mean(np.sum(fused * (np.log(fused) - np.log(p_tgt)), 1))
        trackers = {m.name: m.result() for m in model.loss_trackers}
        self.assertAllClose(trackers["loss_ce"], ce, atol=1e-5, rtol=1e-5)
        self.assertAllClose(trackers["loss_kld"], kld, atol=1e-5, rtol=1e-5)
        self.assertAllClose(model.clean_scores(), np.ones(16))
        # The 2nd epoch (0-based 1) reads the clean table.
        model.epoch.assign(1)
        for tracker in model.loss_trackers:
            tracker.reset_state()
        model.compute_loss(x, y, y_pred, training=True)
        ce = np.mean(w * -np.log(p_aux[np.arange(16), y]))
        self.assertAllClose(model.loss_trackers[0].result(), ce, 1e-5)
        self.assertAllClose(model.clean_scores(), w)

    def test_mixture_is_first_fitted_before_the_warmup_epoch(self):
        # warmup_epochs=3: the 3rd epoch (0-based 2) is the first to use
        # w, so the fit runs at the end of 0-based epoch 1, not of 0.
        n = 400
        model = DualBranch(**{**self.kwargs, "num_samples": n}, warmup_epochs=3)
        rng = np.random.default_rng(7)
        sim = np.where(rng.uniform(size=n) < 0.3, 0.2, 0.9)
        sim = (sim + rng.uniform(-0.05, 0.05, n)).astype("float32")
        model.similarity_table.table.assign(sim)
        model.given_label_table.table.assign(rng.integers(0, 7, n))
        dists = rng.dirichlet(np.ones(7), n).astype("float32")
        model.distribution_table.table.assign(dists)
        model.end_epoch(0)
        np.testing.assert_array_equal(model.clean_table.numpy(), 1.0)
        model.end_epoch(1)
        clean = model.clean_table.numpy()
        self.assertLess(clean[sim < 0.5].max(), 0.5)
        self.assertGreater(clean[sim > 0.5].min(), 0.5)

    def test_schedules(self):
        model = DualBranch(**self.kwargs)
        expected = {
            "paper": [
                (1.0, np.exp(-4.0)),
                (1.0, np.exp(-0.25)),
                (1.0, 1.0),
                (np.exp(-(0.25**2)), 1.0),
                (np.exp(-(0.9**2)), 1.0),
            ],
            "ada_df": [
                (1.0, np.exp(-(4 / 9))),
                (1.0, np.exp(-(1 / 9))),
                (1.0, 1.0),
                (np.exp(-(0.25**2)), 1.0),
                (np.exp(-(0.9**2)), 1.0),
            ],
        }
        for schedule, values in expected.items():
            model.schedule = schedule
            for epoch, want in zip([0, 1, 2, 3, 29], values):
                model.epoch.assign(epoch)
                got = [float(v) for v in model.loss_weights()]
                self.assertAllClose(got, want, atol=1e-6, msg=schedule)

    def test_class_distribution_mining(self):
        rng = np.random.default_rng(4)
        labels = rng.integers(0, 6, 60)  # class 6 has no sample
        dists = rng.dirichlet(np.ones(7) * 0.3, 60)
        dists[labels == 2, 2] += 3.0  # class 2 is stable
        dists /= dists.sum(axis=1, keepdims=True)
        got = mine_class_distributions(dists, labels, 7, 0.7)
        want = numpy_class_distributions(dists, labels, 7, 0.7)
        self.assertAllClose(got, want, atol=1e-12)
        self.assertGreater(got[2, 2], 0.7)
        self.assertAllClose(got[6, 6], 0.7)
        self.assertAllClose(got.sum(axis=1), np.ones(7), atol=1e-9)

    def test_end_epoch_fits_mixture_and_mines(self):
        # Similarities drawn from a known two-beta mixture: the clean
        # table must be close to the true posterior of the clean
        # component, computed here with scipy's beta densities.
        n = 2000
        model = DualBranch(**{**self.kwargs, "num_samples": n})
        rng = np.random.default_rng(5)
        noisy = rng.uniform(size=n) < 0.3
        sim = np.where(noisy, rng.beta(2, 8, n), rng.beta(8, 2, n))
        labels = rng.integers(0, 7, n)
        dists = rng.dirichlet(np.ones(7), n)
        model.similarity_table.table.assign(sim.astype("float32"))
        model.given_label_table.table.assign(labels.astype("int32"))
        model.distribution_table.table.assign(dists.astype("float32"))
        model.end_epoch(0)
        s = sim.astype("float32").astype("float64")
        joint_clean = 0.7 * stats.beta.pdf(s, 8, 2)
        joint_noisy = 0.3 * stats.beta.pdf(s, 2, 8)
        posterior = joint_clean / (joint_clean + joint_noisy)
        clean = model.clean_table.numpy()
        self.assertLess(np.abs(clean - posterior).mean(), 0.02)
        self.assertLess(np.abs(clean - posterior).max(), 0.15)
        self.assertAllClose(model.clean_scores(), clean)
        self.assertAllClose(
            model.class_distribution,
            numpy_class_distributions(dists, labels, 7, 0.7),
            atol=1e-6,
        )

    def test_average_expression_anchoring(self):
        layer = AverageExpressionAnchoring(momentum=0.5)
        f = np.array([[1.0, 2.0, 0.0], [3.0, 6.0, 4.0]], "float32")
        layer.build(f.shape)
        layer.alpha.assign([0.5, -1.0, 2.0])
        # mean = [2, 4, 2]; f + alpha * mean.
        want = f + np.array([1.0, -4.0, 4.0], "float32")
        self.assertAllClose(layer(f, training=True), want)
        self.assertAllClose(layer.moving_mean, [1.0, 2.0, 1.0])
        # Inference uses the moving mean, so one image gives one answer.
        self.assertAllClose(
            layer(f[:1], training=False), [[1.5, 0.0, 2.0]], atol=1e-6
        )

    def test_flipped_samples_get_lower_clean_probability(self):
        n, size = 224, 16
        rng = np.random.default_rng(0)
        clean = np.arange(n) % 7
        palette = rng.uniform(40, 215, (7, 3))
        noise = rng.normal(0, 40, (n, size, size, 3))
        images = (palette[clean][:, None, None] + noise).clip(0, 255)
        noisy = symmetric_noise(clean, 0.3, 7, seed=0)
        x = {"images": images.astype("float32"), "sample_ids": np.arange(n)}
        model = DualBranch(backbone=tiny_backbone(size), num_samples=n)
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        model.fit(x, noisy.labels, batch_size=32, epochs=6, verbose=0)
        scores = model.clean_scores()
        flipped, kept = scores[noisy.mask], scores[~noisy.mask]
        self.assertLess(flipped.mean() + 0.2, kept.mean(), (flipped, kept))

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
        self.run_model_saving_test(DualBranch, kwargs, self.data)
        self.run_backend_consistency_test(DualBranch, kwargs, self.data)
        self.run_export_test(DualBranch, kwargs, self.data)
