"""PyTorch layouts: architecture from tensor shapes, layer names mapped.

Layouts (`LAYOUTS`):

- `"resnet"`: torchvision ResNet-18/34/50/101/152 and timm's ResNets,
  SE-ResNet-50 included (`conv1`, `bn1`, `layer{s}.{b}.conv{k}` /
  `.bn{k}` / `.downsample.{0,1}` / `.se.fc{1,2}`; head `fc`, or
  `feature` in some MS-Celeb-1M checkpoints) -> `ResNetBackbone`.
- `"cadene_senet"`: Cadene's `se_resnet50` / timm's `legacy_seresnet50`
  (`layer0.conv1`, `layer0.bn1`, `.se_module.fc{1,2}`; head
  `last_linear`) -> `ResNetBackbone(caffe_style=True)`.
- `"iresnet"`: insightface / face.evoLVe IR and IR-SE as in POSTER's
  `ir50.py` (`input_layer.{0,1,2}`, `body.{i}.res_layer.{0..5}`,
  `body.{i}.shortcut_layer.{0,1}`; head `output_layer`) ->
  `IResNetBackbone`. A stage starts wherever a unit's depth changes.
- `"mobilefacenet"`: POSTER's / TreB1eN's MobileFaceNet (`conv1`,
  `conv2_dw`, `conv_23`, `conv_3.model.{i}`, `conv_34`, `conv_4.model.{i}`,
  `conv_45`, `conv_5.model.{i}`, `conv_6_sep`; head `output_layer` or

`ferzoo.convert.torch_checkpoints` builds the backbone and copies the
tensors; this module reads a layout's architecture from a state dict's
shapes (`backbone_config`) and names the torch module of each ferzoo
layer (`torch_module_name`).
"""

import re

from ferzoo.errors import DataError

LAYOUTS = ("resnet", "cadene_senet", "iresnet", "mobilefacenet")

HEAD_PREFIXES = {
    "resnet": ("fc.", "feature."),
    "cadene_senet": ("last_linear.",),
    "iresnet": ("output_layer.",),
    "mobilefacenet": ("output_layer.", "conv_6_dw.", "linear.", "bn."),
}

DEFAULT_IMAGE_SHAPES = {
    "resnet": (224, 224, 3),
    "cadene_senet": (224, 224, 3),
    "iresnet": (112, 112, 3),
    "mobilefacenet": (112, 112, 3),
}

_MAX_LISTED = 40


class ConversionError(DataError):
    """A checkpoint does not fit a ferzoo backbone (keys or shapes)."""


def detect_layout(state_dict):
    """Guess the layout of a (prefix-free) state dict; see `LAYOUTS`."""
    keys = set(state_dict)
    if "input_layer.0.weight" in keys and any(
        k.startswith("body.") for k in keys
    ):
        return "iresnet"
    if "conv1.conv.weight" in keys and "conv2_dw.conv.weight" in keys:
        return "mobilefacenet"
    if "layer0.conv1.weight" in keys:
        return "cadene_senet"
    if "conv1.weight" in keys and "layer1.0.conv1.weight" in keys:
        return "resnet"
    raise ConversionError(
        "cannot tell the checkpoint's layout from its keys (expected one of "
        f"{', '.join(LAYOUTS)}); first keys: {short_names(sorted(keys), 12)}. "
        "Pass `layout`."
    )


def backbone_config(state_dict, layout):
    """`(backbone class, config)` read from the tensor shapes."""
    from ferzoo import backbones

    if layout in ("resnet", "cadene_senet"):
        return backbones.ResNetBackbone, _resnet_config(state_dict, layout)
    if layout == "iresnet":
        return backbones.IResNetBackbone, _iresnet_config(state_dict)
    if layout == "mobilefacenet":
        return backbones.MobileFaceNetBackbone, _mobilefacenet_config(
            state_dict
        )
    raise ValueError(
        f"`layout` must be one of {LAYOUTS}. Received: layout={layout}"
    )


def _shape(state_dict, key):
    if key not in state_dict:
        raise ConversionError(
            f"missing key {key!r}, needed to read the architecture."
        )
    return state_dict[key].shape


def _indices(state_dict, pattern):
    found = set()
    for key in state_dict:
        m = re.match(pattern, key)
        if m:
            found.add(int(m.group(1)))
    return sorted(found)


def _resnet_config(sd, layout):
    stem_key = "layer0.conv1.weight" if layout == "cadene_senet" else (
        "conv1.weight"
    )  # fmt: skip
    stem = _shape(sd, stem_key)
    if stem[2] not in (3, 7):
        raise ConversionError(
            f"{stem_key} has a {stem[2]}x{stem[3]} kernel; ResNetBackbone "
            "has a 7x7 (imagenet) or 3x3 (small) stem."
        )
    stages = _indices(sd, r"layer([1-9]\d*)\.\d+\.")
    if stages != list(range(1, len(stages) + 1)) or not stages:
        raise ConversionError(
            f"stages must be layer1..layerN; found layers {stages}."
        )
    se = "se_module" if layout == "cadene_senet" else "se"
    return {
        "stackwise_num_filters": [
            int(_shape(sd, f"layer{s}.0.conv1.weight")[0]) for s in stages
        ],
        "stackwise_num_blocks": [
            len(_indices(sd, rf"layer{s}\.(\d+)\.")) for s in stages
        ],
        "block_type": (
            "bottleneck_block"
            if "layer1.0.conv3.weight" in sd
            else "basic_block"
        ),  # fmt: skip
        "use_squeeze_excite": f"layer1.0.{se}.fc1.weight" in sd,
        "stem": "imagenet" if stem[2] == 7 else "small",
        "stem_filters": int(stem[0]),
        **({"caffe_style": True} if layout == "cadene_senet" else {}),
    }


def _iresnet_config(sd):
    units = _indices(sd, r"body\.(\d+)\.")
    if units != list(range(len(units))) or not units:
        raise ConversionError(f"units must be body.0..body.N; found {units}.")
    depths = [int(_shape(sd, f"body.{i}.res_layer.1.weight")[0]) for i in units]
    filters, blocks = [], []
    for depth in depths:
        if filters and filters[-1] == depth:
            blocks[-1] += 1
        else:
            filters.append(depth)
            blocks.append(1)
    return {
        "stackwise_num_filters": filters,
        "stackwise_num_blocks": blocks,
        "use_squeeze_excite": "body.0.res_layer.5.fc1.weight" in sd,
        "stem_filters": int(_shape(sd, "input_layer.0.weight")[0]),
    }


# MobileFaceNet stages: (first block, repeated blocks) modules.
_MFN_STAGES = (
    ("conv_23", "conv_3"),
    ("conv_34", None),
    (None, "conv_4"),
    ("conv_45", None),
    (None, "conv_5"),
)


def mobilefacenet_modules(sd):
    """Per stage, the torch module path of each block."""
    stages = []
    for first, repeated in _MFN_STAGES:
        modules = [first] if first else []
        if repeated:
            n = len(_indices(sd, rf"{repeated}\.model\.(\d+)\."))
            modules += [f"{repeated}.model.{i}" for i in range(n)]
        stages.append(modules)
    return stages


def _mobilefacenet_config(sd):
    stem = int(_shape(sd, "conv1.conv.weight")[0])
    widths, expansions, blocks = [], [], []
    in_c = stem
    for modules in mobilefacenet_modules(sd):
        if not modules:
            raise ConversionError(
                "a MobileFaceNet stage has no blocks; expected conv_23, "
                "conv_3, conv_34, conv_4, conv_45 and conv_5."
            )
        out_c = int(_shape(sd, f"{modules[0]}.project.conv.weight")[0])
        expanded = {
            int(_shape(sd, f"{m}.conv.conv.weight")[0]) // c
            for m, c in zip(modules, [in_c] + [out_c] * len(modules))
        }
        if len(expanded) != 1:
            raise ConversionError(
                f"blocks {modules} expand by different factors "
                f"{sorted(expanded)}; MobileFaceNetBackbone has one per stage."
            )
        widths.append(out_c)
        expansions.append(expanded.pop())
        blocks.append(len(modules))
        in_c = out_c
    return {
        "stackwise_expansion": expansions,
        "stackwise_num_filters": widths,
        "stackwise_num_blocks": blocks,
        "stackwise_strides": [2, 2, 1, 2, 1],
        "stem_filters": stem,
        "output_filters": int(_shape(sd, "conv_6_sep.conv.weight")[0]),
    }


# ferzoo layer-name suffix -> torch module path (after the block's path).
_RESNET_PARTS = {
    "downsample_conv": "downsample.0",
    "downsample_bn": "downsample.1",
}
_IRESNET_STEM = {"conv": "0", "bn": "1", "prelu": "2"}
_IRESNET_PARTS = {
    "res_bn1": "res_layer.0",
    "res_conv1": "res_layer.1",
    "res_prelu": "res_layer.2",
    "res_conv2": "res_layer.3",
    "res_bn2": "res_layer.4",
    "se_fc1": "res_layer.5.fc1",
    "se_fc2": "res_layer.5.fc2",
    "shortcut_conv": "shortcut_layer.0",
    "shortcut_bn": "shortcut_layer.1",
}
_MFN_PARTS = {"expand": "conv", "dw": "conv_dw", "project": "project"}


def torch_module_name(layer_name, layout, mobilefacenet_stages=None):
    """The torch module path of a ferzoo backbone layer, or None."""
    if layout in ("resnet", "cadene_senet"):
        return _resnet_module(layer_name, layout == "cadene_senet")
    if layout == "iresnet":
        return _iresnet_module(layer_name)
    if layout == "mobilefacenet":
        return _mobilefacenet_module(layer_name, mobilefacenet_stages)
    raise ValueError(
        f"`layout` must be one of {LAYOUTS}. Received: layout={layout}"
    )


def _resnet_module(layer_name, cadene):
    stem = {"conv1_conv": "conv1", "conv1_bn": "bn1"}
    if layer_name in stem:
        return ("layer0." if cadene else "") + stem[layer_name]
    m = re.fullmatch(r"layer(\d+)_(\d+)_(.+)", layer_name)
    if not m:
        return None
    se = "se_module" if cadene else "se"
    parts = {**_RESNET_PARTS, "se_fc1": f"{se}.fc1", "se_fc2": f"{se}.fc2"}
    part = parts.get(m.group(3), m.group(3))
    return f"layer{m.group(1)}.{m.group(2)}.{part}"


def _iresnet_module(layer_name):
    m = re.fullmatch(r"input_layer_(conv|bn|prelu)", layer_name)
    if m:
        return "input_layer." + _IRESNET_STEM[m.group(1)]
    m = re.fullmatch(r"body_(\d+)_(.+)", layer_name)
    part = _IRESNET_PARTS.get(m.group(2)) if m else None
    return None if part is None else f"body.{m.group(1)}.{part}"


def _mobilefacenet_module(layer_name, stages):
    m = re.fullmatch(r"(conv1|conv2_dw|conv_6_sep)_(conv|bn|prelu)", layer_name)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    m = re.fullmatch(
        r"stage(\d+)_(\d+)_(expand|dw|project)_(conv|bn|prelu)", layer_name
    )
    if not m or stages is None:
        return None
    stage, block = int(m.group(1)) - 1, int(m.group(2))
    try:
        module = stages[stage][block]
    except IndexError:
        return None
    return f"{module}.{_MFN_PARTS[m.group(3)]}.{m.group(4)}"


def short_names(names, limit=_MAX_LISTED):
    names = list(names)
    text = ", ".join(names[:limit])
    if len(names) > limit:
        text += f", ... ({len(names) - limit} more)"
    return text
