"""Box helpers of the face detectors (`ferzoo.predict.detect`).

The SSD's and BlazeFace's input (`ssd_input`: padded to a square at the
bottom/right, resized like TF.js), face-api's IoU and greedy non-maximum
suppression on `(ymin, xmin, ymax, xmax)` boxes, and the IoU of
`(x, y, w, h)` boxes.
"""

import numpy as np

SSD_IOU = 0.5
SSD_MAX_RESULTS = 100


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


def xywh_iou(a, b):
    """IoU of two `(x, y, w, h)` boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    union = aw * ah + bw * bh - w * h
    return w * h / union if union > 0 else 0.0
