"""Face detectors of `ferzoo.predict`: the learned SSD, Haar, none.

`SSDFaceDetector` runs face-api's SSD MobileNet v1 face detector
(`ferzoo.predict.nets`, preset `ssd_mobilenetv1_face`) the way face-api's
`locateFaces` does: the image is padded to a square with black at the
bottom/right and resized to 512 x 512 (`ssd_input`), the net scores its
5,118 anchor boxes, boxes scoring above `min_score` (face-api's
`minConfidence`, 0.5) go through greedy non-maximum suppression at
IoU 0.5 (`non_max_suppression`), and each kept box is clipped to the
square and scaled to pixels. ferzoo-predict's default also looks at the
image turned and zoomed out (`Pass`, `DEFAULT_PASSES`) and fuses the
boxes of all passes (`fuse_boxes`). `HaarFaceDetector` is
OpenCV's frontal-face cascade. Every detector returns `Detection`s: a
box `(x, y, w, h)` in pixels and a score (None for Haar); the SSD's box
is reframed like FER2013's crops for the classifier (`frame_box`).
"""

import dataclasses
import functools

import numpy as np

from ferzoo.predict.boxes import SSD_IOU  # noqa: F401
from ferzoo.predict.boxes import SSD_MAX_RESULTS  # noqa: F401
from ferzoo.predict.boxes import box_iou  # noqa: F401
from ferzoo.predict.boxes import non_max_suppression
from ferzoo.predict.boxes import resize_bilinear_legacy  # noqa: F401
from ferzoo.predict.boxes import ssd_input
from ferzoo.predict.boxes import xywh_iou  # noqa: F401
from ferzoo.predict.fusion import SSD_MERGE_IOU
from ferzoo.predict.fusion import Detection
from ferzoo.predict.fusion import Vote
from ferzoo.predict.fusion import fuse_boxes
from ferzoo.predict.fusion import group_boxes  # noqa: F401
from ferzoo.predict.images import detect_faces as haar_boxes

SSD_PRESET = "ssd_mobilenetv1_face"
BLAZEFACE_PRESET = "blazeface_face"
# The nets a `Pass` may use: preset and input side.
NETS = {"ssd": (SSD_PRESET, 512), "blazeface": (BLAZEFACE_PRESET, 256)}
# BlazeFace's boxes -> the SSD's framing, so that boxes of both nets fuse
# and `frame_box` serves both: width and height times the first two,
# centre moved by the last two times the box's width and height (medians
# of the SSD's box against BlazeFace's over faces both found,
# scripts/detection_check.py --calibrate-blazeface --scenes 200 --seed 1).
BLAZEFACE_TO_SSD = (0.935, 1.16, -0.02, -0.091)
SSD_MIN_SCORE = 0.5


@dataclasses.dataclass(frozen=True)
class Pass:
    """One look of the SSD at an image: turned `angle` degrees
    (counter-clockwise) about its centre, made gray (`gray`), and/or
    zoomed out `zoom` times (centred on a black square canvas `zoom`
    times the image's longer side, so large faces come out smaller), by
    the net `net` (a key of `NETS`: `"ssd"` or `"blazeface"`)."""

    angle: float = 0.0
    gray: bool = False
    zoom: float = 1.0
    net: str = "ssd"


# ferzoo-predict's default detector: the upright image and the image
# turned +-25 degrees, each as it is and zoomed out 2 times; a box is
# kept by any pass scoring it above 0.1, and a fused face must score
# above 0.1 averaged over the six passes (scripts/detection_check.py,
# docs/cli.md; chosen on seed-1 scenes and real photos, reported on
# seed 0).
DEFAULT_PASSES = (
    Pass(),
    Pass(25.0),
    Pass(-25.0),
    Pass(zoom=2.0),
    Pass(25.0, zoom=2.0),
    Pass(-25.0, zoom=2.0),
)
DEFAULT_MIN_SCORE = 0.1
DEFAULT_PASS_MIN_SCORE = 0.1
# ferzoo-predict's, `ferzoo.predict.predict`'s and the video path's.
DEFAULT_DETECTOR = "ssd-blazeface"
# ferzoo-predict's default detector, "ssd-blazeface": the six passes
# above, the same six on the gray image, and BlazeFace on the upright
# image; each pass keeps boxes above 0.1, and `Vote` decides (chosen on
# seed-1 scenes and the real photos, reported on seed 0; docs/cli.md).
SSD_BLAZEFACE_PASSES = (
    DEFAULT_PASSES
    + tuple(dataclasses.replace(p, gray=True) for p in DEFAULT_PASSES)
    + (Pass(net="blazeface"),)
)
BLAZEFACE_MIN_SCORE = 0.5
# FER2013's crops against the SSD's boxes: medians over the 25 matched,
# near-upright, unoccluded faces of 200 scenes of FER2013 *training*
# faces (`python scripts/detection_check.py --data DIR --calibrate
# --scenes 200 --seed 1`; quartiles of the scale 1.045, 1.265): the crop
# is a square of SCALE x sqrt(box area), its centre SHIFT_X box widths
# right of and SHIFT_Y box heights below the box's centre.
SSD_FRAME_SCALE = 1.127
SSD_FRAME_SHIFT_X = 0.037
SSD_FRAME_SHIFT_Y = -0.013


def frame_box(
    box,
    scale=SSD_FRAME_SCALE,
    shift_x=SSD_FRAME_SHIFT_X,
    shift_y=SSD_FRAME_SHIFT_Y,
):
    """The FER2013-framed square of an SSD box `(x, y, w, h)`: side
    `scale * sqrt(w * h)`, centre moved by `(shift_x * w, shift_y * h)`;
    floats, not clipped."""
    x, y, w, h = box
    cx, cy = x + w / 2 + shift_x * w, y + h / 2 + shift_y * h
    side = scale * float(np.sqrt(max(w * h, 0.0)))
    return (cx - side / 2, cy - side / 2, side, side)


class SSDFaceDetector:
    """face-api's SSD MobileNet v1 face detector (module docstring).

    Each of `passes` (`Pass`) runs the net on a view of the image (the
    upright image, turned, gray, zoomed out) and keeps the boxes scoring
    above `pass_min_score` (after face-api's NMS); a view's boxes are
    mapped back to the image (centre mapped, size kept). With one pass
    these are the faces (face-api's `locateFaces`). With more, boxes of
    all passes are grouped and fused (`fuse_boxes`): one box per face,
    the score-weighted mean of its group's boxes, scored by the mean
    over the passes of each pass's best score in the group (0 for a
    pass that missed it), so that a face seen by several passes beats
    a pattern that one pass takes for a face; faces scoring above
    `min_score` are kept.

    Args:
        preset: str. The detector's preset. Defaults to
            `"ssd_mobilenetv1_face"`.
        min_score: float. Keep faces scoring above this. Defaults to 0.5
            (face-api's `minConfidence`).
        rotations: tuple of floats. Extra passes on the colour image
            turned by these degrees (counter-clockwise). Defaults to
            `()` (face-api's one pass). Ignored if `passes` is given.
        merge_iou: float. Boxes of different passes overlapping more than
            this are one face. Defaults to 0.3.
        batch_size: int. Images per forward pass. Defaults to 8.
        net: callable or None. The net run on another runtime: a batch
            of `ssd_input` arrays -> `(batch, anchors, 5)`, each anchor's
            box `(ymin, xmin, ymax, xmax)` then score (an ONNX / LiteRT
            export's `face_net("detector")`). Defaults to the Keras net
            of `preset`.
        passes: tuple of `Pass` or None. Every pass, the upright one
            included. Defaults to None: upright, then `rotations`.
        pass_min_score: float or None. With several passes, each keeps
            boxes scoring above this. Defaults to None: `min_score`.
        vote: `Vote` or None. Which fused faces to keep, by net (SSD
            and BlazeFace passes), instead of `min_score` on the mean
            over all passes. Defaults to None.
    """

    name = "ssd"

    def __init__(
        self,
        preset=SSD_PRESET,
        min_score=SSD_MIN_SCORE,
        rotations=(),
        merge_iou=SSD_MERGE_IOU,
        batch_size=8,
        net=None,
        passes=None,
        pass_min_score=None,
        vote=None,
    ):
        if pass_min_score is None:
            pass_min_score = min_score
        for name, value in (
            ("min_score", min_score),
            ("pass_min_score", pass_min_score),
        ):
            if not 0 < value < 1:
                raise ValueError(
                    f"`{name}` must be in (0, 1). Received: {value}"
                )
        if passes is None:
            passes = (Pass(),) + tuple(Pass(float(r)) for r in rotations)
        if not passes or any(p.zoom < 1 for p in passes):
            raise ValueError(
                "`passes` must be a non-empty tuple of `Pass`es with "
                f"zoom >= 1. Received: passes={passes!r}"
            )
        unknown = {p.net for p in passes} - set(NETS)
        if unknown:
            raise ValueError(
                f"`Pass.net` must be one of {tuple(NETS)}. "
                f"Received: {sorted(unknown)}"
            )
        self.nets = {
            key: net if key == "ssd" and net is not None else _net(key, preset)
            for key in sorted({p.net for p in passes})
        }
        self.net = self.nets.get("ssd")
        self.min_score = float(min_score)
        self.pass_min_score = float(pass_min_score)
        self.passes = tuple(passes)
        self.merge_iou = float(merge_iou)
        self.batch_size = int(batch_size)
        self.vote = vote
        self.blazeface_mapping = BLAZEFACE_TO_SSD

    def raw(self, inputs, net="ssd"):
        """`(boxes, scores)` of a batch of `ssd_input` arrays, NumPy, by
        the net `net` (a key of `NETS`)."""
        inputs = np.ascontiguousarray(inputs, "float32")
        net = self.nets[net]
        if hasattr(net, "predict_on_batch"):
            # Keras: the compiled predict function (not eager op by op).
            out = net.predict_on_batch(inputs)
            return np.asarray(out["boxes"]), np.asarray(out["scores"])
        out = np.asarray(net(inputs))
        return out[..., :4], out[..., 4]

    def detect_batch(self, images):
        """A list of `Detection` lists, one per RGB image, left to right."""
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            several = len(self.passes) > 1
            threshold = self.pass_min_score if several else self.min_score
            found = [[] for _ in chunk]  # per image: per pass: Detections
            for spec in self.passes:
                views, inverses = zip(*(_view(rgb, spec) for rgb in chunk))
                more = self._pass(views, threshold, spec.net)
                for faces, extra, inverse in zip(found, more, inverses):
                    faces.append([_rotate_back(d, inverse) for d in extra])
            if self.vote is not None:
                found = [
                    self.vote.select(faces, self.passes, self.merge_iou)
                    for faces in found
                ]
            elif several:
                found = [
                    [
                        d
                        for d in fuse_boxes(faces, self.merge_iou)
                        if d.score > self.min_score
                    ]
                    for faces in found
                ]
            else:
                found = [faces[0] for faces in found]
            out.extend(
                sorted(faces, key=lambda d: (d.box[0], d.box[1]))
                for faces in found
            )
        return out

    def detect(self, rgb):
        return self.detect_batch([rgb])[0]

    def _pass(self, images, threshold, net="ssd"):
        prepared = [ssd_input(rgb, NETS[net][1]) for rgb in images]
        boxes, scores = self.raw(np.stack([p[0] for p in prepared]), net)
        found = [
            self._faces(b, s, side, threshold)
            for (_, side), b, s in zip(prepared, boxes, scores)
        ]
        if net == "blazeface":
            mapping = self.blazeface_mapping
            found = [[_blazeface_to_ssd(d, mapping) for d in f] for f in found]
        return found

    def _faces(self, boxes, scores, side, threshold):
        faces = []
        for i in non_max_suppression(boxes, scores, min_score=threshold):
            y0, x0 = max(0.0, boxes[i][0]), max(0.0, boxes[i][1])
            y1, x1 = min(1.0, boxes[i][2]), min(1.0, boxes[i][3])
            box = (x0 * side, y0 * side, (x1 - x0) * side, (y1 - y0) * side)
            faces.append(Detection(box, float(scores[i])))
        return faces


def _net(key, preset=SSD_PRESET):
    """The Keras net of `NETS[key]` (`preset` for the SSD)."""
    if key == "ssd":
        from ferzoo.predict.nets import SSDMobileNetV1FaceDetector

        return SSDMobileNetV1FaceDetector.from_preset(preset)
    from ferzoo.predict.blazeface import BlazeFaceNet

    return BlazeFaceNet.from_preset(NETS[key][0])


def _blazeface_to_ssd(detection, mapping=BLAZEFACE_TO_SSD):
    """A BlazeFace box reframed like the SSD's (`BLAZEFACE_TO_SSD`)."""
    x, y, w, h = detection.box
    scale_w, scale_h, shift_x, shift_y = mapping
    cx, cy = x + w / 2 + shift_x * w, y + h / 2 + shift_y * h
    w, h = w * scale_w, h * scale_h
    return Detection((cx - w / 2, cy - h / 2, w, h), detection.score)


def _view(rgb, spec):
    """The view of `rgb` that `spec` (`Pass`) describes, and the 2 x 3
    map from its pixels back to `rgb`'s."""
    import cv2

    rgb = np.ascontiguousarray(np.asarray(rgb)[..., :3])
    if spec.gray:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        rgb = np.repeat(gray[..., None], 3, -1)
    inverse = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    if spec.angle:
        rgb, inverse = _rotate(rgb, spec.angle)
    if spec.zoom > 1:
        height, width = rgb.shape[:2]
        side = int(round(max(height, width) * spec.zoom))
        top, left = (side - height) // 2, (side - width) // 2
        canvas = np.zeros((side, side, 3), rgb.dtype)
        canvas[top : top + height, left : left + width] = rgb
        rgb = canvas
        inverse = inverse @ np.array(
            [[1.0, 0.0, -left], [0.0, 1.0, -top], [0.0, 0.0, 1.0]]
        )
    return rgb, inverse


def _rotate(rgb, angle):
    """`rgb` turned `angle` degrees about its centre (same size, edges
    replicated), and the 2 x 3 map back to the original."""
    import cv2

    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    turned = cv2.warpAffine(
        np.ascontiguousarray(rgb),
        matrix,
        (width, height),
        borderMode=cv2.BORDER_REPLICATE,
    )
    return turned, cv2.invertAffineTransform(matrix)


def _rotate_back(detection, inverse):
    """`detection` found in a view, its centre mapped back by the 2 x 3
    `inverse` (a rotation and/or shift), its size kept."""
    x, y, w, h = detection.box
    cx, cy = inverse @ np.array([x + w / 2, y + h / 2, 1.0])
    return Detection((cx - w / 2, cy - h / 2, w, h), detection.score)


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (`images.detect_faces`)."""

    name = "haar"

    def detect(self, rgb):
        return [Detection(tuple(b)) for b in haar_boxes(rgb)]

    def detect_batch(self, images):
        return [self.detect(rgb) for rgb in images]


class WholeImage:
    """Each image is one face crop."""

    name = "none"

    def detect(self, rgb):
        height, width = rgb.shape[:2]
        return [Detection((0, 0, width, height))]

    def detect_batch(self, images):
        return [self.detect(rgb) for rgb in images]


# name -> (min_score, passes, vote) of `load_detector`'s learned detectors
LEARNED = {
    "ssd": (DEFAULT_MIN_SCORE, DEFAULT_PASSES, None),
    "ssd-upright": (SSD_MIN_SCORE, (Pass(),), None),
    "ssd-blazeface": (DEFAULT_MIN_SCORE, SSD_BLAZEFACE_PASSES, Vote()),
    "blazeface": (BLAZEFACE_MIN_SCORE, (Pass(net="blazeface"),), None),
    # ssd-blazeface without BlazeFace (for scripts/detection_check.py;
    # not a ferzoo-predict option: it keeps the cap badge of the README's
    # photo)
    "ssd-gray": (DEFAULT_MIN_SCORE, SSD_BLAZEFACE_PASSES[:12], None),
}
DETECTOR_NAMES = (*LEARNED, "haar", "none")


@functools.lru_cache(maxsize=4)
def _learned(preset, min_score, passes, pass_min_score, vote):
    return SSDFaceDetector(
        preset,
        min_score,
        passes=passes,
        pass_min_score=pass_min_score,
        vote=vote,
    )


def load_detector(name, net=None):
    """The detector called `name`, or an object with `detect` /
    `detect_batch` passed through: `"ssd"` (`DEFAULT_PASSES` fused,
    mean score > 0.1), `"ssd-upright"` (face-api's own: one pass, score >
    0.5), `"ssd-blazeface"` (`SSD_BLAZEFACE_PASSES` and `Vote`),
    `"blazeface"` (BlazeFace upright, score > 0.5), `"haar"` or
    `"none"`. `net`: the SSD's net on another runtime
    (`SSDFaceDetector`'s `net`; BlazeFace runs in Keras), or None for
    Keras'."""
    if not isinstance(name, str):
        return name
    if name in LEARNED:
        score, passes, vote = LEARNED[name]
        per_pass = DEFAULT_PASS_MIN_SCORE if len(passes) > 1 else score
        if net is not None:
            return SSDFaceDetector(
                min_score=score,
                passes=passes,
                net=net,
                pass_min_score=per_pass,
                vote=vote,
            )
        return _learned(SSD_PRESET, score, passes, per_pass, vote)
    if name == "haar":
        return HaarFaceDetector()
    if name == "none":
        return WholeImage()
    raise ValueError(
        f"`detector` must be one of {DETECTOR_NAMES}. "
        f"Received: detector={name!r}"
    )
