"""Presets of the six methods on dlib's pretrained face ResNet-29.

The backbone loads the converted weights of the `dlib_resnet29` backbone
preset (`weights_preset`), so the 21 MiB file ships once, not per method.
FER2013's 48 px faces are resized to 112 px. The backbone stops before
dlib's last downsampling block (`include_last_block=False`): at 112 px
that block leaves a 1x1 map, on which flip-CAM consistency (DacFER,
AFCN), DualBranch's branch convs and DWMCA's tokens are degenerate; the
kept `conv256_2` map is 3x3x256. The net has no batch norm: the recipe
fine-tunes with Adam 1e-4 (3e-4 diverged in a quick test).
"""

import ferzoo
from preset_defs.baseline_scn import SCN_PAPER
from preset_defs.common import FER2013
from preset_defs.common import metadata
from preset_defs.common import preset
from preset_defs.common import recipe
from preset_defs.dacfer_afcn import AFCN_PAPER
from preset_defs.dacfer_afcn import DACFER_PAPER
from preset_defs.dual_branch import PAPER as DUAL_BRANCH_PAPER
from preset_defs.dwmca import DWMCA_PAPER
from preset_defs.dwmca import SMALL_HEAD

DLIB_RECIPE = recipe(
    learning_rate=1e-4,
    epochs=20,
    batch_size=64,
    image_size=112,
    augment={"flip": True, "crop_padding": 8, "erasing": 0.25},
)
PAPERS = {
    "scn": SCN_PAPER,
    "dacfer": DACFER_PAPER,
    "afcn": AFCN_PAPER,
    "dual_branch": DUAL_BRANCH_PAPER,
    "dwmca": DWMCA_PAPER,
}
BACKBONE_NOTE = (
    " on dlib's face-recognition ResNet-29 (converted face-api weights, "
    "backbone preset dlib_resnet29, last block dropped) for FER2013 "
    "resized to 112 px; fine-tuned with Adam 1e-4."
)


def dlib_resnet29():
    return ferzoo.backbones.DlibResNetBackbone(
        image_shape=(112, 112, 3),
        include_last_block=False,
        weights_preset="dlib_resnet29",
    )


def face_landmark68():
    return ferzoo.backbones.FaceLandmark68Backbone(
        image_shape=(112, 112, 3), weights_preset="face_landmark68"
    )


def _dlib(model, method, description, **kwargs):
    """`model` on the dlib ResNet-29 backbone preset for FER2013."""
    return preset(
        model,
        dlib_resnet29,
        metadata(
            description + BACKBONE_NOTE,
            FER2013,
            DLIB_RECIPE,
            PAPERS.get(method),
            backbone_preset="dlib_resnet29",
        ),
        dropout=0.2,
        **kwargs,
    )


PRESETS = {
    "baseline_dlib_resnet29_fer2013": _dlib(
        ferzoo.models.Baseline, "baseline", "Cross-entropy Baseline"
    ),
    "scn_dlib_resnet29_fer2013": _dlib(
        ferzoo.models.SCN,
        "scn",
        "SCN (relabelling from epoch 5)",
        warmup_epochs=5,
    ),
    "dacfer_dlib_resnet29_fer2013": _dlib(
        ferzoo.models.DacFER,
        "dacfer",
        "DacFER (channel attention + flip-CAM consistency)",
    ),
    "afcn_dlib_resnet29_fer2013": _dlib(
        ferzoo.models.AFCN,
        "afcn",
        "AFCN (relabelling from epoch 5)",
        warmup_epochs=5,
    ),
    "dual_branch_dlib_resnet29_fer2013": _dlib(
        ferzoo.models.DualBranch,
        "dual_branch",
        "DualBranch (AEA + BMM)",
        branch_filters=128,
    ),
    "dwmca_dlib_resnet29_fer2013": _dlib(
        ferzoo.models.DWMCA,
        "dwmca",
        "DWMCA + APCL with face-api's frozen 68-point landmark net "
        "(backbone preset face_landmark68, 7x7x256 tokens) as the landmark "
        "stream; image stream",
        landmark=face_landmark68,
        freeze_landmark_backbone=True,
        **SMALL_HEAD,
    ),
}
