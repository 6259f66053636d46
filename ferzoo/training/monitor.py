"""The callbacks of a training run: per-epoch test metrics, checkpoints
and the resume state (`TrainingMonitor`), and host-side seeds per epoch
(`EpochSeeds`)."""

import math
import pathlib
import random

import keras
import numpy as np

from ferzoo import metrics
from ferzoo.seeding import epoch_seed
from ferzoo.training import checkpoints


class TrainingMonitor(keras.callbacks.Callback):
    """Per-epoch test metrics, atomic checkpoints and the resume state.

    At each epoch's end: predicts the test split (if given) and adds
    `test_accuracy` and `test_macro_f1` to the logs; then writes
    `last.keras` (the resume point, with optimizer state), `best.keras`
    when `val_accuracy` improves, and `state.json` with the epoch and the
    per-epoch records, as one crash-consistent step (`save_checkpoint`),
    and `history.csv` from the records. Stops a run whose loss is not
    finite.
    """

    def __init__(
        self,
        output_dir,
        test_data=None,
        test_labels=None,
        records=None,
        best=-math.inf,
        config=None,
        checkpoint=None,
        history_file=None,
        spec=None,
    ):
        super().__init__()
        self.config = config
        self.output_dir = pathlib.Path(output_dir)
        self.test_data = test_data
        self.test_labels = test_labels
        self.records = list(records or [])
        self.best = best
        self.diverged = False
        self.checkpoint = checkpoint
        self.history_file = history_file
        self.spec = spec

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if not np.isfinite(logs.get("loss", 0.0)):
            self.diverged = True
            self.model.stop_training = True
            return
        if self.test_data is not None:
            probs = self.model.predict(self.test_data, verbose=0)
            report = metrics.classification_report(self.test_labels, probs)
            logs["test_accuracy"] = report["accuracy"]
            logs["test_macro_f1"] = report["macro_f1"]
        record = {"epoch": epoch}
        record.update({k: float(v) for k, v in logs.items()})
        self.records.append(record)
        # Select on validation accuracy only; with no val data, best.keras
        # is the last epoch (never a pick on training accuracy).
        monitor = logs.get("val_accuracy")
        improved = monitor is None or monitor > self.best
        if improved:
            self.best = -math.inf if monitor is None else float(monitor)
        state = checkpoints.save_checkpoint(
            self.output_dir,
            self.model,
            {
                "epoch": epoch,
                "best": self.best,
                "records": self.records,
                "config": self.config,
                **({} if self.spec is None else {"spec": self.spec}),
            },
            improved,
            self.checkpoint,
        )
        self.checkpoint = state["checkpoint"]
        if self.history_file:
            path = self.output_dir / self.history_file
            checkpoints.write_history(path, self.records)
            checkpoints._write_point("history_written", epoch)
        checkpoints.finish_checkpoint(self.output_dir, state)


class EpochSeeds(keras.callbacks.Callback):
    """Reseed Python's and NumPy's global RNGs from `(seed, epoch)`.

    So host-side randomness at an epoch is the same in a resumed run as in
    an uninterrupted one. (The data order and augmentation are seeded by
    epoch in the pipeline; the model's own generators are saved with it.)
    """

    def __init__(self, seed):
        super().__init__()
        self.seed = int(seed)

    def on_epoch_begin(self, epoch, logs=None):
        value = epoch_seed(self.seed, epoch)
        random.seed(value)
        np.random.seed(value)
