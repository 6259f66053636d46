import csv
import json
import os

import pytest
from click.testing import CliRunner

from ferzoo import audit
from ferzoo import training
from ferzoo.cli import audit as audit_cli
from ferzoo.data import SYNTHETIC_CLASS_NAMES
from ferzoo.data import read_noise_file
from ferzoo.data import read_split
from tests.test_case import TestCase


class AuditCLITest(TestCase):
    def invoke(self, args, catch=False):
        return CliRunner().invoke(audit_cli.main, args, catch_exceptions=catch)

    def test_help_and_usage_errors(self):
        result = self.invoke(["--help"])
        self.assertEqual(result.exit_code, 0, result.output)
        self.assertIn("Examples:", result.output)
        out = self.tmp_dir()
        result = self.invoke(["--folds", "1", "--output-dir", out], True)
        self.assertEqual(result.exit_code, 2)
        result = self.invoke(
            ["--preset", "x", "--from-run", out, "--output-dir", out], True
        )
        self.assertEqual(result.exit_code, 2)
        self.assertIn("not both", result.output)
        missing = os.path.join(out, "nowhere")
        result = self.invoke(
            [
                "--data",
                f"imagefolder:{missing}",
                "--preset",
                "baseline_small_cnn_synthetic",
                "--output-dir",
                out,
            ],
            True,
        )
        self.assertEqual(result.exit_code, 3, result.output)
        self.assertIn("nowhere", result.output)
        result = self.invoke(["--from-run", out, "--output-dir", out], True)
        self.assertEqual(result.exit_code, 3, result.output)
        self.assertIn("last.keras", result.output)

    def test_shares_the_training_options_of_ferzoo_train(self):
        from ferzoo.cli import train as train_cli

        shared = [
            "output_dir", "noise_rate", "noise_type", "noise_file",
            "noise_seed", "epochs", "batch_size", "learning_rate",
            "limit_per_class", "seed", "no_resume", "backend", "as_json",
        ]  # fmt: skip
        audit_params = {p.name: p for p in audit_cli.main.params}
        train_params = {p.name: p for p in train_cli.main.params}
        for name in shared:
            a, t = audit_params[name], train_params[name]
            self.assertEqual(a.opts, t.opts, name)
            self.assertEqual(a.help, t.help, name)
            self.assertEqual(type(a.type), type(t.type), name)
        self.assertEqual(audit_params["output_dir"].default, "runs/audit")
        self.assertEqual(train_params["output_dir"].default, "runs/ferzoo")

    def test_default_preset_is_the_pretrained_baseline(self):
        from ferzoo.presets import resolve_preset

        self.assertEqual(audit.DEFAULT_PRESET, "baseline_dlib_resnet29_fer2013")
        help_text = self.invoke(["--help"]).output
        self.assertIn("baseline_dlib_resnet29_fer2013", help_text)
        folder = resolve_preset(audit.DEFAULT_PRESET)
        config = json.load(open(os.path.join(folder, "config.json")))
        backbone = config["config"]["backbone"]["config"]
        self.assertEqual(backbone["image_shape"], [112, 112, 3])
        # Its backbone loads shipped weights (not random ones).
        weights = resolve_preset(backbone["weights_preset"])
        self.assertTrue(
            os.path.isfile(os.path.join(weights, "model.weights.h5"))
        )

    @pytest.mark.large
    def test_folds_then_resume(self):
        out = self.tmp_dir()
        args = [
            "--preset",
            "scn_small_cnn_synthetic",
            "--data",
            "synthetic:70",
            "--noise-rate",
            "0.3",
            "--folds",
            "2",
            "--epochs",
            "1",
            "--batch-size",
            "35",
            "--image-size",
            "24",
            "--top",
            "10",
            "--output-dir",
            out,
        ]
        first = self.invoke(args)
        self.assertEqual(first.exit_code, 0, first.output)
        self.assertIn("against the 21 injected flips: ROC-AUC", first.output)
        self.assertIn("index.html", first.output)
        for k in (1, 2):
            fold = os.path.join(out, "folds", f"fold_{k}")
            self.assertTrue(os.path.isfile(os.path.join(fold, "last.keras")))
        second = self.invoke([*args, "--json"])
        self.assertEqual(second.exit_code, 0, second.output)
        summary = json.loads(second.stdout)
        self.assertEqual(summary["num_samples"], 70)
        self.assertEqual(summary["score"], "importance weight alpha")
        self.assertEqual(summary["probabilities"], "out-of-fold")
        self.assertEqual(
            json.load(open(os.path.join(out, audit.CONFIG_FILE)))["summary"],
            summary,
        )

    @pytest.mark.large
    def test_from_run(self):
        run, out = self.tmp_dir(), self.tmp_dir()
        training.train(
            "dual_branch_small_cnn_synthetic",
            data="synthetic:70",
            output_dir=run,
            noise_rate=0.3,
            noise_type="pair",
            epochs=1,
            batch_size=35,
            verbose=0,
        )
        result = self.invoke(
            ["--from-run", run, "--output-dir", out, "--top", "5", "--json"]
        )
        self.assertEqual(result.exit_code, 0, result.output)
        summary = json.loads(result.stdout)
        # The run's data and noise protocol are reused.
        self.assertEqual(summary["num_flipped"], 21)
        self.assertEqual(summary["probabilities"], "in-sample")
        self.assertEqual(summary["score"], "BMM clean probability")
        with open(os.path.join(out, audit.CSV_FILE)) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 70)
        names = read_split("synthetic:70", "train", 48).names
        labels = read_noise_file(
            os.path.join(out, audit.CORRECTED_FILE),
            names,
            SYNTHETIC_CLASS_NAMES,
        )
        by_name = {r["name"]: r for r in rows}
        for name, label in zip(names, labels):
            row = by_name[name]
            want = row["given_label"]
            if row["relabel"] == "True":
                want = row["suggested_label"]
            self.assertEqual(SYNTHETIC_CLASS_NAMES[label], want)
        self.assertEqual(len(os.listdir(os.path.join(out, "thumbs"))), 5)
