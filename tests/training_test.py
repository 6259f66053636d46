import json
import os
import pathlib

import keras
import numpy as np
import pytest

from ferzoo import training
from tests.data.splits_test import rafdb
from tests.test_case import TestCase
from tests.test_case import table_values


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated crash")


class TrainingTest(TestCase):
    @pytest.mark.large
    def test_interrupted_run_resumes_with_its_state(self):
        out = self.tmp_dir()
        kwargs = dict(
            preset="scn_small_cnn_synthetic",
            data="synthetic:70",
            output_dir=out,
            noise_rate=0.3,
            epochs=3,
            batch_size=35,
            verbose=0,
            overrides={"warmup_epochs": 0},
        )
        with self.assertRaises(KeyboardInterrupt):
            training.train(callbacks=[Interrupt()], **kwargs)
        state = json.load(open(os.path.join(out, "state.json")))
        self.assertEqual(state["epoch"], 1)
        saved = keras.saving.load_model(os.path.join(out, "last.keras"))
        self.assertEqual(int(np.asarray(saved.epoch)), 1)
        tables_at_crash = table_values(saved)
        self.assertTrue(np.isfinite(tables_at_crash["score_table"]).all())
        results = training.train(**kwargs)
        self.assertEqual([r["epoch"] for r in results["history"]], [0, 1, 2])
        leftovers = [f for f in os.listdir(out) if f.startswith(".tmp")]
        self.assertEqual(leftovers, [])
        # The run continued from the saved model, so its learning-rate
        # schedule continued too (0.9 per epoch).
        lrs = [r["learning_rate"] for r in results["history"]]
        np.testing.assert_allclose(lrs[2] / lrs[0], 0.81, rtol=1e-4)

    @pytest.mark.large
    def test_no_val_split_selects_on_val_carved_from_train(self):
        # RAF-DB has no val split: 10% of each class of the noisy training
        # split is held out, and results.json says so.
        spec, _ = rafdb(pathlib.Path(self.tmp_dir()))
        out = self.tmp_dir()
        results = training.train(
            "scn_small_cnn_synthetic",
            data=spec,
            output_dir=out,
            noise_rate=0.3,
            epochs=1,
            batch_size=35,
            verbose=0,
        )
        expected = "val carved from train, 7 samples, seed 0"
        self.assertEqual(results["selection"]["description"], expected)
        saved = json.load(open(os.path.join(out, "results.json")))
        self.assertEqual(saved["selection"]["description"], expected)
        self.assertIn("val_accuracy", results["history"][0])
        self.assertIn("best_on_val_accuracy", results["test"])
        # Per-sample tables and the noise report cover the 63 images left.
        self.assertEqual(results["noise_detection"]["num_samples"], 63)
        model = keras.saving.load_model(os.path.join(out, "last.keras"))
        self.assertEqual(model.num_samples, 63)
