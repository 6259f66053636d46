"""Face detectors of `ferzoo.predict`: the learned SSD, Haar, none.

`SSDFaceDetector` runs face-api's SSD MobileNet v1 face detector
(`ferzoo.predict.nets`, preset `ssd_mobilenetv1_face`) the way face-api's
`locateFaces` does: the image is padded to a square with black at the
bottom/right and resized to 512 x 512 (`ssd_input`), the net scores its
5,118 anchor boxes, boxes scoring above `min_score` (face-api's
`minConfidence`, 0.5) go through greedy non-maximum suppression at
IoU 0.5 (`non_max_suppression`), and each kept box is clipped to the
square and scaled to pixels. `HaarFaceDetector` is OpenCV's frontal-face
cascade. Every detector returns `Detection`s: a box `(x, y, w, h)` in
pixels, a score (None for Haar) and, for the SSD, the box as found
before it is reframed for the classifier (`framed_box`).
"""

import dataclasses
import functools

import numpy as np

from ferzoo.predict.images import detect_faces as haar_boxes

SSD_PRESET = "ssd_mobilenetv1_face"
SSD_MIN_SCORE = 0.5
SSD_IOU = 0.5
SSD_MAX_RESULTS = 100
SSD_MERGE_IOU = 0.3
# ferzoo-predict's default detector: face-api's pass plus two turned ones,
# and a lower score threshold (scripts/detection_check.py, docs/cli.md).
DEFAULT_ROTATIONS = (25.0, -25.0)
DEFAULT_MIN_SCORE = 0.4
# FER2013's crops against the SSD's boxes: medians over the 25 matched,
# near-upright, unoccluded faces of 200 scenes of FER2013 *training*
# faces (`python scripts/detection_check.py --data DIR --calibrate
# --scenes 200 --seed 1`; quartiles of the scale 1.045, 1.265): the crop
# is a square of SCALE x sqrt(box area), its centre SHIFT_X box widths
# right of and SHIFT_Y box heights below the box's centre.
SSD_FRAME_SCALE = 1.127
SSD_FRAME_SHIFT_X = 0.037
SSD_FRAME_SHIFT_Y = -0.013


@dataclasses.dataclass
class Detection:
    """One face found: `box` `(x, y, w, h)` pixels, `score` or None."""

    box: tuple
    score: float = None


def resize_bilinear_legacy(image, height, width):
    """TF's bilinear resize without half-pixel centres (TF.js default).

    Output pixel `(r, c)` samples the input at `(r * H / height,
    c * W / width)`, interpolating its four neighbours in float64;
    returns float32 (`tf.image.resize_bilinear(align_corners=False,
    half_pixel_centers=False)`, face-api's `resizeBilinear`).
    """
    image = np.asarray(image, np.float64)
    in_h, in_w = image.shape[:2]

    def axis(n_out, n_in):
        src = np.arange(n_out) * (n_in / n_out)
        lo = np.maximum(np.floor(src), 0).astype(int)
        hi = np.minimum(np.ceil(src), n_in - 1).astype(int)
        return lo, hi, src - lo

    r0, r1, fr = axis(height, in_h)
    c0, c1, fc = axis(width, in_w)
    fc = fc[None, :, None]
    top = image[r0][:, c0] + (image[r0][:, c1] - image[r0][:, c0]) * fc
    bottom = image[r1][:, c0] + (image[r1][:, c1] - image[r1][:, c0]) * fc
    return (top + (bottom - top) * fr[:, None, None]).astype(np.float32)


def ssd_input(rgb, size=512, exact=False):
    """The SSD's `(size, size, 3)` float32 input and the square's side.

    The image is padded with black to a `side x side` square at the
    bottom/right (`side = max(H, W)`) and resized to `size`. Squares up
    to `size` (and any with `exact=True`) are resized like face-api
    (`resize_bilinear_legacy`); larger ones with OpenCV's area
    averaging, which does not alias where face-api's bilinear sampling
    skips pixels.
    """
    rgb = np.asarray(rgb)
    height, width = rgb.shape[:2]
    side = max(height, width)
    if side <= size or exact:
        square = np.zeros((side, side, 3), rgb.dtype)
        square[:height, :width] = rgb[..., :3]
        return resize_bilinear_legacy(square, size, size), side
    import cv2

    scale = size / side
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    small = cv2.resize(rgb[..., :3], (w, h), interpolation=cv2.INTER_AREA)
    out = np.zeros((size, size, 3), np.float32)
    out[:h, :w] = small
    return out, side


def box_iou(a, b):
    """face-api's IoU of two `(ymin, xmin, ymax, xmax)` boxes (0 if either
    has no area)."""
    ay0, ay1 = min(a[0], a[2]), max(a[0], a[2])
    ax0, ax1 = min(a[1], a[3]), max(a[1], a[3])
    by0, by1 = min(b[0], b[2]), max(b[0], b[2])
    bx0, bx1 = min(b[1], b[3]), max(b[1], b[3])
    area_a = (ay1 - ay0) * (ax1 - ax0)
    area_b = (by1 - by0) * (bx1 - bx0)
    if area_a <= 0 or area_b <= 0:
        return 0.0
    inter = max(min(ay1, by1) - max(ay0, by0), 0.0) * max(
        min(ax1, bx1) - max(ax0, bx0), 0.0
    )
    return inter / (area_a + area_b - inter)


def non_max_suppression(
    boxes, scores, max_results=SSD_MAX_RESULTS, iou=SSD_IOU, min_score=0.5
):
    """Indices of the boxes kept, best first (face-api's NMS).

    Boxes scoring above `min_score`, in decreasing score order (ties
    keep anchor order), are kept unless their IoU with a kept box is
    above `iou`; at most `max_results`.
    """
    scores = np.asarray(scores)
    order = [int(i) for i in np.argsort(-scores, kind="stable")]
    order = [i for i in order if scores[i] > min_score]
    kept = []
    for i in order:
        if len(kept) >= max_results:
            break
        if all(box_iou(boxes[i], boxes[j]) <= iou for j in kept):
            kept.append(i)
    return kept


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

    Besides the upright pass (face-api's own), the image is also searched
    turned by each of `rotations` degrees (the net misses faces tilted
    by more than about 15 degrees): each extra pass's boxes are mapped
    back (centre rotated back, size kept), and the boxes of all passes
    are merged by NMS at IoU `merge_iou`, best score first.

    Args:
        preset: str. The detector's preset. Defaults to
            `"ssd_mobilenetv1_face"`.
        min_score: float. Keep faces scoring above this. Defaults to 0.5
            (face-api's `minConfidence`).
        rotations: tuple of floats. Extra passes, in degrees
            (counter-clockwise). Defaults to `()` (face-api's one pass).
        merge_iou: float. Boxes of different passes overlapping more than
            this are one face. Defaults to 0.3.
        batch_size: int. Images per forward pass. Defaults to 8.
        net: callable or None. The net run on another runtime: a batch
            of `ssd_input` arrays -> `(batch, anchors, 5)`, each anchor's
            box `(ymin, xmin, ymax, xmax)` then score (an ONNX / LiteRT
            export's `face_net("detector")`). Defaults to the Keras net
            of `preset`.
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
    ):
        if not 0 < min_score < 1:
            raise ValueError(
                f"`min_score` must be in (0, 1). Received: {min_score}"
            )
        if net is None:
            from ferzoo.predict.nets import SSDMobileNetV1FaceDetector

            net = SSDMobileNetV1FaceDetector.from_preset(preset)
        self.net = net
        self.min_score = float(min_score)
        self.rotations = tuple(float(r) for r in rotations)
        self.merge_iou = float(merge_iou)
        self.batch_size = int(batch_size)

    def raw(self, inputs):
        """`(boxes, scores)` of a batch of `ssd_input` arrays, NumPy."""
        inputs = np.ascontiguousarray(inputs, "float32")
        if hasattr(self.net, "predict_on_batch"):
            # Keras: the compiled predict function (not eager op by op).
            out = self.net.predict_on_batch(inputs)
            return np.asarray(out["boxes"]), np.asarray(out["scores"])
        out = np.asarray(self.net(inputs))
        return out[..., :4], out[..., 4]

    def detect_batch(self, images):
        """A list of `Detection` lists, one per RGB image, left to right."""
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            found = self._pass(chunk)
            for angle in self.rotations:
                turned, inverses = zip(*(_rotate(rgb, angle) for rgb in chunk))
                more = self._pass(turned)
                for faces, extra, inverse in zip(found, more, inverses):
                    faces.extend(_rotate_back(d, inverse) for d in extra)
            if self.rotations:
                found = [self._merge(faces) for faces in found]
            out.extend(
                sorted(faces, key=lambda d: (d.box[0], d.box[1]))
                for faces in found
            )
        return out

    def detect(self, rgb):
        return self.detect_batch([rgb])[0]

    def _pass(self, images):
        prepared = [ssd_input(rgb) for rgb in images]
        boxes, scores = self.raw(np.stack([p[0] for p in prepared]))
        return [
            self._faces(b, s, side)
            for (_, side), b, s in zip(prepared, boxes, scores)
        ]

    def _faces(self, boxes, scores, side):
        faces = []
        for i in non_max_suppression(boxes, scores, min_score=self.min_score):
            y0, x0 = max(0.0, boxes[i][0]), max(0.0, boxes[i][1])
            y1, x1 = min(1.0, boxes[i][2]), min(1.0, boxes[i][3])
            box = (x0 * side, y0 * side, (x1 - x0) * side, (y1 - y0) * side)
            faces.append(Detection(box, float(scores[i])))
        return faces

    def _merge(self, faces):
        kept = []
        for d in sorted(faces, key=lambda d: -d.score):
            if all(xywh_iou(d.box, k.box) <= self.merge_iou for k in kept):
                kept.append(d)
        return kept


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
    x, y, w, h = detection.box
    cx, cy = inverse @ np.array([x + w / 2, y + h / 2, 1.0])
    return Detection((cx - w / 2, cy - h / 2, w, h), detection.score)


def xywh_iou(a, b):
    """IoU of two `(x, y, w, h)` boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    union = aw * ah + bw * bh - w * h
    return w * h / union if union > 0 else 0.0


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


@functools.lru_cache(maxsize=4)
def _ssd(preset, min_score, rotations):
    return SSDFaceDetector(preset, min_score, rotations)


def load_detector(name, net=None):
    """The detector called `name`, or an object with `detect` /
    `detect_batch` passed through: `"ssd"` (upright and +-25 degree
    passes, score > 0.4), `"ssd-upright"` (face-api's own: one pass,
    score > 0.5), `"haar"` or `"none"`. `net`: the SSD's net on another
    runtime (`SSDFaceDetector`'s `net`), or None for Keras'."""
    if not isinstance(name, str):
        return name
    if name in ("ssd", "ssd-upright"):
        score, turns = DEFAULT_MIN_SCORE, DEFAULT_ROTATIONS
        if name == "ssd-upright":
            score, turns = SSD_MIN_SCORE, ()
        if net is not None:
            return SSDFaceDetector(min_score=score, rotations=turns, net=net)
        return _ssd(SSD_PRESET, score, turns)
    if name == "haar":
        return HaarFaceDetector()
    if name == "none":
        return WholeImage()
    raise ValueError(
        "`detector` must be one of ('ssd', 'ssd-upright', 'haar', 'none'). "
        f"Received: detector={name!r}"
    )
