"""From an RGB image to the classifier's face crops: detect, align, crop.

`FaceCropper` is the step `ferzoo.predict.predict` and the video path
share: a detector (`ferzoo.predict.detect`) finds the faces and each box
is reframed like FER2013's crops (the SSD's box is grown and moved,
`detect.SSD_FRAME_*`; Haar's box already is FER2013's framing) and grown
by `margin`. With alignment (the default but for `detector="none"`)
face-api's landmark net finds the eyes and that square is turned about
its centre until they are level (`ferzoo.predict.align`); without it the
square is cut out as it is, clipped to the image. Crops come out at
the classifier's input size, gray if it was trained on gray faces.
"""

import dataclasses
import warnings

import numpy as np

from ferzoo.predict import detect
from ferzoo.predict.images import crop_box as clipped_box
from ferzoo.predict.images import crop_face


@dataclasses.dataclass
class FoundFace:
    """A detected face before classification (see `Face`)."""

    box: tuple  # the detector's (x, y, w, h), int pixels
    crop_box: tuple  # the cropped region's (axis-aligned) box
    score: float = None  # the detector's score (None for Haar / none)
    angle: float = None  # degrees rotated by alignment (None: no align)
    transform: np.ndarray = None  # 2 x 3 image -> aligned crop pixels
    crop_side: int = None  # side of the aligned crop in pixels


def _int_box(box):
    x, y, w, h = box
    x0, y0 = int(round(x)), int(round(y))
    return (x0, y0, int(round(x + w)) - x0, int(round(y + h)) - y0)


class FaceCropper:
    """Detect, align and crop faces for a classifier.

    Args:
        detector: `"ssd"`, `"haar"`, `"none"` or a detector object.
        align: bool or None. Align each face with its landmarks; None:
            unless the detector is `"none"`.
        margin: float. Extra framing on each side, as a fraction of the
            crop's side.
        image_size: tuple `(height, width)` of the classifier's input.
        grayscale: bool. Gray crops (then 3 channels).
        face_nets: object or None. Where the SSD's and the landmark net
            come from when not Keras: `face_net(kind)` (`"detector"`,
            `"landmarks"`) returns the net run on another runtime, or
            None (then Keras'); an ONNX / LiteRT export
            (`ferzoo.deploy.runtimes.ExportedModel`). The pre- and
            post-processing are the same on every runtime.
    """

    def __init__(
        self,
        detector,
        align,
        margin,
        image_size,
        grayscale=False,
        align_mode="level",
        face_nets=None,
    ):
        def net(kind):
            if face_nets is None:
                return None
            found = face_nets.face_net(kind)
            if found is None:
                warnings.warn(
                    f"{getattr(face_nets, 'path', 'the export')}: no "
                    f"{kind} net beside the exported model, so it runs in "
                    "Keras (importing TensorFlow, seconds more to the first "
                    "face). Export again with ferzoo-export to write it.",
                    stacklevel=3,
                )
            return found

        if detector == "ssd-blazeface" and face_nets is not None:
            detector = "ssd"  # exports hold the SSD, not BlazeFace
        ssd = detector in ("ssd", "ssd-upright")
        self.detector = detect.load_detector(
            detector, net("detector") if ssd else None
        )
        if align is None:
            align = not isinstance(self.detector, detect.WholeImage)
        self.align = bool(align)
        self.margin = float(margin)
        self.image_size = tuple(image_size)
        self.grayscale = bool(grayscale)
        self.aligner = None
        if self.align:
            from ferzoo.predict import align as align_lib

            self.aligner = align_lib.default_aligner(
                mode=align_mode, net=net("landmarks")
            )
            # In template mode a margin shrinks the template about the
            # crop's centre.
            self.template = 0.5 + (self.aligner.template - 0.5) / (
                1 + 2 * self.margin
            )

    @classmethod
    def for_predictor(cls, predictor, detector, align, margin):
        """The cropper for a `Predictor`: its input size and colour, and
        its face nets (an ONNX / LiteRT export's) if it has any."""
        return cls(
            detector,
            align,
            margin,
            predictor.image_size,
            predictor.grayscale,
            face_nets=getattr(predictor, "face_nets", None),
        )

    def batch_size(self):
        return getattr(self.detector, "batch_size", 1)

    def faces(self, images):
        """`[[(FoundFace, crop uint8 (H, W, 3)), ...], ...]` per image."""
        images = list(images)
        return self.crops(images, self.detector.detect_batch(images))

    def crops(self, images, detections):
        """`faces` for detections already made (a list per image)."""
        aligned = [None] * len(images)
        if self.aligner is not None:
            pairs = [
                (rgb, [d.box for d in dets])
                for rgb, dets in zip(images, detections)
            ]
            frames = [
                [self._frame(d.box, rgb.shape[:2]) for d in dets]
                for rgb, dets in zip(images, detections)
            ]
            aligned = self.aligner.align_many(pairs, frames, self.template)
        return [
            self._crops(rgb, dets, a)
            for rgb, dets, a in zip(images, detections, aligned)
        ]

    def _frame(self, box, shape):
        """The square an aligned face is cut from before it is turned:
        the box framed like FER2013's crops, plus the margin."""
        if isinstance(self.detector, detect.SSDFaceDetector):
            box = detect.frame_box(box)
        x, y, w, h = box
        side = max(w, h) * (1 + 2 * self.margin)
        return (x + w / 2 - side / 2, y + h / 2 - side / 2, side, side)

    def _crops(self, rgb, detections, aligned=None):
        height, width = rgb.shape[:2]
        out = []
        if aligned is not None:
            for d, a in zip(detections, aligned):
                side = a.crop.shape[0]
                crop = crop_face(
                    a.crop, (0, 0, side, side), self.image_size, self.grayscale
                )
                face = FoundFace(
                    _int_box(d.box), a.crop_box(), d.score, a.angle,
                    a.transform, side)  # fmt: skip
                out.append((face, crop))
            return out
        for d in detections:
            box = d.box
            if isinstance(self.detector, detect.SSDFaceDetector):
                box = detect.frame_box(box)  # FER2013's framing
            region = clipped_box(_int_box(box), self.margin, width, height)
            if region[2] < 1 or region[3] < 1:
                continue
            crop = crop_face(rgb, region, self.image_size, self.grayscale)
            out.append((FoundFace(_int_box(d.box), region, d.score), crop))
        return out
