"""Export ferzoo models for light runtimes: ONNX, LiteRT and TF.js.

Each export holds one function, the same on every format:

- input `images`: RGB pixels 0-255, `(batch, H, W, 3)` of any H and W
  (all three formats keep dynamic shapes); uint8 for ONNX and LiteRT,
  int32 for TF.js (TF.js has no uint8 tensors; `tf.browser.fromPixels`
  returns int32);
- inside: cast to float32, bilinear resize with antialiasing to the
  model's input size (TensorFlow's `tf.image.resize(..., antialias=True)`,
  written as two matrix products so that every runtime has the ops; an
  identity when the image already has the model's size), the model;
- output `probabilities`: `(batch, num_classes)`, softmax of the logits
  (with `test_time_flip`: the mean of the softmax of the image's logits
  and of its left-right mirror's, both computed in the graph).

Each export carries its metadata (`deploy_metadata`): class names, the
model's input size, whether the crops should be gray, whether the
test-time flip is in the graph (`test_time_flip`), in ONNX
`metadata_props`, in the `.tflite` file's metadata (and `labels.txt`
beside it), in TF.js `model.json`'s `userDefinedMetadata`.

The graph is traced on Keras' TensorFlow backend and converted: ONNX with
`tf2onnx` (the `export` extra), LiteRT with TensorFlow's own converter,
TF.js with ferzoo's graph-model writer (`ferzoo.deploy.tfjs`; see
docs/export.md for why not the `tensorflowjs` package). On another
backend the model is saved to a temporary `.keras` file and converted
in a child process on the TensorFlow backend.

Running an export (`ferzoo.deploy.runtimes`) imports neither TensorFlow
nor Keras.
"""

import importlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from ferzoo.deploy.common import FACE_NET_FILES  # noqa: F401
from ferzoo.deploy.common import FORMATS
from ferzoo.deploy.common import LABELS_FILE  # noqa: F401
from ferzoo.deploy.common import METADATA_KEY  # noqa: F401
from ferzoo.deploy.common import MODEL_FILES
from ferzoo.deploy.common import deploy_metadata
from ferzoo.deploy.common import write_atomic  # noqa: F401

_SUBMODULES = ("face_nets", "graph", "litert", "onnx", "runtimes", "tfjs")


def __getattr__(name):
    # `ferzoo.deploy.runtimes` after `import ferzoo`, without importing
    # TensorFlow (graph, litert, onnx and tfjs do) before it is needed.
    if name in _SUBMODULES:
        return importlib.import_module(f"ferzoo.deploy.{name}")
    raise AttributeError(f"module 'ferzoo.deploy' has no attribute {name!r}")


def export_format(
    model,
    path,
    fmt,
    image_size,
    class_names,
    grayscale=None,
    verbose=False,
    face_nets=True,
    test_time_flip=None,
):
    """Write `model` in format `fmt` into the folder `path`.

    Args:
        model: a `ferzoo.models.NoisyLabelClassifier`.
        path: str or path. The folder to write into (created if missing);
            files are written atomically and nothing is deleted.
        fmt: str. One of `FORMATS`.
        image_size: tuple `(height, width)`: the model's input size.
        class_names: list of str, one per class.
        grayscale: bool or None. Recorded in the metadata: crops for the
            model should be gray (as its training images were).
        verbose: bool. Print the converters' output.
        face_nets: bool. For ONNX and LiteRT, also write predict's face
            detector and landmark nets in that format beside the model
            (`ferzoo.deploy.face_nets`), so that `ferzoo-predict
            --runtime onnx|litert` runs without TensorFlow. Defaults to
            True.
        test_time_flip: bool or None. Put the test-time flip in the
            graph (recorded in the metadata). Defaults to `None`: the
            model's own `test_time_flip`.

    Returns:
        The path of the model file written, as a `pathlib.Path`.
    """
    (out,) = export_formats(
        model,
        {fmt: path},
        image_size,
        class_names,
        grayscale,
        verbose,
        face_nets,
        test_time_flip,
    )
    return out


def export_formats(
    model,
    paths,
    image_size,
    class_names,
    grayscale=None,
    verbose=False,
    face_nets=True,
    test_time_flip=None,
):
    """`export_format` for several formats: `paths` maps format -> folder.

    On a backend other than TensorFlow all of them are written by one
    child process. Returns the model files written, in `paths` order.
    """
    import keras

    if test_time_flip is None:
        test_time_flip = bool(getattr(model, "test_time_flip", False))
    jobs = []
    for fmt, path in paths.items():
        if fmt not in FORMATS:
            raise ValueError(
                f"`format` must be one of {FORMATS}. Received: format={fmt!r}"
            )
        path = pathlib.Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = deploy_metadata(
            fmt, class_names, image_size, grayscale, face_nets, test_time_flip
        )
        jobs.append((path, fmt, meta))
    if keras.backend.backend() != "tensorflow":
        _export_in_child(model, jobs, verbose)
    else:
        for path, fmt, meta in jobs:
            _export_here(model, path, fmt, meta, verbose)
    return [path / MODEL_FILES[fmt] for path, fmt, _ in jobs]


def _export_here(model, path, fmt, meta, verbose):
    from ferzoo.deploy import graph
    from ferzoo.deploy.common import test_time_flip_as

    height, width = meta["image_size"]
    dtype = "int32" if fmt == "tfjs" else "uint8"
    with test_time_flip_as(model, meta.get("test_time_flip")):
        function = graph.deploy_function(model, height, width, dtype)
        # Traced now, with the flip as the metadata says.
        function.get_concrete_function()
    if meta.get("face_nets"):
        from ferzoo.deploy import face_nets

        face_nets.write_face_nets(path, fmt, verbose)
    if fmt == "onnx":
        from ferzoo.deploy import onnx

        return onnx.write_onnx(function, path, meta, verbose)
    if fmt == "litert":
        from ferzoo.deploy import litert

        return litert.write_litert(function, path, meta, verbose)
    from ferzoo.deploy import tfjs

    return tfjs.write_graph_model(function, path, meta)


def _export_in_child(model, jobs, verbose):
    """Trace on the TensorFlow backend in a child process (JAX, torch)."""
    with tempfile.TemporaryDirectory(prefix="ferzoo-export-") as tmp:
        saved = pathlib.Path(tmp) / "model.keras"
        model.save(saved)
        spec = pathlib.Path(tmp) / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "model": str(saved),
                    "jobs": [
                        {"path": str(path), "format": fmt, "metadata": meta}
                        for path, fmt, meta in jobs
                    ],
                    "verbose": bool(verbose),
                }
            )
        )
        env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
        proc = subprocess.run(
            [sys.executable, "-m", "ferzoo.deploy._child", str(spec)],
            env=env,
            capture_output=not verbose,
            text=True,
        )
        if proc.returncode != 0:
            tail = (proc.stderr or "")[-3000:]
            formats = ", ".join(fmt for _, fmt, _ in jobs)
            raise RuntimeError(
                f"Exporting to {formats} on the TensorFlow backend (child "
                f"process) failed with exit code {proc.returncode}:\n{tail}"
            )
