"""What every export module shares: format names, file names, metadata.

`ferzoo.deploy` re-exports all of it; the format modules (`onnx`,
`litert`, `tfjs`, `face_nets`) import it from here, so that none of them
imports the package that imports them.
"""

import contextlib
import os
import pathlib
import tempfile

from ferzoo.version import __version__

FORMATS = ("onnx", "litert", "tfjs")
MODEL_FILES = {
    "onnx": "model.onnx",
    "litert": "model.tflite",
    "tfjs": "model.json",
}
LABELS_FILE = "labels.txt"
# The metadata key (ONNX metadata_props, LiteRT metadata name, TF.js
# userDefinedMetadata key) under which ferzoo's JSON metadata is stored.
METADATA_KEY = "ferzoo"
# Predict's face nets, written beside ONNX / LiteRT exports
# (`ferzoo.deploy.face_nets`; not imported here: it imports TensorFlow).
FACE_NET_FILES = {
    "onnx": {"detector": "detector.onnx", "landmarks": "landmarks.onnx"},
    "litert": {"detector": "detector.tflite", "landmarks": "landmarks.tflite"},
}


def deploy_metadata(
    fmt,
    class_names,
    image_size,
    grayscale=None,
    face_nets=False,
    test_time_flip=False,
):
    """The metadata every export carries (a JSON-able dict).

    With `face_nets` (ONNX and LiteRT), `face_nets` names the files of
    predict's detector and landmark nets written beside the model.
    `test_time_flip`: the export's probabilities are the mean of each
    image's and its mirror image's (the graph flips).
    """
    dtype = "int32" if fmt == "tfjs" else "uint8"
    meta = {
        "ferzoo_version": __version__,
        "format": fmt,
        "class_names": [str(n) for n in class_names],
        "image_size": [int(image_size[0]), int(image_size[1])],
        "grayscale": None if grayscale is None else bool(grayscale),
        "input": {
            "name": "images",
            "dtype": dtype,
            "shape": [None, None, None, 3],
            "description": "RGB pixels 0-255, any height and width",
        },
        "output": {
            "name": "probabilities",
            "shape": [None, len(class_names)],
        },
        "resize": "bilinear with antialiasing to image_size, inside",
        "test_time_flip": bool(test_time_flip),
    }
    if face_nets and fmt in FACE_NET_FILES:
        meta["face_nets"] = dict(FACE_NET_FILES[fmt])
    return meta


@contextlib.contextmanager
def test_time_flip_as(model, value):
    """`model.test_time_flip` set to `value` inside the block (`None`:
    the model's own), restored after it (the exports use it)."""
    before = model.test_time_flip
    if value is not None:
        model.test_time_flip = bool(value)
    try:
        yield model
    finally:
        if model.test_time_flip != before:
            model.test_time_flip = before


def write_atomic(path, data):
    """Write bytes or text to `path` through a temporary file beside it."""
    path = pathlib.Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
