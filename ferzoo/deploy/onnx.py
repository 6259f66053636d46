"""Write the deploy function as an ONNX model (needs `tf2onnx`).

The class names and the rest of `deploy_metadata` go into the model's
`metadata_props`: `ferzoo` (the whole metadata as JSON) and
`class_names` (a JSON list), which onnxruntime returns in
`session.get_modelmeta().custom_metadata_map`.
"""

import json
import logging

from ferzoo.deploy.common import METADATA_KEY
from ferzoo.deploy.common import MODEL_FILES
from ferzoo.deploy.common import write_atomic

OPSET = 17


def write_onnx(function, folder, meta, verbose=False, filename=None):
    try:
        import tf2onnx
    except ImportError as e:
        raise ImportError(
            "ONNX export needs tf2onnx: pip install 'ferzoo[export]' "
            "(or pip install tf2onnx onnx)."
        ) from e
    if not verbose:
        tf2onnx.logging.set_level(logging.ERROR)
    proto, _ = tf2onnx.convert.from_function(
        function, input_signature=function.input_signature, opset=OPSET
    )
    proto.producer_name = "ferzoo (tf2onnx)"
    proto.doc_string = meta.get(
        "description",
        "ferzoo expression classifier: images (batch, H, W, 3) uint8 RGB "
        "-> probabilities (batch, classes)",
    )
    props = {METADATA_KEY: json.dumps(meta)}
    if "class_names" in meta:
        props["class_names"] = json.dumps(meta["class_names"])
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    filename = filename or MODEL_FILES["onnx"]
    return write_atomic(folder / filename, proto.SerializeToString())
