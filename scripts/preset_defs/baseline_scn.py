"""Presets of the Baseline and SCN."""

import ferzoo
from preset_defs.common import RAFDB
from preset_defs.common import fer2013_resnet18
from preset_defs.common import fer2013_small_cnn
from preset_defs.common import metadata
from preset_defs.common import preset
from preset_defs.common import recipe
from preset_defs.common import resnet
from preset_defs.common import synthetic

SCN_PAPER = (
    "Wang et al., Suppressing Uncertainties for Large-Scale Facial "
    "Expression Recognition, CVPR 2020"
)
Baseline = ferzoo.models.Baseline
SCN = ferzoo.models.SCN


def _resnet18():
    return resnet("resnet18", 224)


PRESETS = {
    "baseline_resnet18": preset(
        Baseline,
        _resnet18,
        metadata(
            "Cross-entropy ResNet-18 at 224 px: the reference for SCN.",
            RAFDB,
            recipe(),
        ),
        num_classes=7,
    ),
    "scn_resnet18": preset(
        SCN,
        _resnet18,
        metadata(
            "SCN on ResNet-18 at 224 px, paper defaults (beta 0.7, delta1 "
            "0.15, delta2 0.2, relabel from epoch 10), Adam with 0.9 "
            "per-epoch decay.",
            RAFDB,
            recipe(),
            SCN_PAPER,
        ),
        num_classes=7,
        warmup_epochs=10,
    ),
    "baseline_resnet18_fer2013": fer2013_resnet18(
        Baseline,
        "Cross-entropy ResNet-18 with a small stem for 48 px FER2013.",
    ),
    "scn_resnet18_fer2013": fer2013_resnet18(
        SCN,
        "SCN on ResNet-18 (small stem) for 48 px FER2013.",
        SCN_PAPER,
        warmup_epochs=10,
    ),
    "baseline_small_cnn_fer2013": fer2013_small_cnn(
        Baseline,
        "Cross-entropy small CNN (0.3M parameters) for 48 px FER2013.",
    ),
    "scn_small_cnn_fer2013": fer2013_small_cnn(
        SCN,
        "SCN on the small CNN for 48 px FER2013.",
        SCN_PAPER,
        warmup_epochs=8,
    ),
    "baseline_small_cnn_synthetic": synthetic(
        Baseline,
        "Cross-entropy tiny CNN for the embedded synthetic faces.",
    ),
    "scn_small_cnn_synthetic": synthetic(
        SCN,
        "SCN on a tiny CNN for the embedded synthetic faces: the README's "
        "main job.",
        SCN_PAPER,
        warmup_epochs=5,
    ),
}
