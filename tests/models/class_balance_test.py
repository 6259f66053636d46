import json
import pathlib
import re

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import ferzoo
from ferzoo.cli import train
from tests.test_case import TestCase
from tests.test_case import tiny_backbone

COUNTS = [40, 5, 30, 80, 50, 45, 25]


def numpy_ce(logits, labels):
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]


def cui_weights(counts, beta):
    """Cui et al. 2019, Eq. 4 and their code's scaling to sum to C."""
    counts = np.asarray(counts, "float64")
    w = (1.0 - beta) / (1.0 - np.power(beta, counts))
    return w / w.sum() * len(counts)


class ClassBalanceTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(3)
        self.logits = rng.normal(0, 2, (12, 7)).astype("float32")
        self.labels = rng.integers(0, 7, 12).astype("int32")

    def loss(self, **kwargs):
        model = ferzoo.models.Baseline(
            backbone=tiny_backbone(), class_counts=COUNTS, **kwargs
        )
        x = {
            "images": np.zeros((12, 32, 32, 3), "float32"),
            "sample_ids": np.arange(12, dtype="int32"),
        }
        loss = model.compute_loss(
            x, self.labels, {"logits": self.logits}, training=False
        )
        return float(keras.ops.convert_to_numpy(loss))

    def test_logit_adjusted_loss_is_menon_eq_10(self):
        prior = np.asarray(COUNTS, "float64") / sum(COUNTS)
        for tau in (1.0, 0.5):
            expected = numpy_ce(
                self.logits + tau * np.log(prior), self.labels
            ).mean()
            got = self.loss(
                class_balance="logit_adjusted", class_balance_strength=tau
            )
            self.assertAllClose(got, expected, atol=1e-5)

    def test_reweighted_loss_is_cui_eq_4(self):
        weights = cui_weights(COUNTS, 0.99)
        expected = (
            weights[self.labels] * numpy_ce(self.logits, self.labels)
        ).mean()
        got = self.loss(class_balance="reweighted", class_balance_strength=0.99)
        self.assertAllClose(got, expected, atol=1e-5)
        # The default beta is 0.9999.
        weights = cui_weights(COUNTS, 0.9999)
        expected = (
            weights[self.labels] * numpy_ce(self.logits, self.labels)
        ).mean()
        self.assertAllClose(
            self.loss(class_balance="reweighted"), expected, atol=1e-5
        )

    def test_off_by_default_and_in_config_only_when_on(self):
        plain = ferzoo.models.Baseline(backbone=tiny_backbone())
        self.assertNotIn("class_balance", plain.get_config())
        self.assertAllClose(
            self.loss(), numpy_ce(self.logits, self.labels).mean(), atol=1e-5
        )
        model = ferzoo.models.Baseline(
            backbone=tiny_backbone(),
            class_balance="logit_adjusted",
            class_counts=COUNTS,
        )
        config = model.get_config()
        self.assertEqual(config["class_counts"], COUNTS)
        again = ferzoo.models.Baseline.from_config(config)
        self.assertEqual(again.balance.offsets, model.balance.offsets)

    def test_clear_errors(self):
        with self.assertRaisesRegex(ValueError, "class_counts"):
            ferzoo.models.Baseline(
                backbone=tiny_backbone(), class_balance="reweighted"
            )
        with self.assertRaisesRegex(ValueError, "one of"):
            ferzoo.models.Baseline(
                backbone=tiny_backbone(),
                class_balance="focal",
                class_counts=COUNTS,
            )
        with self.assertRaisesRegex(ValueError, "one count per class"):
            ferzoo.models.Baseline(
                backbone=tiny_backbone(),
                num_classes=8,
                class_balance="reweighted",
                class_counts=COUNTS,
            )
        with self.assertRaisesRegex(ValueError, "SCN has its own loss"):
            ferzoo.models.SCN(
                backbone=tiny_backbone(),
                class_balance="reweighted",
                class_counts=COUNTS,
            )

    @pytest.mark.large  # one tiny training
    def test_cli_fills_counts_from_the_training_labels(self):
        out = self.tmp_dir()
        args = ["--preset", "baseline_small_cnn_synthetic", "--data"]
        args += ["synthetic:70", "--batch-size", "35", "--epochs", "1"]
        args += ["--noise-rate", "0.3", "--output-dir", out]
        result = CliRunner().invoke(
            train.main,
            [*args, "--class-balance", "logit-adjusted"],
            catch_exceptions=False,
        )
        self.assertEqual(result.exit_code, 0, result.output)
        folder = pathlib.Path(out)
        config = json.loads((folder / "config.json").read_text())["config"]
        self.assertEqual(config["class_balance"], "logit_adjusted")
        # The noisy training labels' counts, as the run's summary prints
        # them ("angry: 8 (clean: 10)"), not the clean ones.
        printed = re.findall(
            r"^\s+\w+: (\d+) \(clean: \d+\)$", result.output, re.M
        )
        self.assertEqual(config["class_counts"], [int(n) for n in printed])
        self.assertNotEqual(config["class_counts"], [10] * 7)
        spec = json.loads((folder / "spec.json").read_text())
        self.assertEqual(spec["overrides"], {"class_balance": "logit_adjusted"})
