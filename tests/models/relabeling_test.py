"""The label table shared by SCN, AFCN and DWMCA (`models/relabeling.py`).

Driven through SCN's loss on crafted outputs; the method files test each
method's relabel rule (`scn_test.py`, `afcn_test.py`, `dwmca_test.py`).
"""

import numpy as np
from keras import ops

from ferzoo.models import AFCN
from ferzoo.models import SCN
from tests.models.afcn_test import crafted_outputs
from tests.test_case import MethodTestCase
from tests.test_case import numpy_ce
from tests.test_case import numpy_softmax


class LabelCorrectionTest(MethodTestCase):
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

    def test_afcn_relabels_on_weighted_logits(self):
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
