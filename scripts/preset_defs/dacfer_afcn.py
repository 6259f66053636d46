"""Presets of DacFER and AFCN (flip attention-consistency methods)."""

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


def _meta(description, dataset, rec, paper):
    return {
        "description": description,
        "paper": paper,
        "dataset": dataset,
        "noise": NOISE_30,
        "recipe": rec,
        "results": {},
    }


PRESETS = {
    "dacfer_se_resnet50": (
        lambda: ferzoo.models.DacFER(
            backbone=resnet("se_resnet50", 224), consistency_weight=1.0
        ),
        _meta(
            "DacFER on SE-ResNet-50 at 224 px (the paper): channel "
            "attention on the last stage + flip-CAM consistency, lambda 1.",
            RAFDB,
            DACFER_RECIPE,
            DACFER_PAPER,
        ),
    ),
    "dacfer_resnet18": (
        lambda: ferzoo.models.DacFER(
            backbone=resnet("resnet18", 224), consistency_weight=1.0
        ),
        _meta(
            "DacFER on ResNet-18 at 224 px, the paper's recipe.",
            RAFDB,
            DACFER_RECIPE,
            DACFER_PAPER,
        ),
    ),
    "dacfer_resnet18_fer2013": (
        lambda: ferzoo.models.DacFER(
            backbone=resnet("resnet18", 48, stem="small"), dropout=0.2
        ),
        _meta(
            "DacFER on ResNet-18 (small stem) for 48 px FER2013.",
            FER2013,
            FER2013_RESNET_RECIPE,
            DACFER_PAPER,
        ),
    ),
    "dacfer_small_cnn_fer2013": (
        lambda: ferzoo.models.DacFER(backbone=small_cnn(), dropout=0.2),
        _meta(
            "DacFER on the small CNN for 48 px FER2013.",
            FER2013,
            FER2013_SMALL_RECIPE,
            DACFER_PAPER,
        ),
    ),
    "dacfer_small_cnn_synthetic": (
        lambda: ferzoo.models.DacFER(
            backbone=synthetic_cnn(), attention_reduction=8
        ),
        _meta(
            "DacFER on a tiny CNN for the embedded synthetic faces.",
            SYNTHETIC,
            SYNTHETIC_RECIPE,
            DACFER_PAPER,
        ),
    ),
    "afcn_resnet18": (
        lambda: ferzoo.models.AFCN(
            backbone=resnet("resnet18", 224), warmup_epochs=10, **AFCN_WEIGHTS
        ),
        _meta(
            "AFCN (reconstruction) on ResNet-18 at 224 px: certainty-"
            "weighted CE, rank loss (lambda1 0.5), relabeling from epoch "
            "10, flip-CAM fusion consistency (lambda2 3).",
            RAFDB,
            AFCN_RECIPE,
            AFCN_PAPER,
        ),
    ),
    "afcn_resnet18_fer2013": (
        lambda: ferzoo.models.AFCN(
            backbone=resnet("resnet18", 48, stem="small"),
            dropout=0.2,
            warmup_epochs=10,
            **AFCN_WEIGHTS,
        ),
        _meta(
            "AFCN (reconstruction) on ResNet-18 (small stem) for 48 px "
            "FER2013.",
            FER2013,
            FER2013_RESNET_RECIPE,
            AFCN_PAPER,
        ),
    ),
    "afcn_small_cnn_fer2013": (
        lambda: ferzoo.models.AFCN(
            backbone=small_cnn(), dropout=0.2, warmup_epochs=8, **AFCN_WEIGHTS
        ),
        _meta(
            "AFCN (reconstruction) on the small CNN for 48 px FER2013.",
            FER2013,
            FER2013_SMALL_RECIPE,
            AFCN_PAPER,
        ),
    ),
    "afcn_small_cnn_synthetic": (
        lambda: ferzoo.models.AFCN(
            backbone=synthetic_cnn(), warmup_epochs=5, **AFCN_WEIGHTS
        ),
        _meta(
            "AFCN (reconstruction) on a tiny CNN for the embedded synthetic "
            "faces.",
            SYNTHETIC,
            SYNTHETIC_RECIPE,
            AFCN_PAPER,
        ),
    ),
}
