"""DualBranch across epochs: warm-up, the mixture fit, the schedules.

`dual_branch_test.py` checks one step's loss; here, the epoch-end state
(the beta mixture's clean weights and the mined class distributions)
and what each epoch reads of it.
"""

import keras
import numpy as np
from keras import ops
from scipy import stats

from ferzoo.data.noise import symmetric_noise
from ferzoo.models import DualBranch
from tests.test_case import MethodTestCase
from tests.test_case import numpy_softmax
from tests.test_case import tiny_backbone
from tests.test_mixture import numpy_class_distributions


class DualBranchEpochTest(MethodTestCase):
    def method_kwargs(self):
        return {"branch_filters": 8}

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
