import json
import os
import pathlib
from unittest import mock

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from ferzoo.cli import evaluate
from ferzoo.cli import export
from ferzoo.cli import train
from ferzoo.data import streaming
from tests.data.readers_test import make_folder
from tests.data.splits_test import rafdb
from tests.test_case import TestCase

TINY = [
    "--preset",
    "scn_small_cnn_synthetic",
    "--data",
    "synthetic:70",
    "--batch-size",
    "35",
    "--noise-rate",
    "0.3",
]


class CLITest(TestCase):
    def invoke(self, command, args):
        return CliRunner().invoke(command.main, args, catch_exceptions=False)

    def test_help_of_every_command(self):
        for command in (train, evaluate, export):
            result = self.invoke(command, ["--help"])
            self.assertEqual(result.exit_code, 0, result.output)
            self.assertIn("Examples:", result.output)

    @pytest.mark.large  # two trainings: ~10 s (TF) to ~25 s (JAX)
    def test_freeze_until_trains_on_cached_maps(self):
        out, cache = self.tmp_dir(), self.tmp_dir()
        args = [*TINY, "--epochs", "1", "--trunk-cache", cache]
        result = self.invoke(
            train, [*args, "--freeze-until", "stage2_pool", "--output-dir", out]
        )
        self.assertEqual(result.exit_code, 0, result.output)
        # train, val and test maps, each keyed in its own folder.
        self.assertEqual(len(list(pathlib.Path(cache).glob("*/maps.npy"))), 3)
        results = json.loads((pathlib.Path(out) / "results.json").read_text())
        self.assertEqual(set(results["trunk_cache"]), {"train", "val", "test"})
        fresh = os.path.join(out, "fresh")
        result = CliRunner().invoke(
            train.main,
            [*args, "--freeze-until", "conv9", "--output-dir", fresh],
        )
        self.assertEqual(result.exit_code, 3, result.output)
        self.assertIn("stage2_pool", result.output)

    def test_usage_and_data_errors_exit_codes(self):
        out = self.tmp_dir()
        result = CliRunner().invoke(
            train.main, [*TINY, "--noise-rate", "1.5", "--output-dir", out]
        )
        self.assertEqual(result.exit_code, 2)
        result = CliRunner().invoke(
            train.main, ["--preset", "no_such_preset", "--output-dir", out]
        )
        self.assertEqual(result.exit_code, 3)
        self.assertIn("scn_small_cnn_synthetic", result.output)
        missing = os.path.join(out, "nowhere")
        result = CliRunner().invoke(
            train.main,
            [
                *TINY[:2],
                "--data",
                f"imagefolder:{missing}",
                "--output-dir",
                out,
            ],
        )
        self.assertEqual(result.exit_code, 3, result.output)
        self.assertIn("nowhere", result.output)

    def test_classes_option_and_a_bad_test_class_folder(self):
        out = self.tmp_dir()
        for bad in ("happy,happy", "happy,,sad"):
            result = CliRunner().invoke(
                train.main, [*TINY, "--classes", bad, "--output-dir", out]
            )
            self.assertEqual(result.exit_code, 2, result.output)
            self.assertIn("--classes", result.output)
        result = CliRunner().invoke(
            train.main, [*TINY, "--classes", "a,b", "--output-dir", out]
        )
        self.assertEqual(result.exit_code, 2, result.output)
        self.assertIn("imagefolder or rafdb data only", result.output)
        # A test class folder that is not one of the training classes
        # stops the run (exit 3, naming the folder), also with --classes.
        root = pathlib.Path(self.tmp_dir())
        make_folder(root / "train", classes=("happy", "sad"))
        make_folder(root / "val", classes=("happy", "sad"), per_class=1)
        make_folder(root / "test", classes=("happy", "surprise"))
        for extra in ([], ["--classes", "sad,happy"]):
            result = CliRunner().invoke(
                train.main,
                [*TINY[:2], "--data", f"imagefolder:{root}", *extra,
                 "--output-dir", out],
            )  # fmt: skip
            self.assertEqual(result.exit_code, 3, result.output)
            self.assertIn(str(root / "test" / "surprise"), result.output)

    @pytest.mark.large
    def test_val_fraction_zero_reports_the_last_epoch(self):
        spec, _ = rafdb(pathlib.Path(self.tmp_dir()))
        out = self.tmp_dir()
        result = self.invoke(
            train,
            [*TINY[:2], "--data", spec, "--epochs", "2", "--batch-size",
             "35", "--val-fraction", "0", "--output-dir", out],
        )  # fmt: skip
        self.assertEqual(result.exit_code, 0, result.output)
        self.assertIn("model selection: last epoch", result.output)
        self.assertNotIn("best on val", result.output)
        results = json.load(open(os.path.join(out, "results.json")))
        self.assertEqual(results["selection"]["type"], "last_epoch")
        self.assertNotIn("best_on_val_accuracy", results["test"])
        self.assertNotIn("val_accuracy", results["history"][-1])
        # best.keras is the last epoch, not a pick on training accuracy.
        best, last = (
            keras.saving.load_model(os.path.join(out, name))
            for name in ("best.keras", "last.keras")
        )
        for a, b in zip(best.get_weights(), last.get_weights()):
            np.testing.assert_array_equal(a, b)

    @pytest.mark.large
    def test_stream_equals_memory_with_a_carved_val_split(self):
        # RAF-DB files with no val split: the val split is carved from
        # the listed files; streamed and in-memory runs train alike.
        spec, _ = rafdb(pathlib.Path(self.tmp_dir()))
        runs = {}
        for flag in ("--stream", "--no-stream"):
            out = self.tmp_dir()
            with mock.patch.object(
                streaming, "stream_dataset", wraps=streaming.stream_dataset
            ) as spy:
                result = self.invoke(
                    train,
                    [*TINY[:2], "--data", spec, "--epochs", "2",
                     "--batch-size", "16", "--distribute", "none", flag,
                     "--output-dir", out],
                )  # fmt: skip
            self.assertEqual(result.exit_code, 0, result.output)
            # train, carved val and test splits stream, or none does.
            self.assertEqual(spy.call_count, 3 if flag == "--stream" else 0)
            self.assertIn("val carved from train", result.output)
            runs[flag] = keras.saving.load_model(
                os.path.join(out, "last.keras")
            )
        for a, b in zip(
            runs["--stream"].get_weights(), runs["--no-stream"].get_weights()
        ):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    def test_list_presets(self):
        result = self.invoke(train, ["--list-presets"])
        self.assertEqual(result.exit_code, 0)
        self.assertIn("scn_small_cnn_synthetic", result.output)

    @pytest.mark.large
    def test_train_resume_eval_export(self):
        out = self.tmp_dir()
        first = self.invoke(
            train, [*TINY, "--epochs", "1", "--output-dir", out, "--json"]
        )
        self.assertEqual(first.exit_code, 0, first.output)
        self.assertEqual(json.loads(first.output)["epochs_run"], 1)
        # Same folder, more epochs: resumes at epoch 2, keeps epoch 1.
        second = self.invoke(
            train, [*TINY, "--epochs", "2", "--output-dir", out]
        )
        self.assertEqual(second.exit_code, 0, second.output)
        self.assertIn("resuming", second.output)
        self.assertIn("(mean of last 2 epochs)", second.output)
        self.assertIn("noise detection ROC-AUC", second.output)
        results = json.load(open(os.path.join(out, "results.json")))
        self.assertEqual([r["epoch"] for r in results["history"]], [0, 1])
        self.assertEqual(results["noise_detection"]["num_flipped"], 21)
        self.assertIn("relabeled", results["noise_detection"])
        for name in (
            "best.keras",
            "last.keras",
            "history.csv",
            "confusion_matrix.png",
            "config.json",
            "metadata.json",
            "model.weights.h5",
        ):
            self.assertTrue(os.path.exists(os.path.join(out, name)), name)
        with open(os.path.join(out, "history.csv")) as f:
            self.assertEqual(len(f.read().strip().splitlines()), 3)
        # The output folder is a preset; evaluate it on the test split of
        # the data it was trained on (recorded; no --data needed).
        for model in (out, os.path.join(out, "best.keras")):
            result = self.invoke(evaluate, ["--model", model, "--json"])
            self.assertEqual(result.exit_code, 0, result.output)
            report = json.loads(result.output)
            self.assertEqual(report["data"], "synthetic:70")
            self.assertEqual(report["num_samples"], 17)
        self.assertAlmostEqual(
            report["accuracy"], results["test"]["final"]["accuracy"]
        )
        saved = os.path.join(out, "saved")
        result = self.invoke(
            export,
            ["--model", os.path.join(out, "best.keras"), "--output", saved],
        )
        self.assertEqual(result.exit_code, 0, result.output)
        import tensorflow as tf

        loaded = tf.saved_model.load(saved)  # keep a reference while serving
        served = loaded.serve(tf.zeros((2, 48, 48, 3), "float32"))
        np.testing.assert_allclose(served.numpy().sum(axis=1), 1.0, atol=1e-5)
        served = loaded.serve(tf.zeros((2, 100, 80, 3), "uint8"))
        self.assertEqual(tuple(served.shape), (2, 7))
        names = [n.decode() for n in loaded.class_names().numpy()]
        self.assertEqual(names, results["test"]["final"]["class_names"])

    def test_untrained_presets_are_refused_unless_allowed(self):
        for command, args in (
            (evaluate, ["--data", "synthetic:70"]),
            (export, ["--output", os.path.join(self.tmp_dir(), "s")]),
        ):
            result = CliRunner().invoke(
                command.main, ["--model", "scn_small_cnn_synthetic", *args]
            )
            self.assertEqual(result.exit_code, 3, result.output)
            self.assertIn("no trained weights", result.output)
            self.assertIn("--allow-untrained", result.output)
        # A preset records no data set to evaluate on by default.
        result = CliRunner().invoke(
            evaluate.main,
            ["--model", "scn_small_cnn_synthetic", "--allow-untrained"],
        )
        self.assertEqual(result.exit_code, 3, result.output)
        self.assertIn("pass --data", result.output)

    @pytest.mark.large
    def test_untrained_preset_with_allow_untrained(self):
        result = self.invoke(
            evaluate,
            [
                "--model",
                "scn_small_cnn_synthetic",
                "--data",
                "synthetic:70",
                "--allow-untrained",
                "--json",
            ],
        )
        self.assertEqual(result.exit_code, 0, result.output)
        self.assertEqual(json.loads(result.output)["num_samples"], 17)

    def test_ctrl_c_exits_130_with_the_resume_hint(self):
        from ferzoo import training

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        original = training.train
        training.train = interrupted
        self.addCleanup(setattr, training, "train", original)
        result = CliRunner().invoke(
            train.main, [*TINY, "--output-dir", self.tmp_dir()]
        )
        self.assertEqual(result.exit_code, 130, result.output)
        self.assertIn(
            "interrupted; rerun the same command to resume", result.stderr
        )

    @pytest.mark.large
    def test_other_settings_exit_2_and_no_resume_starts_over(self):
        out = self.tmp_dir()
        args = [*TINY, "--epochs", "1", "--output-dir", out, "--json"]
        first = self.invoke(train, args)
        self.assertEqual(first.exit_code, 0, first.output)
        other = [*args, "--noise-rate", "0.1", "--seed", "3"]
        result = CliRunner().invoke(train.main, other)
        self.assertEqual(result.exit_code, 2, result.output)
        self.assertIn("noise_rate: 0.3 there, 0.1 now", result.output)
        self.assertIn("seed: 0 there, 3 now", result.output)
        self.assertIn("--no-resume", result.output)
        result = self.invoke(train, [*other, "--no-resume"])
        self.assertEqual(result.exit_code, 0, result.output)
        self.assertEqual(json.loads(result.output)["noise"]["rate"], 0.1)

    def test_summary_says_how_many_epochs_and_skips(self):
        final = {"accuracy": 0.5, "macro_f1": 0.4}
        test = {
            "final": final,
            "best_on_val_accuracy": 0.6,
            "best_epoch": 2,
            "last5_mean_accuracy": 0.55,
            "last5_num_epochs": 3,
        }
        skipped = {"train": {"count": 2}, "test": {"count": 0}}
        noise = {"type": "file", "unknown_ids": {"count": 2, "first": []}}
        text = train.summary_text(
            {"test": test, "skipped": skipped, "noise": noise}, "out"
        )
        self.assertIn("0.5500 (mean of last 3 epochs)", text)
        self.assertIn("skipped bad samples: 2 in train", text)
        self.assertNotIn("in test", text)
        self.assertIn("noise file: 2 name(s) of no training image", text)
