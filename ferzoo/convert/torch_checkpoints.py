"""PyTorch checkpoints -> ferzoo backbones and backbone presets.

The mapping works on a flat dict `{torch name: NumPy array}`; torch is
needed only to read `.pth` / `.pth.tar` files (`pip install ferzoo[torch]`).
A `.npz` file whose keys are the torch names (a `/` in a key nests it, so
`state_dict/module.conv1.weight` is `ckpt["state_dict"]["module.conv1.weight"]`)
converts without torch. The layouts (`LAYOUTS`: torchvision / timm
ResNet, Cadene's SE-ResNet, insightface IR, MobileFaceNet) are described
in `ferzoo.convert.torch_layouts`.

Every backbone tensor must be in the checkpoint and every checkpoint
tensor must be a backbone tensor or part of the layout's head (dropped and
listed in the preset's metadata); otherwise `ConversionError` lists the
missing and unknown keys. A tensor of the wrong shape names the ferzoo
layer and the torch key.
"""

import hashlib
import pathlib
import zipfile

import numpy as np

from ferzoo.convert.torch_layouts import DEFAULT_IMAGE_SHAPES
from ferzoo.convert.torch_layouts import HEAD_PREFIXES
from ferzoo.convert.torch_layouts import LAYOUTS
from ferzoo.convert.torch_layouts import ConversionError
from ferzoo.convert.torch_layouts import backbone_config
from ferzoo.convert.torch_layouts import detect_layout
from ferzoo.convert.torch_layouts import mobilefacenet_modules
from ferzoo.convert.torch_layouts import short_names
from ferzoo.convert.torch_layouts import torch_module_name

# Keys under which training scripts nest the state dict, tried in order.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net")


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
                    f"top-level keys: {short_names(sorted(checkpoint))}.",
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
            f"entries of {where} are not tensors: {short_names(sorted(bad))}. "
            "Pass the key of the state dict (--key).",
            source,
        )
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state, "/".join(path)


# --- Conversion ---------------------------------------------------------


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
    plan, expected = _plan(backbone, state_dict, layout, source)
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
        parts = [
            f"{what} keys ({len(keys)}): {short_names(keys)}"
            for what, keys in (("missing", missing), ("unknown", unknown))
            if keys
        ]
        raise ConversionError(
            f"the checkpoint does not match a {layout} "
            f"{cls.__name__}({_config_text(config)}): " + "; ".join(parts),
            source,
        )
    for layer_name, key, transform, variable in plan:
        _assign(variable, state_dict[key], transform, layer_name, key, source)
    info = {
        "layout": layout,
        "config": config,
        "num_tensors": len(plan),
        "dropped": dropped,
    }
    return backbone, info


def _plan(backbone, state_dict, layout, source):
    """Which torch tensor fills which ferzoo variable.

    Returns `(plan, expected)`: `[(layer name, torch key, transform,
    variable)]` and the set of torch keys the backbone reads.
    """
    import keras

    stages = (
        mobilefacenet_modules(state_dict) if layout == "mobilefacenet" else None
    )
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
        if isinstance(layer, keras.layers.BatchNormalization):
            expected.add(f"{module}.num_batches_tracked")
    return plan, expected


def _assign(variable, tensor, transform, layer_name, key, source):
    """Copy one torch tensor into a ferzoo variable, in Keras' layout."""
    value = np.asarray(tensor, dtype="float32")
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
            f"(torch `{key}`, shape {tuple(tensor.shape)}): "
            f"the layer's `{variable.path.split('/')[-1]}` needs "
            f"{tuple(variable.shape)} (after the layout transform), got "
            f"{tuple(value.shape)}.",
            source,
        )
    variable.assign(value)


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
