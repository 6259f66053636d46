"""ferzoo: facial expression recognition under noisy labels, on Keras 3.

Submodules load on first use, so `ferzoo.cli` can choose the Keras
backend before keras is imported.
"""

import importlib

from ferzoo.version import __version__

_SUBMODULES = (
    "audit",
    "backbones",
    "callbacks",
    "data",
    "export",
    "layers",
    "losses",
    "metrics",
    "models",
    "predict",  # callable: ferzoo.predict(...) runs ferzoo.predict.predict
    "presets",
    "training",
)

__all__ = [*_SUBMODULES, "list_presets", "__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"ferzoo.{name}")
    if name == "list_presets":
        from ferzoo.presets import list_presets

        return list_presets
    raise AttributeError(f"module 'ferzoo' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
