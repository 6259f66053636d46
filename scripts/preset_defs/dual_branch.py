"""Presets of DualBranch (AEA + beta-mixture clean probability)."""

import ferzoo
from preset_defs.common import FER2013
from preset_defs.common import FER2013_SMALL_RECIPE
from preset_defs.common import NOISE_30
from preset_defs.common import RAFDB
from preset_defs.common import SYNTHETIC
from preset_defs.common import SYNTHETIC_RECIPE
from preset_defs.common import recipe
from preset_defs.common import resnet
from preset_defs.common import small_cnn
from preset_defs.common import synthetic_cnn

PAPER = (
    "Liu, A Dual-Branch Facial Expression Recognition Network with Noisy "
    "Label Learning and Identity Invariance, 2025"
)


def _meta(description, dataset, rec):
    return {
        "description": description,
        "paper": PAPER,
        "dataset": dataset,
        "noise": NOISE_30,
        "recipe": rec,
        "results": {},
    }


PRESETS = {
    "dual_branch_resnet18": (
        lambda: ferzoo.models.DualBranch(
            backbone=resnet("resnet18", 100), num_classes=7
        ),
        _meta(
            "DualBranch on ResNet-18 at 100 px, paper recipe: t 0.7, beta "
            "3, RandAugment + flip + erasing, batch 32, Adam 1e-3 with 0.9 "
            "per-epoch decay, 75 epochs.",
            {**RAFDB, "image_size": 100},
            recipe(
                epochs=75,
                batch_size=32,
                image_size=100,
                augment={"flip": True, "randaugment": True, "erasing": 0.25},
            ),
        ),
    ),
    "dual_branch_small_cnn_fer2013": (
        lambda: ferzoo.models.DualBranch(
            backbone=small_cnn(), dropout=0.2, branch_filters=64
        ),
        _meta(
            "DualBranch on the small CNN for 48 px FER2013 (64-filter "
            "branch blocks).",
            FER2013,
            FER2013_SMALL_RECIPE,
        ),
    ),
    "dual_branch_small_cnn_synthetic": (
        lambda: ferzoo.models.DualBranch(
            backbone=synthetic_cnn(), branch_filters=32
        ),
        _meta(
            "DualBranch on a tiny CNN for the embedded synthetic faces.",
            SYNTHETIC,
            SYNTHETIC_RECIPE,
        ),
    ),
}
