"""Presets of DWMCA (two-stream cross-attention with APCL)."""

import ferzoo
from preset_defs.common import FER2013
from preset_defs.common import FER2013_SMALL_RECIPE
from preset_defs.common import NOISE_30
from preset_defs.common import RAFDB
from preset_defs.common import SYNTHETIC
from preset_defs.common import SYNTHETIC_RECIPE
from preset_defs.common import recipe
from preset_defs.common import small_cnn
from preset_defs.common import synthetic_cnn

DWMCA_PAPER = (
    "Sun, Facial Expression Recognition Method Based on Dynamic Weighted "
    "Attention and Noise Label Optimization, 2025"
)

# The paper: batch 32, Adam 1e-3, x0.9 per epoch, 200 epochs (its
# text also mentions 224 crops; ferzoo follows the IR-50 face input).
PAPER_RECIPE = recipe(
    epochs=200,
    batch_size=32,
    image_size=112,
    augment={"flip": True, "erasing": 0.25},
)
# Heads sized for 48 px and a CPU: D 64, 4 heads, 256 -> 64 embedding.
SMALL_HEAD = {
    "token_dim": 64,
    "num_heads": 4,
    "fusion_dim": 256,
    "embedding_dim": 64,
    "anchors_per_class": 5,
}


def _meta(description, dataset, rec):
    return {
        "description": description,
        "paper": DWMCA_PAPER,
        "dataset": dataset,
        "noise": NOISE_30,
        "recipe": rec,
        "results": {},
    }


def _ir50():
    return ferzoo.backbones.IResNetBackbone.from_name(
        "ir50", image_shape=(112, 112, 3)
    )


def _mobilefacenet():
    return ferzoo.backbones.MobileFaceNetBackbone(image_shape=(112, 112, 3))


PRESETS = {
    "dwmca_ir50": (
        lambda: ferzoo.models.DWMCA(
            backbone=_ir50(), landmark_backbone=_mobilefacenet(), num_classes=7
        ),
        _meta(
            "DWMCA + APCL: IR-50 image stream (last 3 stages as tokens) and "
            "a trainable MobileFaceNet landmark stream at 112 px; D 256, 8 "
            "heads, 768 -> 128 embedding, 10 anchors per class. Paper "
            "recipe: batch 32, Adam 1e-3, x0.9 per epoch.",
            RAFDB,
            PAPER_RECIPE,
        ),
    ),
    "dwmca_small_cnn_fer2013": (
        lambda: ferzoo.models.DWMCA(
            backbone=small_cnn(),
            landmark_backbone=small_cnn(48, (16, 32, 64), 1),
            dropout=0.2,
            **SMALL_HEAD,
        ),
        _meta(
            "DWMCA + APCL with two small-CNN streams for 48 px FER2013.",
            FER2013,
            FER2013_SMALL_RECIPE,
        ),
    ),
    "dwmca_small_cnn_synthetic": (
        lambda: ferzoo.models.DWMCA(
            backbone=synthetic_cnn(),
            landmark_backbone=small_cnn(48, (8, 16, 32), 1),
            **SMALL_HEAD,
        ),
        _meta(
            "DWMCA + APCL with two tiny CNN streams for the embedded "
            "synthetic faces.",
            SYNTHETIC,
            SYNTHETIC_RECIPE,
        ),
    ),
}
