"""Face alignment for `ferzoo.predict`: eyes level, FER2013's framing.

`FaceAligner` finds 68 landmarks in each detected face with face-api's
landmark net (`ferzoo.predict.nets.FaceLandmark68Net`, preset
`face_landmark68_net`; its input is the square around the detector's
box). In `"level"` mode (the default) it turns the face's crop, framed
as without alignment (Haar's box, the SSD's box reframed to FER2013's
crops, the whole image for `detector="none"`), about its centre until the
eye line is level: the framing stays the one the model was trained on,
only the tilt goes. In `"template"` mode it maps five points (eye
centres, nose tip, mouth corners) onto `FER2013_TEMPLATE`, their mean
place in FER2013's training crops (`scripts/calibrate_framing.py`), with
a similarity transform; on FER2013 PrivateTest that mode costs accuracy
and most of disgust (docs/cli.md), so it is not the default.
"""

import dataclasses
import functools

import numpy as np

LANDMARK_PRESET = "face_landmark68_net"
# Five points (x, y) in a square crop of side 1, eyes level: left eye
# centre (points 36-41), right eye centre (42-47), nose tip (30), left
# and right mouth corners (48, 54). Mean over 2,000 FER2013 training
# faces (scripts/calibrate_framing.py --template; their eye lines are
# tilted by -1.1 degrees on average, sd 12.9), levelled.
FER2013_TEMPLATE = np.array(
    [
        [0.3163, 0.3646],
        [0.6647, 0.3646],
        [0.4856, 0.5763],
        [0.3552, 0.7382],
        [0.6332, 0.7386],
    ]
)
# Crops of aligned faces are at least / at most this many pixels wide
# before the classifier's own resize.
MIN_CROP, MAX_CROP = 48, 448


def five_points(landmarks):
    """`(5, 2)` eye centres, nose tip and mouth corners of 68 points."""
    landmarks = np.asarray(landmarks, np.float64)
    return np.stack(
        [
            landmarks[36:42].mean(0),
            landmarks[42:48].mean(0),
            landmarks[30],
            landmarks[48],
            landmarks[54],
        ]
    )


def eye_angle(points):
    """Degrees the eye line (left to right eye centre) is rotated by,
    clockwise in image coordinates (y down)."""
    (lx, ly), (rx, ry) = points[0], points[1]
    return float(np.degrees(np.arctan2(ry - ly, rx - lx)))


def similarity(points, template, side):
    """The 2 x 3 affine map of image points onto `template * side`.

    Rotation: the eye line of `points` onto the template's (level).
    Scale and shift: least squares over the five points given that
    rotation.
    """
    points = np.asarray(points, np.float64)
    target = np.asarray(template, np.float64) * side
    angle = np.radians(eye_angle(points) - eye_angle(target))
    cos, sin = np.cos(-angle), np.sin(-angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    rotated = points @ rot.T
    p = rotated - rotated.mean(0)
    q = target - target.mean(0)
    scale = float((p * q).sum() / max((p * p).sum(), 1e-12))
    shift = target.mean(0) - scale * rotated.mean(0)
    return np.hstack([scale * rot, shift[:, None]])


def square_around(box, scale=1.0):
    """The square `(x, y, side, side)` centred on `box`, `scale` times
    its longer side (floats)."""
    x, y, w, h = box
    side = max(w, h) * scale
    return (x + w / 2 - side / 2, y + h / 2 - side / 2, side, side)


def crop_square(rgb, square, size):
    """The `square` region of `rgb` resized to `size` x `size` (black
    outside the image), as a float32 array."""
    import cv2

    x, y, side, _ = square
    k = size / max(side, 1e-6)
    matrix = np.array([[k, 0, -x * k], [0, k, -y * k]], np.float64)
    flags = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(
        np.ascontiguousarray(rgb),
        matrix,
        (size, size),
        flags=flags,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    ).astype(np.float32)


@dataclasses.dataclass
class Alignment:
    """An aligned face: the crop, its map from the image, the landmarks."""

    crop: np.ndarray  # uint8 (side, side, 3)
    transform: np.ndarray  # 2 x 3, image -> crop pixels
    landmarks: np.ndarray  # (68, 2) image pixels
    angle: float  # degrees the face was rotated by (eye line)

    def crop_box(self):
        """The axis-aligned box `(x, y, w, h)` of the crop in the image."""
        side = self.crop.shape[0]
        inverse = np.linalg.inv(np.vstack([self.transform, [0, 0, 1]]))
        corners = np.array([[0, 0, 1], [side, 0, 1], [0, side, 1],
                            [side, side, 1]]) @ inverse[:2].T  # fmt: skip
        x0, y0 = corners.min(0)
        x1, y1 = corners.max(0)
        return (int(round(x0)), int(round(y0)), int(round(x1 - x0)),
                int(round(y1 - y0)))  # fmt: skip


class FaceAligner:
    """Landmarks, then a warp onto FER2013's framing (module docstring).

    Args:
        preset: str. The landmark net's preset. Defaults to
            `"face_landmark68_net"`.
        template: array `(5, 2)`. Where the five points go in a crop of
            side 1. Defaults to `FER2013_TEMPLATE`.
        batch_size: int. Faces per landmark forward pass.
        net: callable or None. The landmark net run on another runtime:
            float32 crops `(batch, 112, 112, 3)` -> `(batch, 68, 2)` (an
            ONNX / LiteRT export's `face_net("landmarks")`). Defaults to
            the Keras net of `preset`.
    """

    def __init__(
        self,
        preset=LANDMARK_PRESET,
        mode="level",
        template=FER2013_TEMPLATE,
        batch_size=32,
        net=None,
    ):
        if mode not in ("level", "template"):
            raise ValueError(
                f"`mode` must be 'level' or 'template'. Received: mode={mode!r}"
            )
        self.mode = mode
        if net is None:
            from ferzoo.predict.nets import FaceLandmark68Net

            net = FaceLandmark68Net.from_preset(preset)
        self.net = net
        self.template = np.asarray(template, np.float64)
        self.batch_size = int(batch_size)

    def landmarks(self, rgb, boxes):
        """`(len(boxes), 68, 2)` landmarks in image pixels."""
        return self.landmarks_many([(rgb, boxes)])[0]

    def landmarks_many(self, pairs):
        """`landmarks` of each `(rgb, boxes)` pair, batched together."""
        squares, crops, counts = [], [], []
        for rgb, boxes in pairs:
            counts.append(len(boxes))
            for box in boxes:
                squares.append(square_around(box))
                crops.append(crop_square(rgb, squares[-1], 112))
        if not crops:
            return [np.zeros((0, 68, 2)) for _ in pairs]
        crops = np.stack(crops)
        run = getattr(self.net, "predict_on_batch", self.net)
        points = np.concatenate(
            [
                np.asarray(run(crops[i : i + self.batch_size]))
                for i in range(0, len(crops), self.batch_size)
            ]
        ).astype(np.float64)
        sides = np.array([s[2] for s in squares])[:, None, None]
        origins = np.array([s[:2] for s in squares])[:, None, :]
        points = points * sides + origins
        return np.split(points, np.cumsum(counts)[:-1])

    def align(self, rgb, boxes, frames=None, template=None):
        """An `Alignment` per box; see `align_many`."""
        frames = None if frames is None else [frames]
        return self.align_many([(rgb, boxes)], frames, template)[0]

    def align_many(self, pairs, frames=None, template=None):
        """`Alignment`s of each `(rgb, boxes)` pair, landmarks batched.

        `"level"` mode turns each frame (a square `(x, y, side, side)`
        per box, the crop without alignment; default the square around
        the box) about its centre so the eyes are level. `"template"`
        mode maps the five points onto `template` (default the
        aligner's) instead.
        """
        template = self.template if template is None else template
        marks = self.landmarks_many(pairs)
        if frames is None:
            frames = [[square_around(b) for b in boxes] for _, boxes in pairs]
        out = []
        for (rgb, _), image_marks, image_frames in zip(pairs, marks, frames):
            if self.mode == "template":
                out.append([self._warp(rgb, m, template) for m in image_marks])
            else:
                out.append(
                    [
                        self._level(rgb, m, f)
                        for m, f in zip(image_marks, image_frames)
                    ]
                )
        return out

    def _level(self, rgb, landmarks, frame):
        import cv2

        points = five_points(landmarks)
        angle = eye_angle(points)
        x, y, side_in, _ = frame
        side = int(np.clip(round(side_in), MIN_CROP, MAX_CROP))
        cx, cy = x + side_in / 2, y + side_in / 2
        # Counter-clockwise by the eye line's clockwise tilt, about the
        # frame's centre, which lands on the crop's centre.
        matrix = cv2.getRotationMatrix2D((cx, cy), angle, side / side_in)
        matrix[:, 2] += (side / 2 - cx, side / 2 - cy)
        crop = cv2.warpAffine(
            np.ascontiguousarray(rgb),
            matrix,
            (side, side),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        return Alignment(crop, matrix, landmarks, angle)

    def _warp(self, rgb, landmarks, template):
        import cv2

        points = five_points(landmarks)
        unit = similarity(points, template, 1.0)
        # The crop's side in source pixels: 1 / the map's scale.
        scale = float(np.hypot(*unit[:, 0]))
        side = int(np.clip(round(1 / max(scale, 1e-6)), MIN_CROP, MAX_CROP))
        matrix = similarity(points, template, side)
        crop = cv2.warpAffine(
            np.ascontiguousarray(rgb),
            matrix,
            (side, side),
            flags=cv2.INTER_AREA if side * scale < 1 else cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        return Alignment(crop, matrix, landmarks, eye_angle(points))


@functools.lru_cache(maxsize=4)
def _keras_aligner(preset, mode):
    return FaceAligner(preset, mode)


def default_aligner(preset=LANDMARK_PRESET, mode="level", net=None):
    """The aligner in `mode`: with the Keras net of `preset` (cached), or
    with `net` run on another runtime (`FaceAligner`'s `net`)."""
    if net is not None:
        return FaceAligner(preset, mode, net=net)
    return _keras_aligner(preset, mode)
