"""Run an exported model on a light runtime: ONNX Runtime or LiteRT.

Imports neither TensorFlow nor Keras (`ferzoo-predict --runtime onnx`
starts in well under the time TensorFlow takes to import). The runtimes
are optional: `pip install 'ferzoo[onnx]'` (onnxruntime) or
`'ferzoo[litert]'` (ai-edge-litert).

Example (an export written by `ferzoo-export --format onnx`):

    model = ferzoo.deploy.runtimes.load_exported("exported/onnx")
    probabilities = model(uint8_images)  # (N, H, W, 3) -> (N, classes)
    model.class_names
    detector = model.face_net("detector")  # predict's face nets, if any
"""

import json
import os
import pathlib

import numpy as np

from ferzoo.deploy.common import METADATA_KEY
from ferzoo.deploy.common import MODEL_FILES
from ferzoo.errors import PresetError

RUNTIMES = ("onnx", "litert")
_FILES = {name: MODEL_FILES[name] for name in RUNTIMES}


class ExportedModel:
    """An exported model loaded in its runtime: call it on uint8 images.

    Attributes:
        runtime: str. `"onnx"` or `"litert"`.
        path: the model file.
        metadata: dict. The export's metadata (`ferzoo.deploy.
            deploy_metadata`): `class_names`, `image_size`, `grayscale`.
    """

    def __init__(self, runtime, path, metadata, run, threads=None):
        self.runtime = runtime
        self.path = pathlib.Path(path)
        self.metadata = metadata
        self._run = run
        self._threads = threads or os.cpu_count() or 1
        self._nets = {}

    def face_net(self, kind):
        """Predict's face net `kind` (`"detector"` or `"landmarks"`)
        written beside this export (`ferzoo.deploy.face_nets`), loaded
        in the same runtime on first use: a callable from a float32
        batch to the net's raw output (NumPy). None when the export has
        none (exported with `face_nets=False` or before
        ferzoo wrote them)."""
        if kind not in self._nets:
            name = (self.metadata.get("face_nets") or {}).get(kind)
            file = self.path.parent / name if name else None
            if file is None or not file.is_file():
                self._nets[kind] = None
            else:
                load = (
                    _onnx_runner if self.runtime == "onnx" else _litert_runner
                )
                self._nets[kind] = load(file, self._threads)[0]
        return self._nets[kind]

    @property
    def class_names(self):
        return list(self.metadata["class_names"])

    @property
    def image_size(self):
        return tuple(self.metadata["image_size"])

    @property
    def grayscale(self):
        return self.metadata.get("grayscale")

    def __call__(self, images):
        """Probabilities `(N, C)` of uint8 RGB images `(N, H, W, 3)`."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(
                "images must be (batch, height, width, 3). Received: "
                f"shape={images.shape}"
            )
        if images.dtype != np.uint8:
            images = np.clip(np.round(images), 0, 255).astype(np.uint8)
        if not len(images):
            return np.zeros((0, len(self.class_names)), np.float32)
        return np.asarray(self._run(np.ascontiguousarray(images)), np.float32)


def find_export(path, runtime=None):
    """`(runtime, model file)` of an export folder or model file, or
    `(None, None)` when `path` is neither."""
    path = pathlib.Path(str(path)).expanduser()
    for name in (runtime,) if runtime else RUNTIMES:
        filename = _FILES[name]
        if path.is_file() and path.suffix == pathlib.Path(filename).suffix:
            return name, path
        if path.is_dir() and (path / filename).is_file():
            return name, path / filename
    return None, None


def load_exported(path, runtime=None, num_threads=None):
    """Load an export written by `ferzoo-export --format onnx|litert`.

    Args:
        path: str or path. The export folder, or its `model.onnx` /
            `model.tflite`.
        runtime: str or None. `"onnx"` or `"litert"`; `None` guesses from
            the files.
        num_threads: int or None. CPU threads; defaults to every core.

    Returns:
        An `ExportedModel`.
    """
    if runtime is not None and runtime not in RUNTIMES:
        raise ValueError(
            f"`runtime` must be one of {RUNTIMES}. Received: {runtime!r}"
        )
    found, file = find_export(path, runtime)
    if file is None:
        wanted = _FILES[runtime] if runtime else " or ".join(_FILES.values())
        raise PresetError(
            f"{path}: no exported model ({wanted}). Write one with "
            f"ferzoo-export --format {runtime or 'onnx'} --output DIR."
        )
    threads = num_threads or os.cpu_count() or 1
    if found == "onnx":
        return _load_onnx(file, threads)
    return _load_litert(file, threads)


def _load_onnx(file, threads):
    run, props = _onnx_runner(file, threads)
    metadata = _parse_metadata(props.get(METADATA_KEY), file)
    return ExportedModel("onnx", file, metadata, run, threads)


def _onnx_runner(file, threads):
    """`(run, metadata_props)`: `run` maps the one input to the first
    output."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError(
            "--runtime onnx needs onnxruntime: pip install 'ferzoo[onnx]'."
        ) from e
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        str(file), options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name

    def run(images):
        return session.run(None, {name: images})[0]

    return run, session.get_modelmeta().custom_metadata_map


def _load_litert(file, threads):
    metadata = _parse_metadata(litert_metadata(file).get(METADATA_KEY), file)
    run, _ = _litert_runner(file, threads)
    return ExportedModel("litert", file, metadata, run, threads)


def _litert_runner(file, threads):
    """`(run, None)`: `run` maps the one input to the one output."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        raise ImportError(
            "--runtime litert needs ai-edge-litert: pip install "
            "'ferzoo[litert]'."
        ) from e
    interpreter = Interpreter(model_path=str(file), num_threads=threads)
    (source,) = interpreter.get_input_details()
    (target,) = interpreter.get_output_details()
    shape = [None]

    def run(images):
        if list(images.shape) != shape[0]:
            interpreter.resize_tensor_input(source["index"], images.shape)
            interpreter.allocate_tensors()
            shape[0] = list(images.shape)
        interpreter.set_tensor(source["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"]).copy()

    return run, None


def litert_metadata(file):
    """`{name: text}` of a `.tflite` file's metadata entries."""
    from ai_edge_litert import schema_py_generated as schema

    data = pathlib.Path(file).read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    out = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        buffer = model.Buffers(entry.Buffer())
        raw = buffer.DataAsNumpy()
        if isinstance(raw, np.ndarray):
            text = raw.tobytes().decode("utf-8", "replace")
            out[entry.Name().decode()] = text
    return out


def _parse_metadata(text, file):
    if not text:
        raise PresetError(
            f"{file}: no ferzoo metadata (class names, input size) in the "
            "model: export it with ferzoo-export."
        )
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as e:
        raise PresetError(f"{file}: its ferzoo metadata is not JSON.") from e
    for key in ("class_names", "image_size"):
        if key not in metadata:
            raise PresetError(f"{file}: its metadata has no {key!r}.")
    return metadata
