"""Load `tests/fixtures/official/*.npz` into ferzoo models.

The fixtures hold outputs of the official SCN, EAC and Ada-DF code on a
tiny network (`scripts/record_official_fixtures.py`; provenance in the
README beside them): a 3x3 convolution (8 channels, bias, padding 1) and
a ReLU on inputs that are already normalised, then the method's heads.
`ConvBackbone` is that convolution as a ferzoo backbone, so the ferzoo
method runs its own forward pass, loss and optimizer on the same
weights.
"""

import pathlib

import keras
import numpy as np

from ferzoo.backbones.backbone import Backbone

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
OFFICIAL = FIXTURES / "official"


def load(name):
    """The fixture `name` as a dict of NumPy arrays."""
    with np.load(OFFICIAL / f"{name}.npz") as data:
        return {key: data[key] for key in data.files}


class ConvBackbone(Backbone):
    """Conv 3x3 + ReLU, no pixel normalisation (the fixtures' trunk)."""

    def __init__(self, image_shape=(6, 6, 3), filters=8, **kwargs):
        inputs = keras.Input(image_shape, name="images")
        x = keras.layers.Conv2D(filters, 3, padding="same", name="conv")(inputs)
        outputs = keras.layers.ReLU(name="relu")(x)
        super().__init__(inputs, outputs, **kwargs)


def torch_conv(kernel):
    """PyTorch `(out, in, kh, kw)` -> Keras `(kh, kw, in, out)`."""
    return np.transpose(kernel, (2, 3, 1, 0))


def set_dense(layer, weights, prefix):
    layer.kernel.assign(weights[f"{prefix}weight"].T)
    layer.bias.assign(weights[f"{prefix}bias"])


def set_conv(backbone, weights, prefix):
    conv = backbone.get_layer("conv")
    conv.kernel.assign(torch_conv(weights[f"{prefix}weight"]))
    conv.bias.assign(weights[f"{prefix}bias"])


def torch_named(model, names):
    """`{torch name: numpy value}` for `{torch name: keras variable}`."""
    out = {}
    for name, variable in names(model).items():
        value = keras.ops.convert_to_numpy(variable)
        if value.ndim == 4:
            value = np.transpose(value, (3, 2, 0, 1))
        elif value.ndim == 2:
            value = value.T
        out[name] = value
    return out


def torch_variables(model):
    """`{official torch name: ferzoo variable}` of a fixture's net.

    The convolution and the classifier, and SCN's importance head where
    the model has one.
    """
    conv = model.backbone.get_layer("conv")
    names = {
        "features.0.weight": conv.kernel,
        "features.0.bias": conv.bias,
        "fc.weight": model.classifier.kernel,
        "fc.bias": model.classifier.bias,
    }
    if hasattr(model, "importance"):
        names["alpha.0.weight"] = model.importance.kernel
        names["alpha.0.bias"] = model.importance.bias
    return names
