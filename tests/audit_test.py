import csv
import html.parser
import os

import numpy as np
import pytest
from PIL import Image

import ferzoo
from ferzoo import audit
from ferzoo.data import SYNTHETIC_CLASS_NAMES
from ferzoo.data import make_synthetic_faces
from ferzoo.data import read_noise_file
from ferzoo.data import symmetric_noise
from tests.test_case import TestCase

# Eight images, two classes: p(given label) and the method's clean score.
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1])
P_GIVEN = np.array([0.95, 0.15, 0.7, 0.85, 0.9, 0.6, 0.1, 0.8])
METHOD = np.array([0.3, 0.9, 0.2, 0.8, 0.5, 0.7, 0.4, 0.1])


def two_class_probs():
    other = 1.0 - P_GIVEN
    return np.stack(
        [
            np.where(LABELS == 0, P_GIVEN, other),
            np.where(LABELS, P_GIVEN, other),
        ],
        axis=1,
    )


def write_face_folder(root, num_samples=420, size=24, rate=0.3):
    """Synthetic faces as `root/train/<class>/img_<id>.png`, 30% misfiled.

    Returns the flip mask by image id, and the path of a corrupt file.
    """
    images, labels = make_synthetic_faces(
        num_samples, image_size=size, seed=0, difficulty=0.5
    )
    noisy = symmetric_noise(labels, rate, 7, seed=0).labels
    for i, (image, label) in enumerate(zip(images, noisy)):
        folder = os.path.join(root, "train", SYNTHETIC_CLASS_NAMES[label])
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(image).save(os.path.join(folder, f"img_{i:04d}.png"))
    bad = os.path.join(root, "train", "happy", "broken.png")
    with open(bad, "wb") as f:
        f.write(b"not a png")
    return noisy != labels, bad


def image_id(name):
    return int(os.path.basename(name)[4:8])


class PageParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.stack = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs["href"])
        if tag not in ("img", "meta"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (self.stack, tag)
        self.stack.pop()


class RankingTest(TestCase):
    def test_combination_rule_by_hand(self):
        # Percentile ranks (x 8) by p(given): [8, 2, 4, 6, 7, 3, 1, 5];
        # by method score: [3, 8, 2, 7, 5, 6, 4, 1]; mean: [5.5, 5, 3,
        # 6.5, 6, 4.5, 2.5, 3]. cleanlab flags the two confidently wrong
        # labels (1 and 6); with "flagged_first" they come first, then the
        # rest by the mean (ties by index).
        r = audit.rank_issues(
            LABELS, two_class_probs(), METHOD, rule="flagged_first"
        )
        self.assertEqual(np.flatnonzero(r["cleanlab_issue"]).tolist(), [1, 6])
        self.assertEqual(r["order"].tolist(), [6, 1, 2, 7, 5, 0, 4, 3])
        self.assertEqual(r["rank"][6], 1)
        mean = np.array([5.5, 5, 3, 6.5, 6, 4.5, 2.5, 3]) / 8
        self.assertAllClose(r["issue_score"], 1 - mean)
        self.assertAllClose(r["label_quality"], P_GIVEN)
        self.assertEqual(r["suggested"].tolist(), [0, 1, 0, 0, 1, 1, 0, 1])

        average = audit.rank_issues(LABELS, two_class_probs(), METHOD)
        self.assertEqual(average["order"].tolist(), [6, 2, 7, 5, 1, 0, 4, 3])
        # Without a method score (or where it is NaN): cleanlab's rank.
        alone = audit.rank_issues(LABELS, two_class_probs(), np.full(8, np.nan))
        self.assertEqual(alone["order"].tolist(), [6, 1, 5, 2, 7, 3, 4, 0])
        quality_rank = np.array([8, 2, 4, 6, 7, 3, 1, 5])
        self.assertAllClose(alone["issue_score"], 1 - quality_rank / 8)
        with self.assertRaisesRegex(ValueError, "rule"):
            audit.rank_issues(LABELS, two_class_probs(), rule="vote")

    def test_detection_metrics(self):
        flipped = np.array([True, False, True, False, False, True])
        # k = 3: top three are 2, 1, 5 -> two hits.
        m = audit.detection_metrics([2, 1, 5, 0, 3, 4], flipped)
        self.assertEqual(m["k"], 3)
        self.assertAlmostEqual(m["precision"], 2 / 3)
        self.assertAlmostEqual(m["recall"], 2 / 3)
        # A flagged set shorter than k: precision over what it flags.
        m = audit.detection_metrics([2], flipped)
        self.assertEqual((m["precision"], m["recall"]), (1.0, 1 / 3))
        self.assertAlmostEqual(m["f1"], 0.5)
        # Each flip (0.9, 0.8, 0.7) outranks two of the three clean
        # labels (0.1, 0.2) but not the third (0.95): 6 of 9 pairs.
        auc = audit.roc_auc([0.9, 0.1, 0.8, 0.2, 0.95, 0.7], flipped)
        self.assertAlmostEqual(auc, 6 / 9)

    def test_folds_hold_out_every_image_once(self):
        labels = np.repeat(np.arange(7), [9, 3, 8, 8, 8, 8, 8])
        folds = audit.fold_assignment(labels, 3, seed=1)
        self.assertEqual(sorted(set(folds.tolist())), [0, 1, 2])
        for c in range(7):
            counts = np.bincount(folds[labels == c], minlength=3)
            self.assertLessEqual(counts.max() - counts.min(), 1)
        np.testing.assert_array_equal(
            folds, audit.fold_assignment(labels, 3, seed=1)
        )

    def test_callable_module(self):
        self.assertIs(ferzoo.audit, audit)
        self.assertTrue(callable(ferzoo.audit))


class AuditTest(TestCase):
    @pytest.mark.large
    def test_audit_finds_misfiled_faces_and_writes_files(self):
        root, out = self.tmp_dir(), self.tmp_dir()
        flipped_by_id, bad = write_face_folder(root)
        kwargs = dict(
            data=f"imagefolder:{root}",
            preset="baseline_small_cnn_synthetic",
            folds=2,
            output_dir=out,
            top=50,
            epochs=12,
            batch_size=32,
            learning_rate=0.005,
            image_size=24,
            recipe={"augment": {}},
            verbose=0,
        )
        df = ferzoo.audit(**kwargs)
        summary = df.attrs["summary"]
        self.assertEqual(len(df), 420)
        self.assertEqual(summary["num_skipped"], 1)
        flipped = flipped_by_id[[image_id(n) for n in df["name"]]]
        # Most suspect first, and the flips rank high.
        self.assertGreater(audit.roc_auc(df["issue_score"], flipped), 0.7)
        self.assertGreater(flipped[:126].mean(), 0.5)  # 30% at random

        # label_issues.csv: every image once, ranked.
        with open(os.path.join(out, audit.CSV_FILE)) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([int(r["rank"]) for r in rows], list(range(1, 421)))
        self.assertEqual(len({r["path"] for r in rows}), 420)
        for r in rows[:5]:
            self.assertTrue(os.path.isfile(r["path"]))
            folder = os.path.basename(os.path.dirname(r["path"]))
            self.assertEqual(r["given_label"], folder)
            self.assertIn(r["suggested_label"], SYNTHETIC_CLASS_NAMES)
        with open(os.path.join(out, audit.SKIPPED_FILE)) as f:
            self.assertEqual(list(csv.DictReader(f))[0]["path"], bad)

        # The corrected labels read back through the noise-file reader:
        # the suggestion where cleanlab flags a label, else the folder.
        path = os.path.join(out, audit.CORRECTED_FILE)
        names = [r["name"] for r in rows]
        read = read_noise_file(path, names, SYNTHETIC_CLASS_NAMES)
        expected = [
            r["suggested_label"] if r["relabel"] == "True" else r["given_label"]
            for r in rows
        ]
        for r in rows:
            if r["relabel"] == "True":
                self.assertEqual(r["cleanlab_issue"], "True")
                self.assertGreaterEqual(float(r["p_suggested"]), 0.5)
        got = [SYNTHETIC_CLASS_NAMES[i] for i in read]
        self.assertEqual(got, expected)
        self.assertEqual(
            summary["num_relabeled"], sum(r["relabel"] == "True" for r in rows)
        )

        # Contact sheets and the page.
        sheets = sorted(os.listdir(os.path.join(out, "sheets")))
        self.assertEqual(sheets, ["sheet_001.png", "sheet_002.png"])
        with Image.open(os.path.join(out, "sheets", sheets[0])) as image:
            self.assertEqual(image.format, "PNG")
            self.assertGreater(min(image.size), 300)
        parser = PageParser()
        page = open(os.path.join(out, audit.HTML_FILE), encoding="utf-8")
        parser.feed(page.read())
        self.assertEqual(parser.stack, [])
        self.assertEqual(len(parser.images), 2 + 50)
        for src in parser.images + parser.links:
            self.assertFalse(os.path.isabs(src) or ":" in src, src)
            self.assertTrue(os.path.isfile(os.path.join(out, src)), src)

        # Resume: a fold whose result file is gone is rebuilt from its
        # last.keras without training again, to the same ranking.
        os.remove(os.path.join(out, "folds", "fold_2", audit.FOLD_FILE))
        again = ferzoo.audit(**kwargs)
        np.testing.assert_array_equal(again["name"], df["name"])
        self.assertAllClose(again["issue_score"], df["issue_score"])
        # Other settings in the same folder are refused.
        with self.assertRaisesRegex(ValueError, "epochs"):
            ferzoo.audit(**dict(kwargs, epochs=3))
