"""Presets of DacFER and AFCN (flip attention-consistency methods)."""

import ferzoo
from preset_defs.common import RAFDB
from preset_defs.common import fer2013_resnet18
from preset_defs.common import fer2013_small_cnn
from preset_defs.common import metadata
from preset_defs.common import preset
from preset_defs.common import recipe
from preset_defs.common import resnet
from preset_defs.common import synthetic

DACFER_PAPER = (
    "DacFER: Dual Attention Correction for Facial Expression Recognition "
    "(seed dacfer_000)"
)
AFCN_PAPER = (
    "Wei, Pei and Mao, AFCN: An Attention-Based Fusion Consistency Network "
    "for Facial Emotion Recognition, Electronics 14(17) 3523, 2025 "
    "(reconstruction: the paper's body text is unavailable)"
)

# DacFER, Sec. III-A: Adam 1e-3, weight decay 1e-4, x0.9 per epoch, 60
# epochs, batch 64, random erasing, 224 crops of 256 px faces.
DACFER_RECIPE = recipe(
    learning_rate=1e-3,
    weight_decay=1e-4,
    epochs=60,
    batch_size=64,
    augment={"flip": True, "resize_then_crop": [256, 224], "erasing": 0.25},
)
# AFCN (spec): Adam, x0.9 per epoch, batch 32, 60 epochs, flip + random
# erasing; lr 1e-3 because ferzoo ships no pretrained weights (use 1e-4
# when starting from a pretrained backbone).
AFCN_RECIPE = recipe(
    learning_rate=1e-3,
    epochs=60,
    batch_size=32,
    augment={"flip": True, "erasing": 0.25},
)
# lambda1 = 0.5 and lambda2 = 3: the paper's best in its parameter grid.
AFCN_WEIGHTS = {"rank_weight": 0.5, "consistency_weight": 3.0}
DacFER = ferzoo.models.DacFER
AFCN = ferzoo.models.AFCN


def _rafdb(model, backbone, description, rec, paper, **kwargs):
    return preset(
        model,
        lambda: resnet(backbone, 224),
        metadata(description, RAFDB, rec, paper),
        **kwargs,
    )


PRESETS = {
    "dacfer_se_resnet50": _rafdb(
        DacFER,
        "se_resnet50",
        "DacFER on SE-ResNet-50 at 224 px (the paper): channel attention on "
        "the last stage + flip-CAM consistency, lambda 1.",
        DACFER_RECIPE,
        DACFER_PAPER,
        consistency_weight=1.0,
    ),
    "dacfer_resnet18": _rafdb(
        DacFER,
        "resnet18",
        "DacFER on ResNet-18 at 224 px, the paper's recipe.",
        DACFER_RECIPE,
        DACFER_PAPER,
        consistency_weight=1.0,
    ),
    "dacfer_resnet18_fer2013": fer2013_resnet18(
        DacFER,
        "DacFER on ResNet-18 (small stem) for 48 px FER2013.",
        DACFER_PAPER,
    ),
    "dacfer_small_cnn_fer2013": fer2013_small_cnn(
        DacFER,
        "DacFER on the small CNN for 48 px FER2013.",
        DACFER_PAPER,
    ),
    "dacfer_small_cnn_synthetic": synthetic(
        DacFER,
        "DacFER on a tiny CNN for the embedded synthetic faces.",
        DACFER_PAPER,
        attention_reduction=8,
    ),
    "afcn_resnet18": _rafdb(
        AFCN,
        "resnet18",
        "AFCN (reconstruction) on ResNet-18 at 224 px: certainty-weighted "
        "CE, rank loss (lambda1 0.5), relabeling from epoch 10, flip-CAM "
        "fusion consistency (lambda2 3).",
        AFCN_RECIPE,
        AFCN_PAPER,
        warmup_epochs=10,
        **AFCN_WEIGHTS,
    ),
    "afcn_resnet18_fer2013": fer2013_resnet18(
        AFCN,
        "AFCN (reconstruction) on ResNet-18 (small stem) for 48 px FER2013.",
        AFCN_PAPER,
        warmup_epochs=10,
        **AFCN_WEIGHTS,
    ),
    "afcn_small_cnn_fer2013": fer2013_small_cnn(
        AFCN,
        "AFCN (reconstruction) on the small CNN for 48 px FER2013.",
        AFCN_PAPER,
        warmup_epochs=8,
        **AFCN_WEIGHTS,
    ),
    "afcn_small_cnn_synthetic": synthetic(
        AFCN,
        "AFCN (reconstruction) on a tiny CNN for the embedded synthetic faces.",
        AFCN_PAPER,
        warmup_epochs=5,
        **AFCN_WEIGHTS,
    ),
}
