import os

import numpy as np

from ferzoo import metrics
from tests.test_case import TestCase


class MetricsTest(TestCase):
    def test_classification_report(self):
        labels = np.array([0, 0, 1, 1, 2, 2])
        probs = np.eye(3)[[0, 1, 1, 1, 2, 0]]
        report = metrics.classification_report(labels, probs, ["a", "b", "c"])
        self.assertAlmostEqual(report["accuracy"], 4 / 6)
        self.assertEqual(
            report["per_class_accuracy"], {"a": 0.5, "b": 1.0, "c": 0.5}
        )
        self.assertEqual(
            report["confusion_matrix"], [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
        )
        # macro-F1 by hand: F1(a)=0.5, F1(b)=0.8, F1(c)=2/3.
        self.assertAlmostEqual(report["macro_f1"], (0.5 + 0.8 + 2 / 3) / 3)
        folder = self.tmp_dir()
        metrics.save_confusion_matrix(
            report,
            os.path.join(folder, "cm.png"),
            os.path.join(folder, "cm.json"),
        )
        self.assertGreater(os.path.getsize(os.path.join(folder, "cm.png")), 0)

    def test_noise_detection_report(self):
        scores = np.array([0.9, 0.8, 0.2, 0.7, np.nan, 0.1])
        mask = np.array([False, False, True, False, True, True])
        noisy = np.array([0, 1, 2, 0, 1, 2])
        clean = np.array([0, 1, 1, 0, 0, 0])
        relabels = np.array([-1, 2, 1, -1, 1, 1])
        r = metrics.noise_detection_report(scores, mask, relabels, noisy, clean)
        self.assertEqual(r["roc_auc"], 1.0)
        self.assertEqual(r["num_scored"], 5)
        self.assertEqual(r["relabeled"], 3)  # ids 1, 2, 5 (id 4 kept 1)
        self.assertEqual(r["restored"], 1)  # id 2: 1 == clean; id 5 wrong
        self.assertEqual(r["broken"], 1)  # id 1: was correct, changed

    def test_one_group_has_no_auc(self):
        r = metrics.noise_detection_report(np.ones(4), np.zeros(4, bool))
        self.assertIsNone(r["roc_auc"])
