"""Feature extractors: RGB pixels in [0, 255] -> last feature map."""

from ferzoo.backbones.backbone import Backbone
from ferzoo.backbones.dlib_resnet import DlibResNetBackbone
from ferzoo.backbones.face_landmark68 import FaceLandmark68Backbone
from ferzoo.backbones.iresnet import IResNetBackbone
from ferzoo.backbones.mobilefacenet import MobileFaceNetBackbone
from ferzoo.backbones.resnet import ResNetBackbone
from ferzoo.backbones.small_cnn import SmallCNNBackbone

__all__ = [
    "Backbone",
    "DlibResNetBackbone",
    "FaceLandmark68Backbone",
    "IResNetBackbone",
    "MobileFaceNetBackbone",
    "ResNetBackbone",
    "SmallCNNBackbone",
]
