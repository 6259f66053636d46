"""Convert pretrained weights from other frameworks into ferzoo presets.

`convert_checkpoint` turns a PyTorch checkpoint (torchvision / timm
ResNet and SE-ResNet, Cadene's SE-ResNet, insightface IR / IR-SE,
MobileFaceNet) into a backbone preset folder; `convert_state_dict` does
the mapping on a dict of NumPy arrays, without torch. The `ferzoo-convert`
command wraps them. `read_tfjs_weights` reads a TF.js weights manifest
and its shards (face-api's nets, `scripts/convert_faceapi.py`).
"""

from ferzoo.convert.tfjs import read_tfjs_weights
from ferzoo.convert.torch_checkpoints import LAYOUTS
from ferzoo.convert.torch_checkpoints import ConversionError
from ferzoo.convert.torch_checkpoints import convert_checkpoint
from ferzoo.convert.torch_checkpoints import convert_state_dict
from ferzoo.convert.torch_checkpoints import detect_layout
from ferzoo.convert.torch_checkpoints import find_state_dict
from ferzoo.convert.torch_checkpoints import load_checkpoint

__all__ = [
    "LAYOUTS",
    "ConversionError",
    "convert_checkpoint",
    "convert_state_dict",
    "detect_layout",
    "find_state_dict",
    "load_checkpoint",
    "read_tfjs_weights",
]
