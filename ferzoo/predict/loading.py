"""Load a model for `ferzoo.predict`: preset, run, `.keras`, SavedModel,
or an ONNX / LiteRT export run on its light runtime.

Class names and the colour of the crops come with the model: from its
preset's or run's `metadata.json` / `results.json`, the SavedModel, or
the export's metadata. Loading an export imports neither TensorFlow nor
Keras.
"""

import json
import pathlib

import numpy as np

from ferzoo.errors import DataError
from ferzoo.errors import FerzooError
from ferzoo.errors import PresetError

DEFAULT_MODEL = "ferzoo_fer2013"
RUNTIMES = ("keras", "onnx", "litert")


class CamUnsupportedError(FerzooError, ValueError):
    """The model's head is not global pooling + dense, so it has no CAM."""


class Predictor:
    """A loaded classifier of face crops, with its class names.

    Args:
        model: a ferzoo model, or None for a SavedModel.
        class_names: list of str. One name per output class.
        image_size: tuple `(height, width)` of the model input.
        grayscale: bool. Crops are made gray (then 3 channels), as the
            model's training images were.
        source: str. Where the model came from, for reports.
        kind: str. `"keras"`, `"preset"`, `"saved_model"`, `"onnx"` or
            `"litert"`.
        trained: bool. False for a preset without weights.
        serve: callable or None. The SavedModel's `serve` function, or
            the exported model run on its runtime.
        named: bool. False when `class_names` are placeholders.
        face_nets: object or None. An export whose `face_net(kind)` runs
            predict's detector and landmark nets on its runtime
            (`ferzoo.predict.pipeline.FaceCropper`); None: Keras'.
        test_time_flip: bool. Whether the probabilities are the mean of
            each crop's and its mirror image's: the Keras model's setting,
            or an export's (in its graph, its metadata says so).
        flip_here: bool. `serve` has no flip in it: `predict` runs it on
            the crops and on their mirror images and averages the
            probabilities (`test_time_flip=True` asked of such an export).
    """

    def __init__(
        self,
        model,
        class_names,
        image_size,
        grayscale=False,
        source="",
        kind="keras",
        trained=True,
        serve=None,
        named=True,
        face_nets=None,
        test_time_flip=False,
        flip_here=False,
    ):
        self.model = model
        self.test_time_flip = bool(test_time_flip or flip_here)
        self.flip_here = bool(flip_here)
        self.face_nets = face_nets
        self.class_names = list(class_names)
        self.image_size = tuple(int(s) for s in image_size)
        self.grayscale = bool(grayscale)
        self.source = str(source)
        self.kind = kind
        self.trained = trained
        self.serve = serve
        self.notes = []
        if not trained:
            self.notes.append(
                f"model {self.source!r} has no trained weights "
                "(no model.weights.h5): its predictions are random."
            )
        if not named:
            self.notes.append(
                f"model {self.source!r} comes with no class names (no "
                "metadata.json with dataset.class_names beside it): "
                "classes are reported as class_0, class_1, ..."
            )

    def describe(self):
        return {
            "source": self.source,
            "kind": self.kind,
            "class_names": self.class_names,
            "image_size": list(self.image_size),
            "grayscale": self.grayscale,
            "trained": self.trained,
            "test_time_flip": self.test_time_flip,
        }

    def predict(self, crops, batch_size=32):
        """Class probabilities `(N, C)` of uint8 crops `(N, H, W, 3)`."""
        crops = np.asarray(crops, "float32")
        if len(crops) == 0:
            return np.zeros((0, len(self.class_names)), "float32")
        if self.serve is not None:
            probs = self._served(crops, batch_size)
            if self.flip_here:
                flipped = np.ascontiguousarray(crops[:, :, ::-1])
                mirror = self._served(flipped, batch_size)
                probs = (probs + mirror) / 2
            return probs
        return np.asarray(
            self.model.predict(crops, batch_size=batch_size, verbose=0)
        )

    def _served(self, crops, batch_size):
        out = [
            np.asarray(self.serve(crops[i : i + batch_size]))
            for i in range(0, len(crops), batch_size)
        ]
        return np.concatenate(out).astype("float32")

    def check_cam(self):
        """Raise `CamUnsupportedError` unless logits = GAP(CAM) + bias."""
        from keras import ops

        model = self.model
        reason = None
        if model is None:
            reason = f"an exported model ({self.kind}) keeps no feature maps"
        elif not hasattr(model, "class_maps"):
            reason = "it offers no class activation maps"
        else:
            rng = np.random.default_rng(0)
            shape = (2, *self.image_size, 3)
            x = rng.uniform(0, 255, shape).astype("float32")
            logits = ops.convert_to_numpy(model(x)["logits"])
            try:
                maps = self._class_maps(x)
            except Exception:  # backbone features that do not fit the head
                maps = None
            if maps is None or maps.shape[-1] != logits.shape[-1]:
                reason = "its classifier does not read the backbone's maps"
            else:
                # logits = mean of the maps + the same bias for every image.
                offset = logits - maps.mean(axis=(1, 2))
                tol = 1e-3 * max(1.0, float(np.abs(logits).max()))
                if not np.allclose(offset, offset[:1], atol=tol):
                    reason = "its logits are not global pooling + dense"
        if reason:
            raise CamUnsupportedError(
                f"model {self.source!r} does not support class activation "
                f"maps: {reason}. Run without --cam / `cam=True`."
            )

    def _class_maps(self, crops):
        from keras import ops

        maps = self.model.class_maps(crops)
        return None if maps is None else ops.convert_to_numpy(maps)

    def cams(self, crops, classes):
        """CAM of `classes[i]` per crop at the input size, in [0, 1]."""
        from PIL import Image

        maps = self._class_maps(np.asarray(crops, "float32"))
        height, width = self.image_size
        out = np.zeros((len(maps), height, width), "float32")
        for i, c in enumerate(classes):
            m = Image.fromarray(maps[i, :, :, int(c)].astype("float32"))
            m = np.asarray(m.resize((width, height), Image.BILINEAR))
            span = float(m.max() - m.min())
            if span > 0:
                out[i] = (m - m.min()) / span
        return out


def load_predictor(
    model=DEFAULT_MODEL,
    class_names=None,
    grayscale=None,
    runtime=None,
    test_time_flip=None,
):
    """A `Predictor` from a model, preset, run folder, `.keras` file,
    SavedModel folder or ONNX / LiteRT export.

    Class names come from `class_names`, else the preset's or run's
    `metadata.json` (`dataset.class_names`, or the class names of its
    test results) or `results.json`, or the export's metadata, else
    `class_0`, `class_1`, ... `grayscale=None` makes crops gray when the
    model was trained on a grayscale data set (FER2013, FERPlus, the
    synthetic faces), or as the export's metadata says.

    `runtime`: `"onnx"` or `"litert"` runs an export (`ferzoo-export
    --format onnx|litert`) in ONNX Runtime or LiteRT, without importing
    TensorFlow or Keras; `"keras"` refuses an export; `None` (default)
    runs an export folder on its runtime and anything else in Keras.

    `test_time_flip`: average each crop's probabilities with its mirror
    image's (`True`) or not (`False`); `None` (default) keeps the model's
    own setting (a preset's config, an export's metadata). It sets a
    Keras model's `test_time_flip`. An export without the flip in its
    graph is run twice per crop for `True`; an export with it cannot
    turn it off (`PresetError`: export again with `--no-tta`).
    """
    predictor = _load(model, class_names, grayscale, runtime)
    return _set_flip(predictor, test_time_flip)


def _set_flip(predictor, test_time_flip):
    """`predictor` with its test-time flip as asked (`None`: as loaded)."""
    if test_time_flip is None:
        return predictor
    if predictor.model is not None:
        predictor.model.test_time_flip = bool(test_time_flip)
        predictor.test_time_flip = bool(test_time_flip)
    elif test_time_flip and not predictor.test_time_flip:
        # An export without the flip in its graph: flip the crops here.
        predictor.test_time_flip = predictor.flip_here = True
    elif not test_time_flip and predictor.flip_here:
        predictor.test_time_flip = predictor.flip_here = False
    elif not test_time_flip and predictor.test_time_flip:
        raise PresetError(
            f"{predictor.source}: this export has the test-time flip in its "
            "graph (ferzoo-export --tta), which cannot be turned off when "
            "it runs. Export the model again with --no-tta, or run the "
            "model it came from with --no-tta."
        )
    return predictor


def _load(model, class_names, grayscale, runtime):
    """`load_predictor` without the test-time flip setting."""
    if runtime is not None and runtime not in RUNTIMES:
        raise ValueError(
            f"`runtime` must be one of {RUNTIMES}. Received: {runtime!r}"
        )
    if runtime != "keras" and not _is_keras_model(model):
        from ferzoo.deploy import runtimes

        found, _ = runtimes.find_export(model, None)
        if runtime in runtimes.RUNTIMES or found:
            if found and runtime and found != runtime:
                raise PresetError(
                    f"{model} holds an export for the {found} runtime, not "
                    f"{runtime}: run it with --runtime {found} (Python: "
                    f"`runtime={found!r}`)."
                )
            return _from_export(model, runtime, class_names, grayscale)
    import keras

    from ferzoo import models  # noqa: F401  (registers the .keras classes)
    from ferzoo import presets
    from ferzoo.training import load_checkpoint

    if isinstance(model, keras.Model):
        # An object in hand: placeholder names are the caller's choice.
        predictor = _from_model(
            model, "<model>", "keras", {}, class_names, grayscale
        )
        predictor.notes = []
        return predictor
    path = pathlib.Path(str(model)).expanduser()
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return _from_saved_model(path, class_names, grayscale)
    if path.suffix == ".keras":
        if not path.is_file():
            raise DataError("no such model file", path=path)
        meta = _folder_metadata(path.parent)
        loaded = load_checkpoint(path)
        return _from_model(loaded, path, "keras", meta, class_names, grayscale)
    if path.is_dir() and (path / "best.keras").is_file():
        loaded = load_checkpoint(path / "best.keras")
        meta = _folder_metadata(path)
        source = path / "best.keras"
        return _from_model(
            loaded, source, "keras", meta, class_names, grayscale
        )
    try:
        folder = presets.resolve_preset(model)
    except PresetError as e:
        if str(model) != DEFAULT_MODEL:
            raise
        raise PresetError(
            f"no trained model: the default preset {DEFAULT_MODEL!r} is not "
            "installed. Pass --model (Python: `model=`) with a preset name, "
            "a training output folder, a .keras file or a SavedModel folder."
        ) from e
    from ferzoo.models import NoisyLabelClassifier

    loaded = NoisyLabelClassifier.from_preset(str(folder))
    meta = _folder_metadata(folder)
    trained = (folder / presets.WEIGHTS_FILE).is_file()
    return _from_model(
        loaded, model, "preset", meta, class_names, grayscale, trained
    )


def _is_keras_model(model):
    import sys

    keras = sys.modules.get("keras")
    return keras is not None and isinstance(model, keras.Model)


def _from_export(path, runtime, class_names, grayscale):
    from ferzoo.deploy import runtimes

    exported = runtimes.load_exported(path, runtime)
    names = class_names or exported.class_names
    names, named = _checked_names(names, len(exported.class_names), path)
    if grayscale is None:
        grayscale = bool(exported.grayscale)
    return Predictor(
        None,
        names,
        exported.image_size,
        grayscale,
        exported.path,
        exported.runtime,
        serve=exported,
        named=named,
        face_nets=exported,
        test_time_flip=bool(exported.metadata.get("test_time_flip")),
    )


def _folder_metadata(folder):
    meta = {}
    for name in ("results.json", "metadata.json"):
        path = pathlib.Path(folder) / name
        if path.is_file():
            try:
                meta[name] = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise PresetError(
                    f"{path}, line {e.lineno}: invalid JSON ({e.msg})."
                ) from e
    return meta


def _names_from_metadata(meta):
    def get(obj, *keys):
        for key in keys:
            obj = obj.get(key) if isinstance(obj, dict) else None
        return obj

    candidates = (
        get(meta, "metadata.json", "dataset", "class_names"),
        get(meta, "metadata.json", "results", "final", "class_names"),
        get(meta, "results.json", "test", "final", "class_names"),
    )
    return next((list(c) for c in candidates if c), None)


def _grayscale_from_metadata(meta):
    dataset = (meta.get("metadata.json") or {}).get("dataset") or {}
    if "grayscale" in dataset:
        return bool(dataset["grayscale"])
    text = f"{dataset.get('name', '')} {dataset.get('data', '')}".lower()
    return any(k in text for k in ("fer2013", "ferplus", "synthetic"))


def _checked_names(names, num_classes, source):
    """`(names, named)`: the names, or placeholders if there are none."""
    if names is None:
        return [f"class_{i}" for i in range(num_classes)], False
    if len(names) != num_classes:
        raise PresetError(
            f"{source}: {len(names)} class names for a model with "
            f"{num_classes} outputs. Received: class_names={names}"
        )
    return list(names), True


def _from_model(
    model, source, kind, meta, class_names, grayscale, trained=True
):
    names = class_names or _names_from_metadata(meta)
    names, named = _checked_names(names, int(model.num_classes), source)
    size = tuple(model.image_shape[:2])
    if None in size:
        fallback = int(getattr(model, "recipe", {}).get("image_size", 48))
        size = (fallback, fallback)
    if grayscale is None:
        grayscale = _grayscale_from_metadata(meta)
    return Predictor(
        model,
        names,
        size,
        grayscale,
        source,
        kind,
        trained,
        named=named,
        test_time_flip=getattr(model, "test_time_flip", False),
    )


def _input_shape(function):
    """The image input shape of a restored SavedModel function."""
    signature = getattr(function, "input_signature", None)
    if not signature:
        concrete = function.concrete_functions[0]
        signature = concrete.structured_input_signature[0]
    return tuple(signature[0].shape)


def _from_saved_model(path, class_names, grayscale):
    import tensorflow as tf  # noqa: TID251  (SavedModels are TensorFlow's)

    loaded = tf.saved_model.load(str(path))
    if not hasattr(loaded, "serve"):
        raise PresetError(f"{path}: the SavedModel has no `serve` function.")
    shape = _input_shape(loaded.serve)
    if None in tuple(shape[1:3]) and hasattr(loaded, "probabilities"):
        # `serve` resizes any H x W inside; `probabilities` has the
        # model's own input size (ferzoo's exporter writes both).
        shape = _input_shape(loaded.probabilities)
    meta = _folder_metadata(path)
    names = class_names or _names_from_metadata(meta)
    if not names and hasattr(loaded, "class_names"):
        names = [n.decode() for n in loaded.class_names().numpy()]
        if names == [str(i) for i in range(len(names))]:
            names = None  # exported without names
    probe = loaded.serve(np.zeros((1, *shape[1:]), "float32"))
    names, named = _checked_names(names, int(probe.shape[-1]), path)
    if grayscale is None:
        grayscale = _grayscale_from_metadata(meta)

    def serve(batch):
        return loaded.serve(tf.constant(batch)).numpy()

    # `metadata()`: written by ferzoo's exporter since the test-time flip.
    exported = {}
    if hasattr(loaded, "metadata"):
        exported = json.loads(loaded.metadata().numpy().decode("utf-8"))

    return Predictor(
        None,
        names,
        shape[1:3],
        grayscale,
        path,
        "saved_model",
        serve=serve,
        named=named,
        test_time_flip=bool(exported.get("test_time_flip")),
    )
