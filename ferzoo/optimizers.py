"""Optimizers the papers' PyTorch recipes need and Keras lacks."""

import keras
from keras import ops

from ferzoo.callbacks import ExponentialEpochDecay


@keras.saving.register_keras_serializable(package="ferzoo")
class AdamL2(keras.optimizers.Adam):
    """Adam with an L2 penalty added to the gradient (PyTorch's Adam).

    `torch.optim.Adam(params, weight_decay=wd)` adds `wd * w` to each
    gradient before the moment updates: the L2 penalty `wd / 2 * ||w||^2`
    of the loss, rescaled by Adam like the rest of the gradient. Keras'
    `Adam(weight_decay=wd)` is decoupled weight decay instead (AdamW: the
    weights shrink by `lr * wd` outside the moments). The recipes of the
    papers that train with Adam and a weight decay (EAC / DacFER, SCN's
    official code) mean the former, so `"optimizer": "adam"` with a
    `weight_decay` builds this class; `"adamw"` builds Keras' `AdamW`.

    Every trainable variable is decayed, biases and batch-norm scales
    included, as `torch.optim.Adam` decays every parameter it is given.

    Args:
        learning_rate: float or schedule. Defaults to `1e-3`.
        l2: float. The coefficient `wd` added as `wd * w` to the gradient.
            Defaults to `0.0` (plain Adam).
        **kwargs: other `keras.optimizers.Adam` arguments (`beta_1`,
            `beta_2`, `epsilon`, ...); not `weight_decay`.

    Example:
    >>> import keras
    >>> opt = ferzoo.optimizers.AdamL2(learning_rate=0.1, l2=0.5)
    >>> w = keras.Variable([1.0, -2.0])
    >>> opt.apply([np.zeros(2, "float32")], [w])  # gradient 0.5 * w only
    >>> [round(float(v), 4) for v in keras.ops.convert_to_numpy(w)]
    [0.9, -1.9]
    """

    def __init__(self, learning_rate=1e-3, l2=0.0, **kwargs):
        if kwargs.get("weight_decay"):
            raise ValueError(
                "AdamL2 adds `l2 * w` to the gradient; pass `l2`, not "
                "`weight_decay` (decoupled decay: use keras' AdamW). "
                f"Received: weight_decay={kwargs['weight_decay']}"
            )
        kwargs.pop("weight_decay", None)
        if l2 < 0:
            raise ValueError(f"`l2` must be >= 0. Received: l2={l2}")
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2:
            gradient = ops.cast(gradient, variable.dtype)
            gradient = gradient + self.l2 * variable
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["l2"] = self.l2
        return config


def make_optimizer(recipe):
    """The optimizer and per-epoch LR callback of a recipe dict."""
    name = str(recipe.get("optimizer", "adam")).lower()
    lr = float(recipe.get("learning_rate", 1e-3))
    weight_decay = recipe.get("weight_decay") or None
    if name == "adam":
        # PyTorch's Adam: the weight decay is an L2 term of the gradient
        # (`ferzoo.optimizers.AdamL2`), not Keras' decoupled decay.
        optimizer = AdamL2(lr, l2=weight_decay or 0.0)
    elif name == "adamw":
        optimizer = keras.optimizers.AdamW(lr, weight_decay=weight_decay)
    elif name == "sgd":
        optimizer = keras.optimizers.SGD(
            lr, momentum=0.9, weight_decay=weight_decay
        )
    else:
        raise ValueError(
            "recipe `optimizer` must be one of 'adam', 'adamw', 'sgd'. "
            f"Received: optimizer={name!r}"
        )
    decay = recipe.get("lr_decay")
    callback = ExponentialEpochDecay(lr, decay) if decay else None
    return optimizer, callback
