"""ferzoo: facial expression recognition under noisy labels, on Keras 3."""

from ferzoo import backbones
from ferzoo import export
from ferzoo import layers
from ferzoo import metrics
from ferzoo import models
from ferzoo.presets import list_presets
from ferzoo.version import __version__

__all__ = [
    "backbones",
    "export",
    "layers",
    "metrics",
    "models",
    "list_presets",
    "__version__",
]
