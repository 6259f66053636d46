"""Write the deploy function as a LiteRT (`.tflite`) model.

TensorFlow's converter (builtin ops only, float32) reads the function
with its variables frozen into constants (read from a SavedModel or a
concrete function that still holds Keras 3 variables, it wrote a model
without the weights: 56 kB, NaN outputs). The metadata goes into the
flatbuffer's `metadata` list under the name `ferzoo` (JSON bytes in a
buffer), which `ferzoo.deploy.runtimes` reads without TensorFlow; the
class names also go into `labels.txt` beside the model, one per line
(what LiteRT apps read).
"""

import json

import numpy as np
import tensorflow as tf

from ferzoo.deploy.common import LABELS_FILE
from ferzoo.deploy.common import METADATA_KEY
from ferzoo.deploy.common import MODEL_FILES
from ferzoo.deploy.common import write_atomic
from ferzoo.deploy.graph import frozen_graph_def


def write_litert(function, folder, meta, verbose=False, filename=None):
    frozen, _ = frozen_graph_def(function)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    flatbuffer = converter.convert()
    flatbuffer = add_metadata(flatbuffer, METADATA_KEY, json.dumps(meta))
    if "class_names" in meta:
        labels = "".join(f"{name}\n" for name in meta["class_names"])
        write_atomic(folder / LABELS_FILE, labels)
    filename = filename or MODEL_FILES["litert"]
    return write_atomic(folder / filename, flatbuffer)


def add_metadata(flatbuffer, name, text):
    """The `.tflite` bytes with a metadata entry `name` holding `text`."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(text.encode("utf-8"), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = [
        m for m in (model.metadata or []) if m.name != name.encode()
    ] + [entry]
    builder = flatbuffers.Builder(len(flatbuffer) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
