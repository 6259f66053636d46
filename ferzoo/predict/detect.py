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

from ferzoo.predict.images import detect_faces as haar_boxes

SSD_PRESET = "ssd_mobilenetv1_face"
SSD_MIN_SCORE = 0.5
SSD_IOU = 0.5
SSD_MAX_RESULTS = 100
SSD_MERGE_IOU = 0.3


@dataclasses.dataclass(frozen=True)
class Pass:
    """One look of the SSD at an image: turned `angle` degrees
    (counter-clockwise) about its centre, made gray (`gray`), and/or
    zoomed out `zoom` times (centred on a black square canvas `zoom`
    times the image's longer side, so large faces come out smaller)."""

    angle: float = 0.0
    gray: bool = False
    zoom: float = 1.0


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
        if net is None:
            from ferzoo.predict.nets import SSDMobileNetV1FaceDetector

            net = SSDMobileNetV1FaceDetector.from_preset(preset)
        self.net = net
        self.min_score = float(min_score)
        self.pass_min_score = float(pass_min_score)
        self.passes = tuple(passes)
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
            several = len(self.passes) > 1
            threshold = self.pass_min_score if several else self.min_score
            found = [[] for _ in chunk]  # per image: per pass: Detections
            for spec in self.passes:
                views, inverses = zip(*(_view(rgb, spec) for rgb in chunk))
                more = self._pass(views, threshold)
                for faces, extra, inverse in zip(found, more, inverses):
                    faces.append([_rotate_back(d, inverse) for d in extra])
            if several:
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

    def _pass(self, images, threshold):
        prepared = [ssd_input(rgb) for rgb in images]
        boxes, scores = self.raw(np.stack([p[0] for p in prepared]))
        return [
            self._faces(b, s, side, threshold)
            for (_, side), b, s in zip(prepared, boxes, scores)
        ]

    def _faces(self, boxes, scores, side, threshold):
        faces = []
        for i in non_max_suppression(boxes, scores, min_score=threshold):
            y0, x0 = max(0.0, boxes[i][0]), max(0.0, boxes[i][1])
            y1, x1 = min(1.0, boxes[i][2]), min(1.0, boxes[i][3])
            box = (x0 * side, y0 * side, (x1 - x0) * side, (y1 - y0) * side)
            faces.append(Detection(box, float(scores[i])))
        return faces


def fuse_boxes(passes, merge_iou=SSD_MERGE_IOU):
    """Weighted box fusion of the `Detection`s of several passes.

    `passes` holds one list of `Detection`s per pass. Best score first,
    each detection joins the first group whose leading (best) box it
    overlaps at IoU > `merge_iou`, else leads a new group. A group
    becomes one `Detection`: the score-weighted mean of its boxes,
    scored by the sum of each pass's best score in the group divided by
    the number of passes. Faces come best score first.
    """
    found = [(d, k) for k, faces in enumerate(passes) for d in faces]
    groups = []
    for d, k in sorted(found, key=lambda item: -item[0].score):
        for group in groups:
            if xywh_iou(d.box, group[0][0].box) > merge_iou:
                group.append((d, k))
                break
        else:
            groups.append([(d, k)])
    fused = []
    for group in groups:
        weights = np.array([d.score for d, _ in group], np.float64)
        boxes = np.array([d.box for d, _ in group], np.float64)
        mean = weights @ boxes / weights.sum()
        best = {}
        for d, k in group:
            best[k] = max(best.get(k, 0.0), d.score)
        score = sum(best.values()) / len(passes)
        fused.append(Detection(tuple(float(v) for v in mean), score))
    return sorted(fused, key=lambda d: -d.score)


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
def _ssd(preset, min_score, passes, pass_min_score):
    return SSDFaceDetector(
        preset, min_score, passes=passes, pass_min_score=pass_min_score
    )


def load_detector(name, net=None):
    """The detector called `name`, or an object with `detect` /
    `detect_batch` passed through: `"ssd"` (`DEFAULT_PASSES` fused,
    mean score > 0.1), `"ssd-upright"` (face-api's own: one pass, score >
    0.5), `"haar"` or `"none"`. `net`: the SSD's net on another runtime
    (`SSDFaceDetector`'s `net`), or None for Keras'."""
    if not isinstance(name, str):
        return name
    if name in ("ssd", "ssd-upright"):
        score, passes = DEFAULT_MIN_SCORE, DEFAULT_PASSES
        if name == "ssd-upright":
            score, passes = SSD_MIN_SCORE, (Pass(),)
        per_pass = DEFAULT_PASS_MIN_SCORE if len(passes) > 1 else score
        if net is not None:
            return SSDFaceDetector(
                min_score=score,
                passes=passes,
                net=net,
                pass_min_score=per_pass,
            )
        return _ssd(SSD_PRESET, score, passes, per_pass)
    if name == "haar":
        return HaarFaceDetector()
    if name == "none":
        return WholeImage()
    raise ValueError(
        "`detector` must be one of ('ssd', 'ssd-upright', 'haar', 'none'). "
        f"Received: detector={name!r}"
    )
