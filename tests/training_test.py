import json
import os

import keras
import numpy as np
import pytest

from ferzoo import training
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
