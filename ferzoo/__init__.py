"""ferzoo: facial expression recognition under noisy labels, on Keras 3.

Submodules load on first use, so `ferzoo.cli` can choose the Keras
backend before keras is imported. Keras still knows ferzoo's classes
(`keras.saving.load_model("run/best.keras")` after `import ferzoo`):
if keras is already imported, `ferzoo.models` is imported now; if not, it
is imported as soon as keras finishes importing.
"""

import importlib
import importlib.abc
import importlib.util
import sys

from ferzoo.version import __version__

_SUBMODULES = (
    "audit",
    "backbones",
    "callbacks",
    "convert",
    "data",
    "deploy",  # ONNX / LiteRT / TF.js exports and their light runtimes
    "export",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
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


def _register_classes():
    """Import the packages that register ferzoo's classes with Keras.

    `ferzoo.models` imports `ferzoo.backbones` and `ferzoo.layers`. Code
    below the methods (a backbone built from a model preset) calls this
    to deserialise a model without importing `ferzoo.models` itself.
    """
    importlib.import_module("ferzoo.models")


def _register_with_keras():
    """Import the modules that register ferzoo's classes with Keras.

    Skipped when keras was first imported by a ferzoo module that is still
    initialising (e.g. `import ferzoo.backbones` in a fresh process):
    importing `ferzoo.models` then would import that half-built module.
    Every ferzoo entry point that loads methods imports `ferzoo.models`
    itself.
    """
    for name, module in list(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        if name.startswith("ferzoo.") and getattr(spec, "_initializing", 0):
            return
    _register_classes()


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Runs `_register_with_keras` once `import keras` has completed."""

    _busy = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras" or self._busy:
            return None
        self._busy = True  # find keras' own spec without us
        try:
            spec = importlib.util.find_spec("keras")
        finally:
            self._busy = False
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _RegisteringLoader(spec.loader, self)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    """Keras' own loader, then `_register_with_keras`."""

    def __init__(self, loader, finder):
        self._loader = loader
        self._finder = finder

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # Keras sees its own loader, as without ferzoo.
        module.__loader__ = module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        _register_with_keras()

    def __getattr__(self, name):
        return getattr(self._loader, name)


if "keras" in sys.modules:
    _register_with_keras()
elif not any(isinstance(f, _AfterKerasImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterKerasImport())
