"""Noisy-label FER methods: one `keras.Model` subclass per method."""

from ferzoo.models.afcn import AFCN
from ferzoo.models.baseline import Baseline
from ferzoo.models.dacfer import DacFER
from ferzoo.models.dual_branch import DualBranch
from ferzoo.models.dwmca import DWMCA
from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier
from ferzoo.models.scn import SCN

__all__ = [
    "AFCN",
    "Baseline",
    "DacFER",
    "DualBranch",
    "DWMCA",
    "NoisyLabelClassifier",
    "SCN",
]
