"""Presets of DWMCA (two-stream cross-attention with APCL)."""

import ferzoo
from preset_defs.common import RAFDB
from preset_defs.common import fer2013_small_cnn
from preset_defs.common import metadata
from preset_defs.common import preset
from preset_defs.common import recipe
from preset_defs.common import small_cnn
from preset_defs.common import synthetic

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
DWMCA = ferzoo.models.DWMCA


def _ir50():
    return ferzoo.backbones.IResNetBackbone.from_name(
        "ir50", image_shape=(112, 112, 3)
    )


def _mobilefacenet():
    return ferzoo.backbones.MobileFaceNetBackbone(image_shape=(112, 112, 3))


PRESETS = {
    "dwmca_ir50": preset(
        DWMCA,
        _ir50,
        metadata(
            "DWMCA + APCL: IR-50 image stream (last 3 stages as tokens) and "
            "a trainable MobileFaceNet landmark stream at 112 px; D 256, 8 "
            "heads, 768 -> 128 embedding, 10 anchors per class. Paper "
            "recipe: batch 32, Adam 1e-3, x0.9 per epoch.",
            RAFDB,
            PAPER_RECIPE,
            DWMCA_PAPER,
        ),
        landmark=_mobilefacenet,
        num_classes=7,
    ),
    "dwmca_small_cnn_fer2013": fer2013_small_cnn(
        DWMCA,
        "DWMCA + APCL with two small-CNN streams for 48 px FER2013.",
        DWMCA_PAPER,
        landmark=lambda: small_cnn(48, (16, 32, 64), 1),
        **SMALL_HEAD,
    ),
    "dwmca_small_cnn_synthetic": synthetic(
        DWMCA,
        "DWMCA + APCL with two tiny CNN streams for the embedded synthetic "
        "faces.",
        DWMCA_PAPER,
        landmark=lambda: small_cnn(48, (8, 16, 32), 1),
        **SMALL_HEAD,
    ),
}
