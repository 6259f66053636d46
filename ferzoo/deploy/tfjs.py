"""Write the deploy function as a TF.js graph model (no tensorflowjs).

A TF.js graph model is `model.json` (`format: "graph-model"`, the
frozen `GraphDef` as protobuf JSON in `modelTopology`, a `signature`, a
`weightsManifest`) and binary shards holding the graph's constants.
This writer freezes the function's variables into constants, moves every
`Const` node's tensor into the shards (the node stays, with dtype and
shape, as TF.js expects) and writes the rest of the graph as it is: no
op is renamed or fused, so the graph holds only ops that TF.js runs
(`Conv2D`, `BiasAdd`, `MatMul`, `BatchMatMulV2`, `Range`, ...; the
parity test runs it in TF.js). Class names and the rest of the metadata
go into `userDefinedMetadata.ferzoo` (`model.metadata` in TF.js).

Why not the `tensorflowjs` package: it pins old versions of TensorFlow's
own dependencies and of jax/flax, which do not install beside ferzoo's
(docs/export.md).
"""

import json

import numpy as np
import tensorflow as tf

from ferzoo.deploy.common import METADATA_KEY
from ferzoo.deploy.common import MODEL_FILES
from ferzoo.deploy.common import write_atomic
from ferzoo.deploy.graph import frozen_graph_def
from ferzoo.version import __version__

SHARD_BYTES = 4 * 1024 * 1024  # the tensorflowjs converter's default
# TensorProto fields that hold values (cleared once moved to a shard).
VALUE_FIELDS = (
    "tensor_content",
    "bool_val",
    "dcomplex_val",
    "double_val",
    "float_val",
    "half_val",
    "int64_val",
    "int_val",
    "resource_handle_val",
    "scomplex_val",
    "string_val",
    "uint32_val",
    "uint64_val",
    "variant_val",
)


def write_graph_model(function, folder, meta, shard_bytes=SHARD_BYTES):
    """Write `model.json` and its shards into `folder`; return the json."""
    from google.protobuf import json_format

    frozen, graph_def = frozen_graph_def(function)
    specs, chunks = [], []
    for node in graph_def.node:
        if node.op != "Const":
            continue
        spec, data = _move_constant(node)
        specs.append(spec)
        chunks.append(data)
    data = b"".join(chunks)
    count = max(1, -(-len(data) // shard_bytes))
    paths = [f"group1-shard{i + 1}of{count}.bin" for i in range(count)]
    for i, name in enumerate(paths):
        write_atomic(
            folder / name, data[i * shard_bytes : (i + 1) * shard_bytes]
        )
    (output,) = frozen.outputs
    num_classes = len(meta["class_names"])
    model_json = {
        "format": "graph-model",
        "generatedBy": tf.__version__,
        "convertedBy": f"ferzoo {__version__}",
        "signature": {
            "inputs": {
                "images": _tensor_info("images:0", "DT_INT32", [-1] * 3 + [3])
            },
            "outputs": {
                "probabilities": _tensor_info(
                    output.name, "DT_FLOAT", [-1, num_classes]
                )
            },
        },
        "userDefinedMetadata": {METADATA_KEY: meta},
        "modelTopology": json_format.MessageToDict(graph_def),
        "weightsManifest": [{"paths": paths, "weights": specs}],
    }
    return write_atomic(
        folder / MODEL_FILES["tfjs"], json.dumps(model_json, indent=None)
    )


def _tensor_info(name, dtype, shape):
    dims = [{"size": str(d)} for d in shape]
    return {"name": name, "dtype": dtype, "tensorShape": {"dim": dims}}


def _move_constant(node):
    """`(weight spec, bytes)` of a `Const` node, whose value is cleared."""
    tensor = node.attr["value"].tensor
    value = tf.make_ndarray(tensor)
    if value.dtype == np.int64:
        if value.size and np.abs(value).max() >= 2**31:
            raise ValueError(
                f"Constant {node.name!r} holds int64 values beyond int32, "
                "which TF.js cannot represent."
            )
        value = value.astype(np.int32)
        node.attr["dtype"].type = tensor.dtype = tf.int32.as_datatype_enum
    dtypes = {
        np.dtype(np.float32): "float32",
        np.dtype(np.int32): "int32",
        np.dtype(np.bool_): "bool",
    }
    if value.dtype not in dtypes:
        raise ValueError(
            f"Constant {node.name!r} has dtype {value.dtype}, which the "
            "TF.js graph-model writer does not support."
        )
    for field in VALUE_FIELDS:
        tensor.ClearField(field)
    spec = {
        "name": node.name,
        "shape": [int(d) for d in value.shape],
        "dtype": dtypes[value.dtype],
    }
    return spec, value.astype(value.dtype.newbyteorder("<")).tobytes()
