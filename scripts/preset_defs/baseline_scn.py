"""Presets of the Baseline and SCN."""

import ferzoo
from preset_defs.common import FER2013
from preset_defs.common import FER2013_RESNET_RECIPE
from preset_defs.common import FER2013_SMALL_RECIPE
from preset_defs.common import NOISE_30
from preset_defs.common import RAFDB
from preset_defs.common import SYNTHETIC
from preset_defs.common import SYNTHETIC_RECIPE
from preset_defs.common import recipe
from preset_defs.common import resnet
from preset_defs.common import small_cnn
from preset_defs.common import synthetic_cnn

SCN_PAPER = (
    "Wang et al., Suppressing Uncertainties for Large-Scale Facial "
    "Expression Recognition, CVPR 2020"
)


def _meta(description, dataset, rec, paper=None):
    return {
        "description": description,
        "paper": paper,
        "dataset": dataset,
        "noise": NOISE_30,
        "recipe": rec,
        "results": {},
    }


PRESETS = {
    "baseline_resnet18": (
        lambda: ferzoo.models.Baseline(
            backbone=resnet("resnet18", 224), num_classes=7
        ),
        _meta(
            "Cross-entropy ResNet-18 at 224 px: the reference for SCN.",
            RAFDB,
            recipe(),
        ),
    ),
    "scn_resnet18": (
        lambda: ferzoo.models.SCN(
            backbone=resnet("resnet18", 224), num_classes=7, warmup_epochs=10
        ),
        _meta(
            "SCN on ResNet-18 at 224 px, paper defaults (beta 0.7, delta1 "
            "0.15, delta2 0.2, relabel from epoch 10), Adam with 0.9 "
            "per-epoch decay.",
            RAFDB,
            recipe(),
            SCN_PAPER,
        ),
    ),
    "baseline_resnet18_fer2013": (
        lambda: ferzoo.models.Baseline(
            backbone=resnet("resnet18", 48, stem="small"), dropout=0.2
        ),
        _meta(
            "Cross-entropy ResNet-18 with a small stem for 48 px FER2013.",
            FER2013,
            FER2013_RESNET_RECIPE,
        ),
    ),
    "scn_resnet18_fer2013": (
        lambda: ferzoo.models.SCN(
            backbone=resnet("resnet18", 48, stem="small"),
            dropout=0.2,
            warmup_epochs=10,
        ),
        _meta(
            "SCN on ResNet-18 (small stem) for 48 px FER2013.",
            FER2013,
            FER2013_RESNET_RECIPE,
            SCN_PAPER,
        ),
    ),
    "baseline_small_cnn_fer2013": (
        lambda: ferzoo.models.Baseline(backbone=small_cnn(), dropout=0.2),
        _meta(
            "Cross-entropy small CNN (0.3M parameters) for 48 px FER2013.",
            FER2013,
            FER2013_SMALL_RECIPE,
        ),
    ),
    "scn_small_cnn_fer2013": (
        lambda: ferzoo.models.SCN(
            backbone=small_cnn(), dropout=0.2, warmup_epochs=8
        ),
        _meta(
            "SCN on the small CNN for 48 px FER2013.",
            FER2013,
            FER2013_SMALL_RECIPE,
            SCN_PAPER,
        ),
    ),
    "baseline_small_cnn_synthetic": (
        lambda: ferzoo.models.Baseline(backbone=synthetic_cnn()),
        _meta(
            "Cross-entropy tiny CNN for the embedded synthetic faces.",
            SYNTHETIC,
            SYNTHETIC_RECIPE,
        ),
    ),
    "scn_small_cnn_synthetic": (
        lambda: ferzoo.models.SCN(backbone=synthetic_cnn(), warmup_epochs=5),
        _meta(
            "SCN on a tiny CNN for the embedded synthetic faces: the "
            "README's main job.",
            SYNTHETIC,
            SYNTHETIC_RECIPE,
            SCN_PAPER,
        ),
    ),
}
