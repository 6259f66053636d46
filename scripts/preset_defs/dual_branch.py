"""Presets of DualBranch (AEA + beta-mixture clean probability)."""

import ferzoo
from preset_defs.common import RAFDB
from preset_defs.common import fer2013_small_cnn
from preset_defs.common import metadata
from preset_defs.common import preset
from preset_defs.common import recipe
from preset_defs.common import resnet
from preset_defs.common import synthetic

PAPER = (
    "Liu, A Dual-Branch Facial Expression Recognition Network with Noisy "
    "Label Learning and Identity Invariance, 2025"
)
DualBranch = ferzoo.models.DualBranch

PRESETS = {
    "dual_branch_resnet18": preset(
        DualBranch,
        lambda: resnet("resnet18", 100),
        metadata(
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
            PAPER,
        ),
        num_classes=7,
    ),
    "dual_branch_small_cnn_fer2013": fer2013_small_cnn(
        DualBranch,
        "DualBranch on the small CNN for 48 px FER2013 (64-filter branch "
        "blocks).",
        PAPER,
        branch_filters=64,
    ),
    "dual_branch_small_cnn_synthetic": synthetic(
        DualBranch,
        "DualBranch on a tiny CNN for the embedded synthetic faces.",
        PAPER,
        branch_filters=32,
    ),
}
