"""Callbacks that ferzoo models install in `fit`.

They act only at epoch boundaries (`on_epoch_begin` / `on_epoch_end`),
where the JAX trainer has synced the model variables, so per-sample and
epoch state stays in variables and is identical on every backend.
"""

import keras


class EpochCounter(keras.callbacks.Callback):
    """Write the current epoch into the model's `epoch` variable.

    Methods read it inside `compute_loss` (warm-up, schedules), so it must
    be a variable, not a Python attribute. A resumed fit sets it from
    `initial_epoch`.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.model.epoch.assign(epoch)


class ExponentialEpochDecay(keras.callbacks.Callback):
    """Set the learning rate to `initial_learning_rate * decay ** epoch`.

    The papers' schedule (exponential decay 0.9 per epoch). Computed from
    the epoch number, so a resumed run continues on the same curve.

    Args:
        initial_learning_rate: float. Learning rate of epoch 0.
        decay: float. Factor applied once per epoch. Defaults to `0.9`.
    """

    def __init__(self, initial_learning_rate, decay=0.9):
        super().__init__()
        if initial_learning_rate <= 0:
            raise ValueError(
                "`initial_learning_rate` must be > 0. Received: "
                f"initial_learning_rate={initial_learning_rate}"
            )
        if not 0 < decay <= 1:
            raise ValueError(f"`decay` must be in (0, 1]. Received: {decay}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay = float(decay)

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.initial_learning_rate * self.decay**epoch
        self.model.optimizer.learning_rate.assign(lr)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(
                keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
            )
