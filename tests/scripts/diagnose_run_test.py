"""scripts/diagnose_run.py's counts, on labels small enough to count by hand."""

import numpy as np

from tests.test_case import TestCase
from tests.test_case import load_script


def load():
    return load_script("diagnose_run.py")


class DiagnoseRunTest(TestCase):
    def test_relabel_outcomes(self):
        d = load()
        clean = np.array([0, 1, 2, 0, 1, 2])
        given = np.array([1, 1, 2, 2, 0, 2])  # samples 0, 3, 4 flipped
        # 0: restored to 0; 1: a clean label broken (1 -> 2); 3: moved to
        # a third class (clean 0, given 2, new 1); 4: kept (-1); 5: the
        # given label written back, not a change.
        relabels = np.array([0, 2, -1, 1, -1, 2])
        out = d.relabel_stats(relabels, given, clean, ["a", "b", "c"])
        self.assertEqual(out["relabeled"], 3)
        self.assertEqual(out["restored"], 1)
        self.assertEqual(out["broken"], 1)
        self.assertEqual(out["moved"], 1)
        self.assertEqual(out["of_flipped"], 3)
        self.assertEqual(
            sorted((m["given"], m["new"]) for m in out["top_moves"]),
            [("b", "a"), ("b", "c"), ("c", "b")],
        )

    def test_score_stats(self):
        d = load()
        flipped = np.array([True, True, False, False, False, False])
        # One flipped sample scores above one clean one: 5 of 6 pairs are
        # ordered; of the 2 lowest, 1 is flipped.
        scores = np.array([0.1, 0.5, 0.4, 0.6, 0.7, np.nan])
        out = d.score_stats(scores, flipped)
        self.assertEqual(out["num_scored"], 5)
        self.assertAlmostEqual(out["roc_auc"], 5 / 6)
        self.assertEqual(out["flipped_among_lowest_k"], 0.5)
        self.assertEqual(out["flipped"][2], 0.3)  # median of 0.1 and 0.5

    def test_loss_terms_keep_first_every_and_last(self):
        d = load()
        path = f"{self.tmp_dir()}/history.csv"
        with open(path, "w") as f:
            f.write("epoch,accuracy,loss,loss_ce\n")
            for i in range(7):
                f.write(f"{i},0.5,{1 - i / 10},{2 - i / 10}\n")
        out = d.loss_terms(path, every=3)
        self.assertEqual(sorted(out), ["loss", "loss_ce"])
        self.assertEqual(out["loss"], {1: 1.0, 3: 0.8, 6: 0.5, 7: 0.4})
