"""Read TF.js weights: a `*-weights_manifest.json` and its binary shards.

A TF.js weights manifest is a JSON list of groups; each group names its
shard files (`paths`, concatenated in order) and its tensors (`weights`,
read one after the other from the concatenated bytes). A tensor entry has
`name`, `shape`, `dtype` and optionally `quantization`
(`{"dtype": "uint8" | "uint16" | "float16", "scale", "min"}`): affine
quantised values decode as `q * scale + min` (TF.js `decodeWeights`),
float16 as themselves. Only NumPy is used: no tensorflowjs dependency.
"""

import json
import pathlib

import numpy as np

_PLAIN_DTYPES = {
    "float32": np.float32,
    "int32": np.int32,
    "bool": np.bool_,
    "uint8": np.uint8,
}
_QUANTIZED_DTYPES = {
    "uint8": np.uint8,
    "uint16": np.uint16,
    "float16": np.float16,
}


def read_tfjs_weights(manifest_path):
    """Read a TF.js weights manifest and its shards into NumPy arrays.

    Args:
        manifest_path: str or path. A `*-weights_manifest.json` file (or a
            `model.json` whose `weightsManifest` holds the groups); shard
            paths are relative to its folder.

    Returns:
        dict of name -> `np.ndarray`, in manifest order. Affine-quantised
        tensors (uint8 / uint16 with `scale` and `min`) are dequantised to
        float32 as `q * scale + min` (computed in float64, then rounded
        to float32, as TF.js does).

    Raises:
        ValueError: naming the manifest and the tensor or shard at fault
            (missing shard, unknown dtype, shard too short or too long).
    """
    path = pathlib.Path(manifest_path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}, line {e.lineno}: invalid JSON ({e.msg}).")
    if isinstance(manifest, dict):
        manifest = manifest.get("weightsManifest")
    if not isinstance(manifest, list):
        raise ValueError(
            f"{path}: expected a list of weight groups (or a model.json with "
            "`weightsManifest`)."
        )
    out = {}
    for g, group in enumerate(manifest):
        data = b""
        for shard in group.get("paths", []):
            shard_path = path.parent / shard
            if not shard_path.is_file():
                raise ValueError(
                    f"{path}: group {g} names shard {shard!r}, which does not "
                    f"exist at {shard_path}."
                )
            data += shard_path.read_bytes()
        offset = 0
        for entry in group.get("weights", []):
            array, size = _decode(entry, data, offset, path)
            if entry["name"] in out:
                raise ValueError(f"{path}: tensor {entry['name']!r} twice.")
            out[entry["name"]] = array
            offset += size
        if offset != len(data):
            raise ValueError(
                f"{path}: group {g} uses {offset} bytes but its shards "
                f"hold {len(data)}."
            )
    return out


def _decode(entry, data, offset, path):
    name = entry.get("name", "?")
    shape = [int(d) for d in entry.get("shape", [])]
    count = int(np.prod(shape, dtype=np.int64))
    quant = entry.get("quantization")
    if quant:
        dtype = _QUANTIZED_DTYPES.get(quant.get("dtype"))
        field = f"quantization.dtype={quant.get('dtype')!r}"
    else:
        dtype = _PLAIN_DTYPES.get(entry.get("dtype"))
        field = f"dtype={entry.get('dtype')!r}"
    if dtype is None:
        raise ValueError(f"{path}: tensor {name!r}: unsupported {field}.")
    size = count * np.dtype(dtype).itemsize
    if offset + size > len(data):
        raise ValueError(
            f"{path}: tensor {name!r} needs bytes {offset}..{offset + size} "
            f"but the shards hold {len(data)}."
        )
    raw = np.frombuffer(
        data,
        dtype=np.dtype(dtype).newbyteorder("<"),
        count=count,
        offset=offset,
    )
    if quant and quant["dtype"] != "float16":
        if "scale" not in quant or "min" not in quant:
            raise ValueError(
                f"{path}: tensor {name!r}: affine quantization needs `scale` "
                f"and `min`. Received: quantization={quant}"
            )
        # TF.js computes in float64 and stores into a Float32Array.
        values = raw.astype(np.float64) * float(quant["scale"])
        values += float(quant["min"])
        if entry.get("dtype") == "int32":
            array = np.round(values).astype(np.int32)
        else:
            array = values.astype(np.float32)
    elif quant:
        array = raw.astype(np.float32)
    else:
        array = raw.astype(dtype)
    return array.reshape(shape), size


def fold_dlib_resnet_weights(tensors):
    """face-api's recognition-net tensors -> `DlibResNetBackbone` weights.

    Each dlib conv + affine ("scale") pair `(conv(x, W) + b) * s + t`
    folds, in float64, into one conv with kernel `W * s` and bias
    `b * s + t`.

    Args:
        tensors: dict of name -> array, as `read_tfjs_weights` returns for
            `face_recognition_model-weights_manifest.json`.

    Returns:
        dict of ferzoo layer name -> `[kernel, bias]` (float32), and the
        unused `fc` (256 x 128 descriptor projection) under `"fc"`.

    Raises:
        ValueError: listing missing or unused tensor names.
    """
    from ferzoo.backbones.dlib_resnet import DLIB_RESNET29_BLOCKS

    prefixes = {"conv32_down": "conv32_down"}
    for name, _, _ in DLIB_RESNET29_BLOCKS:
        for k in (1, 2):
            prefixes[f"{name}_conv{k}"] = f"{name}/conv{k}"
    wanted = ["fc"]
    for prefix in prefixes.values():
        wanted += [
            f"{prefix}/conv/filters",
            f"{prefix}/conv/bias",
            f"{prefix}/scale/weights",
            f"{prefix}/scale/biases",
        ]
    _check_names(tensors, wanted, "face_recognition_model")
    out = {}
    for layer, prefix in prefixes.items():
        kernel = tensors[f"{prefix}/conv/filters"].astype(np.float64)
        bias = tensors[f"{prefix}/conv/bias"].astype(np.float64)
        scale = tensors[f"{prefix}/scale/weights"].astype(np.float64)
        shift = tensors[f"{prefix}/scale/biases"].astype(np.float64)
        out[layer] = [
            (kernel * scale).astype(np.float32),
            (bias * scale + shift).astype(np.float32),
        ]
    out["fc"] = [tensors["fc"].astype(np.float32)]
    return out


def face_feature_extractor_weights(tensors):
    """face-api's `FaceFeatureExtractor` tensors -> `FaceLandmark68Backbone`.

    Args:
        tensors: dict of name -> array from the landmark or expression
            manifest (`dense{0..3}/conv{0..3}/...` and `fc/weights`,
            `fc/bias`).

    Returns:
        dict of ferzoo layer name -> weights list (`dense0_conv0`:
        `[kernel, bias]`, the others `[depthwise, pointwise, bias]`), and
        the classifier under `"fc"`: `[weights (256, n), bias (n,)]`.

    Raises:
        ValueError: listing missing or unused tensor names.
    """
    wanted = [
        "fc/weights",
        "fc/bias",
        "dense0/conv0/filters",
        "dense0/conv0/bias",
    ]
    out = {}
    for d in range(4):
        for k in range(4):
            prefix = f"dense{d}/conv{k}"
            if d == 0 and k == 0:
                out["dense0_conv0"] = [
                    tensors.get(f"{prefix}/filters"),
                    tensors.get(f"{prefix}/bias"),
                ]
                continue
            names = [
                f"{prefix}/depthwise_filter",
                f"{prefix}/pointwise_filter",
                f"{prefix}/bias",
            ]
            wanted += names
            out[f"dense{d}_conv{k}"] = [tensors.get(n) for n in names]
    _check_names(tensors, wanted, "face feature extractor")
    out["fc"] = [tensors["fc/weights"], tensors["fc/bias"]]
    return {k: [np.asarray(w, np.float32) for w in v] for k, v in out.items()}


# Graph constants of face-api's SSD manifest that its code does not read
# (the exporter's shapes and slices); the preprocessing constants are
# checked against the normalisation the port uses.
SSD_UNUSED_TENSORS = (
    "Prediction/BoxPredictor_0/stack_1/2",
    "Postprocessor/Slice/begin",
    "Postprocessor/Slice/size",
    "Preprocessor/ResizeImage/size",
    "concat_1/axis",
    "Prediction/BoxPredictor_0/strided_slice/stack",
    "Prediction/BoxPredictor_0/strided_slice/stack_1",
    "Postprocessor/stack/1",
    "Prediction/BoxPredictor_0/stack/3",
    *(f"Prediction/BoxPredictor_{k}/stack_1/1" for k in range(6)),
)


def ssd_mobilenetv1_weights(tensors):
    """face-api's `ssd_mobilenetv1_model` tensors -> ferzoo layer weights.

    Maps the TF object-detection names (`MobilenetV1/Conv2d_{i}_...`,
    `Prediction/Conv2d_{k}_pointwise/...`,
    `Prediction/BoxPredictor_{k}/{BoxEncoding,Class}Predictor/...`,
    `Output/extra_dim`) onto the layers of
    `ferzoo.predict.nets.SSDMobileNetV1FaceDetector` (face-api's
    `extractParamsFromWeightMap.ts`). Batch norms keep their four
    vectors; the anchors become the decoder's weight `(5118, 4)`.

    Returns:
        dict of ferzoo layer name -> weights list.

    Raises:
        ValueError: listing missing or unexpected tensor names, or when
            the preprocessing constants are not face-api's `x / 127.5 - 1`
            (`Preprocessor/mul/x` = 2/255, `Preprocessor/sub/y` = 1).
    """
    out = {}
    wanted = ["Output/extra_dim", "Preprocessor/mul/x", "Preprocessor/sub/y"]

    def take(layer, *names):
        wanted.extend(names)
        out[layer] = [tensors.get(n) for n in names]

    def pointwise(layer, prefix):
        take(layer, f"{prefix}/weights", f"{prefix}/convolution_bn_offset")

    pointwise("mobilenet_conv0", "MobilenetV1/Conv2d_0_pointwise")
    for i in range(1, 14):
        prefix = f"MobilenetV1/Conv2d_{i}_depthwise"
        take(f"mobilenet_conv{i}_depthwise", f"{prefix}/depthwise_weights")
        take(
            f"mobilenet_conv{i}_bn",
            *(
                f"{prefix}/BatchNorm/{v}"
                for v in ("gamma", "beta", "moving_mean", "moving_variance")
            ),
        )
        pointwise(
            f"mobilenet_conv{i}_pointwise", f"MobilenetV1/Conv2d_{i}_pointwise"
        )
    for k in range(8):
        pointwise(f"prediction_conv{k}", f"Prediction/Conv2d_{k}_pointwise")
    for k in range(6):
        for kind, tf_name in (
            ("box", "BoxEncodingPredictor"),
            ("class", "ClassPredictor"),
        ):
            prefix = f"Prediction/BoxPredictor_{k}/{tf_name}"
            take(f"box_predictor{k}_{kind}", f"{prefix}/weights",
                 f"{prefix}/biases")  # fmt: skip
    present = {n: v for n, v in tensors.items() if n not in SSD_UNUSED_TENSORS}
    _check_names(present, wanted, "ssd_mobilenetv1_model")
    scale = float(np.asarray(tensors["Preprocessor/mul/x"]))
    shift = float(np.asarray(tensors["Preprocessor/sub/y"]))
    if abs(scale - 2 / 255) > 1e-4 or abs(shift - 1) > 1e-4:
        raise ValueError(
            "ssd_mobilenetv1_model: preprocessing is not x * 2/255 - 1. "
            f"Received: mul={scale}, sub={shift}"
        )
    out["decode"] = [tensors["Output/extra_dim"].reshape(-1, 4)]
    return {k: [np.asarray(w, np.float32) for w in v] for k, v in out.items()}


def set_layer_weights(model, weights):
    """`model.get_layer(name).set_weights(value)` for each item but `fc`.

    Raises:
        ValueError: naming the layer whose weight shapes differ, or the
            layers of `model` with weights that `weights` does not cover.
    """
    covered = set()
    for name, values in weights.items():
        if name == "fc":
            continue
        layer = model.get_layer(name)
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(v.shape) for v in values]
        if expected != got:
            raise ValueError(
                f"Layer {name!r}: converted weights have shapes {got}, the "
                f"layer expects {expected}."
            )
        layer.set_weights(values)
        covered.add(name)
    missing = [
        layer.name
        for layer in model.layers
        if layer.weights and layer.name not in covered
    ]
    if missing:
        raise ValueError(f"No converted weights for layers: {missing}.")


def _check_names(tensors, wanted, what):
    missing = sorted(set(wanted) - set(tensors))
    unused = sorted(set(tensors) - set(wanted))
    if missing or unused:
        raise ValueError(
            f"{what}: tensor names do not match face-api's layout. "
            f"Missing: {missing or 'none'}. Unexpected: {unused or 'none'}."
        )


BLAZEFACE_HEADS = {
    # graph output -> ferzoo layer (signature shapes of blazeface.json)
    "Identity": "classifier16",  # (1, 512, 1)
    "Identity_2": "regressor16",  # (1, 512, 16)
    "Identity_1": "classifier8",  # (1, 384, 1)
    "Identity_3": "regressor8",  # (1, 384, 16)
}


def blazeface_weights(model_json, tensors):
    """A TF.js BlazeFace graph model's convs -> ferzoo layer weights.

    `model_json` is the parsed `blazeface.json` (a frozen Keras graph of
    `_FusedConv2D` / `DepthwiseConv2dNative` nodes in topological order),
    `tensors` its weights (`read_tfjs_weights`). The convs that do not
    feed an output are, in graph order, `conv0`, then per block
    `block{i}_depthwise` and `block{i}_pointwise`; the four convs that
    feed the outputs (through a Reshape) are the heads of
    `BLAZEFACE_HEADS`. The layers are those of
    `ferzoo.predict.blazeface.BlazeFaceNet`.

    Returns:
        dict of ferzoo layer name -> weights list (kernel[, bias]).

    Raises:
        ValueError: when a node's op, fused ops or outputs are not those
            of MediaPipe's BlazeFace graph.
    """
    nodes = model_json["modelTopology"]["node"]
    by_name = {n["name"]: n for n in nodes}
    heads = {}
    for output, layer in BLAZEFACE_HEADS.items():
        node = by_name.get(output)
        while node is not None and node["op"] in ("Identity", "Reshape"):
            node = by_name.get(node["input"][0])
        if node is None or node["op"] != "_FusedConv2D":
            raise ValueError(f"blazeface: output {output!r} is not a conv.")
        heads[node["name"]] = layer
    out, block = {}, 0
    for node in nodes:
        if node["op"] not in ("_FusedConv2D", "DepthwiseConv2dNative"):
            continue
        weights = [np.asarray(tensors[n], np.float32)
                   for n in node["input"][1:]]  # fmt: skip
        if node["op"] == "DepthwiseConv2dNative":
            block += 1
            out[f"block{block}_depthwise"] = weights
        elif node["name"] in heads:
            out[heads[node["name"]]] = weights
        else:
            out[f"block{block}_pointwise" if block else "conv0"] = weights
    return out
