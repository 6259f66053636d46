"""`ferzoo.losses` against NumPy: SCN's rank regularization and relabel."""

import numpy as np
from keras import ops

from ferzoo import losses
from tests.test_case import TestCase
from tests.test_case import numpy_rank_loss


class SelfCureLossesTest(TestCase):
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
