"""PyTorch checkpoints -> ferzoo backbones and backbone presets.

The mapping works on a flat dict `{torch name: NumPy array}`; torch is
needed only to read `.pth` / `.pth.tar` files (`pip install ferzoo[torch]`).
A `.npz` file whose keys are the torch names (a `/` in a key nests it, so
`state_dict/module.conv1.weight` is `ckpt["state_dict"]["module.conv1.weight"]`)
converts without torch.

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
  `conv_6_dw` / `linear` / `bn`) -> `MobileFaceNetBackbone`.

Every backbone tensor must be in the checkpoint and every checkpoint
tensor must be a backbone tensor or part of the layout's head (dropped and
listed in the preset's metadata); otherwise `ConversionError` lists the
missing and unknown keys. A tensor of the wrong shape names the ferzoo
layer and the torch key.
"""

import hashlib
import pathlib
import re
import zipfile

import numpy as np

from ferzoo.errors import DataError

LAYOUTS = ("resnet", "cadene_senet", "iresnet", "mobilefacenet")

# Keys under which training scripts nest the state dict, tried in order.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net")

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


# --- Reading checkpoints ---------------------------------------------------


def load_checkpoint(path, trust_pickle=False):
    """Read a checkpoint file into nested dicts of NumPy arrays.

    Args:
        path: str or path. A `.pth` / `.pth.tar` / `.pt` file (needs torch)
            or a `.npz` file keyed by torch names (`/` nests).
        trust_pickle: bool. Let `torch.load` unpickle arbitrary objects
            (`weights_only=False`), for old checkpoints that store e.g. an
            argparse namespace. Only for files you trust. Defaults to
            `False`.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file.")
    if path.suffix == ".npz":
        nested = {}
        try:
            with np.load(path, allow_pickle=False) as data:
                for key in data.files:
                    *parents, leaf = key.split("/")
                    node = nested
                    for part in parents:
                        node = node.setdefault(part, {})
                    node[leaf] = data[key]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            # e.g. object arrays (pickles, refused) or a truncated archive.
            raise ConversionError(
                f"cannot read this .npz as arrays of numbers: {e}", path
            ) from None
        return nested
    try:
        import torch
    except ImportError as e:
        raise ConversionError(
            "reading a PyTorch checkpoint needs torch: "
            "`pip install ferzoo[torch]` (or save the state dict as .npz).",
            path,
        ) from e
    try:
        obj = torch.load(
            path, map_location="cpu", weights_only=not trust_pickle
        )
    except Exception as e:  # torch raises many kinds here.
        hint = (
            ""
            if trust_pickle
            else " If the file holds other pickled objects and you trust "
            "it, pass trust_pickle=True (--trust-pickle)."
        )
        raise ConversionError(f"torch.load failed: {e}.{hint}", path) from e
    return _to_numpy(obj)


def _to_numpy(obj):
    if isinstance(obj, dict):
        return {str(k): _to_numpy(v) for k, v in obj.items()}
    if hasattr(obj, "detach") and hasattr(obj, "numpy"):
        return obj.detach().cpu().numpy()
    return obj


def find_state_dict(checkpoint, key=None, source=None):
    """The flat `{name: array}` state dict inside a loaded checkpoint.

    Follows `key` (a `/`-separated path such as `"state_dict"`) if given,
    else the first of `STATE_DICT_KEYS` that holds a dict, else takes the
    checkpoint itself. Strips a `module.` prefix (`DataParallel`) that all
    keys share. Non-array entries (epoch counters, ...) are not allowed
    in the state dict itself.

    Returns:
        `(state_dict, path)`: the dict and the key path it was found at
        (`""` for the top level).
    """
    if not isinstance(checkpoint, dict):
        raise ConversionError(
            f"the checkpoint is a {type(checkpoint).__name__}, not a dict "
            "of tensors (save `model.state_dict()`, not the model).",
            source,
        )
    node, path = checkpoint, []
    if key is not None:
        for part in [p for p in str(key).split("/") if p]:
            if not isinstance(node, dict) or part not in node:
                raise ConversionError(
                    f"no entry {'/'.join(path + [part])!r} in the checkpoint; "
                    f"top-level keys: {_short(sorted(checkpoint))}.",
                    source,
                )
            node, path = node[part], path + [part]
    else:
        while True:
            inner = [
                k for k in STATE_DICT_KEYS if isinstance(node.get(k), dict)
            ]
            if not inner:
                break
            node, path = node[inner[0]], path + [inner[0]]
    if not isinstance(node, dict):
        raise ConversionError(
            f"entry {'/'.join(path)!r} is not a dict of tensors.", source
        )
    state = {}
    bad = []
    for name, value in node.items():
        if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
            state[name] = value
        else:
            bad.append(name)
    if bad:
        where = "/".join(path) or "the top level"
        raise ConversionError(
            f"entries of {where} are not tensors: {_short(sorted(bad))}. "
            "Pass the key of the state dict (--key).",
            source,
        )
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state, "/".join(path)


# --- Layouts ---------------------------------------------------------------


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
        f"{', '.join(LAYOUTS)}); first keys: {_short(sorted(keys), 12)}. "
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


def _mobilefacenet_modules(sd):
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
    for modules in _mobilefacenet_modules(sd):
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


def torch_module_name(layer_name, layout, mobilefacenet_stages=None):
    """The torch module path of a ferzoo backbone layer, or None."""
    if layout in ("resnet", "cadene_senet"):
        cadene = layout == "cadene_senet"
        stem = {"conv1_conv": "conv1", "conv1_bn": "bn1"}
        if layer_name in stem:
            return ("layer0." if cadene else "") + stem[layer_name]
        m = re.fullmatch(r"layer(\d+)_(\d+)_(.+)", layer_name)
        if not m:
            return None
        rest = {
            "downsample_conv": "downsample.0",
            "downsample_bn": "downsample.1",
            "se_fc1": "se_module.fc1" if cadene else "se.fc1",
            "se_fc2": "se_module.fc2" if cadene else "se.fc2",
        }.get(m.group(3), m.group(3))
        return f"layer{m.group(1)}.{m.group(2)}.{rest}"
    if layout == "iresnet":
        m = re.fullmatch(r"input_layer_(conv|bn|prelu)", layer_name)
        if m:
            return (
                "input_layer."
                + {"conv": "0", "bn": "1", "prelu": "2"}[m.group(1)]
            )
        m = re.fullmatch(r"body_(\d+)_(.+)", layer_name)
        if not m:
            return None
        rest = {
            "res_bn1": "res_layer.0",
            "res_conv1": "res_layer.1",
            "res_prelu": "res_layer.2",
            "res_conv2": "res_layer.3",
            "res_bn2": "res_layer.4",
            "se_fc1": "res_layer.5.fc1",
            "se_fc2": "res_layer.5.fc2",
            "shortcut_conv": "shortcut_layer.0",
            "shortcut_bn": "shortcut_layer.1",
        }.get(m.group(2))
        return None if rest is None else f"body.{m.group(1)}.{rest}"
    if layout == "mobilefacenet":
        m = re.fullmatch(
            r"(conv1|conv2_dw|conv_6_sep)_(conv|bn|prelu)", layer_name
        )
        if m:
            return f"{m.group(1)}.{m.group(2)}"
        m = re.fullmatch(
            r"stage(\d+)_(\d+)_(expand|dw|project)_(conv|bn|prelu)", layer_name
        )
        if not m or mobilefacenet_stages is None:
            return None
        stage, block = int(m.group(1)) - 1, int(m.group(2))
        part = {"expand": "conv", "dw": "conv_dw", "project": "project"}
        try:
            module = mobilefacenet_stages[stage][block]
        except IndexError:
            return None
        return f"{module}.{part[m.group(3)]}.{m.group(4)}"
    raise ValueError(
        f"`layout` must be one of {LAYOUTS}. Received: layout={layout}"
    )


# --- Conversion ------------------------------------------------------------


def _layer_tensors(layer):
    """`[(torch suffix, transform)]` for a layer's weights, in order."""
    import keras

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        out = [("weight", lambda w: w.transpose(2, 3, 0, 1))]
        return out + ([("bias", None)] if layer.use_bias else [])
    if isinstance(layer, keras.layers.Conv2D):
        out = [("weight", lambda w: w.transpose(2, 3, 1, 0))]
        return out + ([("bias", None)] if layer.use_bias else [])
    if isinstance(layer, keras.layers.BatchNormalization):
        return [
            ("weight", None),
            ("bias", None),
            ("running_mean", None),
            ("running_var", None),
        ]
    if isinstance(layer, keras.layers.PReLU):
        return [("weight", "prelu")]
    raise ConversionError(
        f"ferzoo layer `{layer.name}` ({type(layer).__name__}) has no "
        "PyTorch mapping."
    )


def _short(names, limit=_MAX_LISTED):
    names = list(names)
    text = ", ".join(names[:limit])
    if len(names) > limit:
        text += f", ... ({len(names) - limit} more)"
    return text


def convert_state_dict(state_dict, layout=None, image_shape=None, source=None):
    """Build a ferzoo backbone holding a PyTorch state dict's weights.

    Args:
        state_dict: dict. `{torch name: NumPy array}` without a `module.`
            prefix (see `find_state_dict`).
        layout: str or None. One of `LAYOUTS`; `None` detects it.
        image_shape: tuple or None. Input shape of the backbone; defaults
            to the layout's usual size (`DEFAULT_IMAGE_SHAPES`).
        source: str or None. Named in error messages.

    Returns:
        `(backbone, info)`; `info` has `layout`, `config`, `num_tensors`
        (converted) and `dropped` (head keys, sorted).
    """
    try:
        layout = layout or detect_layout(state_dict)
        if layout not in LAYOUTS:
            raise ValueError(
                f"`layout` must be one of {LAYOUTS}. Received: layout={layout}"
            )
        cls, config = backbone_config(state_dict, layout)
    except ConversionError as e:
        raise ConversionError(str(e), source) from None
    config["image_shape"] = tuple(image_shape or DEFAULT_IMAGE_SHAPES[layout])
    backbone = cls(**config)
    stages = (
        _mobilefacenet_modules(state_dict)
        if layout == "mobilefacenet"
        else None
    )

    # Which torch tensor fills which ferzoo variable.
    plan, expected = [], set()
    for layer in backbone.layers:
        if not layer.weights:
            continue
        module = torch_module_name(layer.name, layout, stages)
        if module is None:
            raise ConversionError(
                f"ferzoo layer `{layer.name}` has no {layout} counterpart.",
                source,
            )
        tensors = _layer_tensors(layer)
        if len(tensors) != len(layer.weights):
            raise ConversionError(
                f"ferzoo layer `{layer.name}` has {len(layer.weights)} "
                f"weights, the {layout} mapping {len(tensors)}.",
                source,
            )
        for (suffix, transform), variable in zip(tensors, layer.weights):
            key = f"{module}.{suffix}"
            expected.add(key)
            plan.append((layer.name, key, transform, variable))
        if isinstance(layer, _bn_class()):
            expected.add(f"{module}.num_batches_tracked")

    head = HEAD_PREFIXES[layout]
    dropped = sorted(
        k for k in state_dict if k not in expected and k.startswith(head)
    )
    unknown = sorted(set(state_dict) - expected - set(dropped))
    missing = sorted(
        k
        for k in expected - set(state_dict)
        if not k.endswith(".num_batches_tracked")
    )
    if unknown or missing:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_short(missing)}")
        if unknown:
            parts.append(f"unknown keys ({len(unknown)}): {_short(unknown)}")
        raise ConversionError(
            f"the checkpoint does not match a {layout} "
            f"{cls.__name__}({_config_text(config)}): " + "; ".join(parts),
            source,
        )

    for layer_name, key, transform, variable in plan:
        value = np.asarray(state_dict[key], dtype="float32")
        if transform == "prelu":
            # torch: one slope per channel (or one shared); keras: (1, 1, C).
            channels = variable.shape[-1]
            if value.shape in ((1,), (channels,)):
                value = np.broadcast_to(value, (channels,)).reshape(
                    tuple(variable.shape)
                )
        elif transform is not None and value.ndim == 4:
            value = transform(value)
        if tuple(value.shape) != tuple(variable.shape):
            raise ConversionError(
                f"shape mismatch at ferzoo layer `{layer_name}` "
                f"(torch `{key}`, shape {tuple(state_dict[key].shape)}): "
                f"the layer's `{variable.path.split('/')[-1]}` needs "
                f"{tuple(variable.shape)} (after the layout transform), got "
                f"{tuple(value.shape)}.",
                source,
            )
        variable.assign(value)
    info = {
        "layout": layout,
        "config": config,
        "num_tensors": len(plan),
        "dropped": dropped,
    }
    return backbone, info


def _bn_class():
    import keras

    return keras.layers.BatchNormalization


def _config_text(config):
    return ", ".join(
        f"{k}={v}" for k, v in config.items() if k != "image_shape"
    )


def convert_checkpoint(
    checkpoint,
    preset_dir,
    layout=None,
    image_shape=None,
    key=None,
    metadata=None,
    trust_pickle=False,
):
    """Convert a PyTorch checkpoint file into a ferzoo backbone preset.

    Writes `config.json`, `metadata.json` (with a `provenance` record:
    source file name, size and SHA-256, the state-dict key, layout,
    dropped head keys, plus anything in `metadata`) and
    `model.weights.h5`. Load the result with
    `ferzoo.backbones.Backbone.from_preset(preset_dir)`.

    Args:
        checkpoint: str or path. `.pth`, `.pth.tar`, `.pt` or `.npz`.
        preset_dir: str or path. The folder to write.
        layout: str or None. One of `LAYOUTS`; `None` detects it.
        image_shape: tuple or None. The backbone's input shape; defaults
            to the layout's usual size.
        key: str or None. Path of the state dict inside the checkpoint
            (e.g. `"state_dict"`); `None` looks for the usual keys.
        metadata: dict or None. Extra metadata (e.g. `description`,
            `license`, `training_data`, `source_url`, `paper`).
        trust_pickle: bool. See `load_checkpoint`.

    Returns:
        dict: the conversion info (`layout`, `config`, `num_tensors`,
        `dropped`, `preset_dir`, `parameter_count`).
    """
    from ferzoo import presets as preset_utils

    path = pathlib.Path(checkpoint)
    nested = load_checkpoint(path, trust_pickle=trust_pickle)
    state_dict, found_at = find_state_dict(nested, key, source=path)
    backbone, info = convert_state_dict(
        state_dict, layout, image_shape, source=path
    )
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    provenance = {
        "converted_from": path.name,
        "source_bytes": path.stat().st_size,
        "source_sha256": digest.hexdigest(),
        "state_dict_key": found_at,
        "layout": info["layout"],
        "converted_tensors": info["num_tensors"],
        "dropped_keys": info["dropped"],
        "converter": "ferzoo.convert.convert_checkpoint",
    }
    meta = {
        "description": (
            f"{type(backbone).__name__} converted from {path.name} "
            f"({info['layout']} layout)."
        ),
        "provenance": provenance,
    }
    extra = dict(metadata or {})
    meta["provenance"].update(extra.pop("provenance", {}))
    meta.update(extra)
    preset_utils.save_to_preset(backbone, preset_dir, meta)
    info["preset_dir"] = str(preset_dir)
    info["parameter_count"] = int(backbone.count_params())
    return info
