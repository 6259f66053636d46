"""Emotions of the faces in photos: `ferzoo.predict` and `ferzoo-predict`.

`predict()` reads image files, folders or arrays (EXIF orientation
honoured; grayscale, palette and RGBA images become RGB), finds faces with
face-api's SSD MobileNet v1 face detector checked by MediaPipe's BlazeFace
(`"ssd-blazeface"`, the default; `ferzoo.predict.detect`), either net
alone (`"ssd"`, `"ssd-upright"`, `"blazeface"`), OpenCV's Haar cascade
(`"haar"`) or takes each image as one face crop (`"none"`), aligns each
face with face-api's 68-point landmark net (eyes level, FER2013's framing;
`ferzoo.predict.align`) unless `align=False`, resizes it to the model's
input and returns per-face boxes, probabilities, class names and, on
request, class activation maps. A file that cannot be read is reported in
its result, never raised. Videos and cameras: `ferzoo.predict.video`.

The module itself is callable, so `ferzoo.predict(...)` is
`ferzoo.predict.predict(...)`.
"""

import dataclasses
import sys
import types
import warnings

import numpy as np

from ferzoo.errors import DataError
from ferzoo.predict.detect import DEFAULT_DETECTOR
from ferzoo.predict.images import IMAGE_EXTENSIONS
from ferzoo.predict.images import cam_overlay
from ferzoo.predict.images import crop_box
from ferzoo.predict.images import crop_face
from ferzoo.predict.images import detect_faces
from ferzoo.predict.images import draw_faces
from ferzoo.predict.images import expand_inputs
from ferzoo.predict.images import read_image
from ferzoo.predict.loading import DEFAULT_MODEL
from ferzoo.predict.loading import CamUnsupportedError
from ferzoo.predict.loading import Predictor
from ferzoo.predict.loading import load_predictor

DETECTORS = (
    "ssd-blazeface", "ssd", "ssd-upright", "blazeface", "haar", "none"
)  # fmt: skip
# FER2013's own crops are the size of the Haar box: on 274 faces the
# cascade finds in PrivateTest images, crop side / box side has median
# 1.01 (docs/cli.md), so faces are cropped without extra margin.
DEFAULT_MARGIN = 0.0

__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_MARGIN",
    "DEFAULT_MODEL",
    "DETECTORS",
    "IMAGE_EXTENSIONS",
    "CamUnsupportedError",
    "Face",
    "ImageResult",
    "Predictor",
    "cam_overlay",
    "crop_box",
    "crop_face",
    "detect_faces",
    "draw_faces",
    "expand_inputs",
    "load_predictor",
    "predict",
    "read_image",
]


@dataclasses.dataclass
class Face:
    """One face: its box, class probabilities and optional CAM.

    `box` is the detector's `(x, y, width, height)` in pixels of the
    upright image and `score` its confidence (None for Haar and
    `"none"`). `crop_box` is the region the classifier saw: the aligned
    crop's axis-aligned box (it may reach outside the image), or the
    reframed box plus margin, clipped to the image. `angle` is the
    rotation alignment undid, in degrees (None without alignment);
    `transform` maps image pixels to the aligned crop's. `cam` is the
    predicted class's activation map at the model's input size, scaled
    to [0, 1].
    """

    box: tuple
    crop_box: tuple
    probabilities: np.ndarray
    class_names: list
    cam: np.ndarray = None
    score: float = None
    angle: float = None
    transform: np.ndarray = dataclasses.field(default=None, repr=False)
    crop_side: int = None

    @property
    def top_index(self):
        return int(np.argmax(self.probabilities))

    @property
    def top_class(self):
        return self.class_names[self.top_index]

    @property
    def top_probability(self):
        return float(self.probabilities[self.top_index])

    def to_json(self):
        keys = ("x", "y", "width", "height")
        return {
            "box": dict(zip(keys, map(int, self.box))),
            "crop_box": dict(zip(keys, map(int, self.crop_box))),
            "detection_score": _rounded(self.score),
            "angle": _rounded(self.angle, 2),
            "top_class": self.top_class,
            "top_probability": self.top_probability,
            "probabilities": {
                name: float(p)
                for name, p in zip(self.class_names, self.probabilities)
            },
        }


def _rounded(value, digits=4):
    return None if value is None else round(float(value), digits)


@dataclasses.dataclass
class ImageResult:
    """The faces of one input, or why it could not be read."""

    source: str
    faces: list = dataclasses.field(default_factory=list)
    size: tuple = None  # (width, height) of the upright image
    error: str = None

    @property
    def status(self):
        if self.error is not None:
            return "error"
        return "ok" if self.faces else "no_face"

    def to_json(self):
        return {
            "file": self.source,
            "status": self.status,
            "width": None if self.size is None else int(self.size[0]),
            "height": None if self.size is None else int(self.size[1]),
            "error": self.error,
            "faces": [face.to_json() for face in self.faces],
        }


def predict(
    images_or_paths,
    model=DEFAULT_MODEL,
    detector=DEFAULT_DETECTOR,
    align=None,
    margin=DEFAULT_MARGIN,
    cam=False,
    batch_size=32,
    class_names=None,
    grayscale=None,
    runtime=None,
):
    """Find the faces in images and classify their expressions.

    Args:
        images_or_paths: a path, folder, PIL image or uint8 array
            `(H, W[, C])`, or a list of them (or an `(N, H, W, C)` array).
        model: a ferzoo model, a `Predictor`, a preset name or folder, a
            training output folder (its `best.keras`), a `.keras` file, a
            SavedModel folder or an ONNX / LiteRT export folder. Defaults
            to `"ferzoo_fer2013"`.
        detector: str. `"ssd-blazeface"` (the passes of `"ssd"` on the
            image and on its gray copy, and MediaPipe's BlazeFace, preset
            `blazeface_face`, upright; a box only the gray passes score
            is kept if BlazeFace agrees, `ferzoo.predict.detect.Vote`;
            on an ONNX / LiteRT export, which holds the SSD only, it runs
            as `"ssd"`), `"ssd"` (face-api's SSD MobileNet v1 face
            detector, shipped as the `ssd_mobilenetv1_face` preset, run
            upright and turned +-25 degrees, each also zoomed out 2
            times, boxes fused, mean score > 0.1),
            `"ssd-upright"` (face-api's single pass, score > 0.5),
            `"blazeface"` (BlazeFace alone, upright, score > 0.5),
            `"haar"` (OpenCV) or `"none"` (each image is one face crop).
            Defaults to `"ssd-blazeface"`.
        align: bool or None. Turn each face upright (eyes level) and
            frame it like FER2013's crops with face-api's landmark net.
            `None` (the default) aligns found faces and leaves
            `detector="none"`'s crops as they are.
        margin: float. Extra crop around each face, as a fraction of its
            width/height on each side. Defaults to `0.0`.
        cam: bool. Also compute each face's class activation map of the
            predicted class (needs a global-pooling + dense head).
        batch_size: int. Faces per forward pass. Defaults to `32`.
        class_names: list of str or None. Overrides the model's names
            (not used when `model` is a `Predictor`).
        grayscale: bool or None. Gray crops; `None` follows the model's
            training data (not used when `model` is a `Predictor`).
        runtime: str or None. `"onnx"` or `"litert"` runs an export
            (`ferzoo-export --format onnx|litert`) on that runtime,
            without TensorFlow or Keras; `None` runs an export folder on
            its runtime, anything else in Keras.

    Returns:
        A list of `ImageResult`, one per image, in input order (a folder's
        images sorted by name); each has `faces` (`Face`: `box`,
        `probabilities`, `class_names`, `top_class`, `top_probability`,
        `cam`) and `error` for a file that could not be read.

    Example:
    >>> backbone = ferzoo.backbones.SmallCNNBackbone(
    ...     image_shape=(32, 32, 3), stackwise_num_filters=[8])
    >>> model = ferzoo.models.Baseline(backbone=backbone)
    >>> faces, _ = ferzoo.data.make_synthetic_faces(2, image_size=64)
    >>> results = ferzoo.predict(list(faces), model=model, detector="none")
    >>> face = results[0].faces[0]
    >>> face.box, face.probabilities.shape, face.top_class in face.class_names
    ((0, 0, 64, 64), (7,), True)
    """
    if isinstance(detector, str) and detector not in DETECTORS:
        raise ValueError(
            f"`detector` must be one of {DETECTORS}. Received: "
            f"detector={detector!r}"
        )
    if not 0 <= margin <= 2:
        raise ValueError(f"`margin` must be in [0, 2]. Received: {margin}")
    if isinstance(model, Predictor):
        predictor = model
    else:
        predictor = load_predictor(model, class_names, grayscale, runtime)
        for note in predictor.notes:
            warnings.warn(note, stacklevel=2)
    if cam:
        predictor.check_cam()
    from ferzoo.predict.pipeline import FaceCropper

    cropper = FaceCropper.for_predictor(predictor, detector, align, margin)
    results, owners = _read_and_crop(images_or_paths, cropper)
    crops = [crop for _, _, crop in owners]
    crops = np.stack(crops) if crops else np.zeros((0, 1, 1, 3), "uint8")
    probs = predictor.predict(crops, batch_size)
    maps = [None] * len(crops)
    if cam and len(crops):
        maps = _class_maps(predictor, crops, probs.argmax(-1), batch_size)
    for (result, found, _), p, m in zip(owners, probs, maps):
        result.faces.append(
            Face(
                tuple(found.box),
                tuple(found.crop_box),
                p,
                predictor.class_names,
                m,
                found.score,
                found.angle,
                found.transform,
                found.crop_side,
            )
        )
    return results


def _read_and_crop(images_or_paths, cropper):
    """An `ImageResult` per input, and `(result, face, crop)` per face
    found, in input order; images go to the detector in the cropper's
    batches."""
    results, owners, pending = [], [], []

    def flush():
        found = cropper.faces([rgb for _, rgb in pending])
        for (result, _), faces in zip(pending, found):
            owners.extend((result, face, crop) for face, crop in faces)
        pending.clear()

    for name, source in expand_inputs(images_or_paths):
        result = ImageResult(source=name)
        results.append(result)
        try:
            if isinstance(source, Exception):
                raise source
            rgb = read_image(source)
        except DataError as e:
            prefix = f"{e.path}: " if e.path else ""
            result.error = str(e).removeprefix(prefix)
            continue
        height, width = rgb.shape[:2]
        result.size = (width, height)
        pending.append((result, rgb))
        if len(pending) >= cropper.batch_size():
            flush()
    flush()
    return results, owners


def _class_maps(predictor, crops, classes, batch_size):
    """The predictor's class activation maps of `classes`, batch by
    batch."""
    return np.concatenate(
        [
            predictor.cams(
                crops[i : i + batch_size], classes[i : i + batch_size]
            )
            for i in range(0, len(crops), batch_size)
        ]
    )


class _CallableModule(types.ModuleType):
    """Lets `ferzoo.predict(...)` call `predict` although it names this
    module."""

    def __call__(self, *args, **kwargs):
        return predict(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
