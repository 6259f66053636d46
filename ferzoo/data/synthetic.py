"""The embedded default data set: procedurally drawn expression faces.

Faces are drawn in code (no files) with vectorised numpy, so the package
can train and test without any downloaded data. Each of the 7 classes
(FER2013 order) sets mean brow, eye and mouth parameters; every sample
adds per-face jitter, identity (face shape, eye spacing, skin tone), pose
(shift, rotation, scale), a lighting gradient and pixel noise. Angry and
disgust, fear and surprise, and sad and neutral overlap on purpose, so a
small CNN learns the set well but not perfectly.
"""

import numpy as np

from ferzoo.data.readers import FER2013_CLASS_NAMES

SYNTHETIC_CLASS_NAMES = list(FER2013_CLASS_NAMES)

# Per-class means of: brow height (up is negative y), brow tilt (inner end
# lower for > 0), eye openness, mouth curvature (corners up for > 0),
# mouth openness, mouth half-width.
_PARAM_NAMES = ["brow_y", "brow_tilt", "eye_open", "curve", "open", "width"]
_CLASS_MEANS = np.array(
    [
        # brow_y brow_tilt eye_open curve  open   width
        [-0.30, 0.080, 0.55, -0.04, 0.00, 0.26],  # angry
        [-0.32, 0.050, 0.50, -0.10, 0.03, 0.22],  # disgust
        [-0.44, -0.060, 1.05, -0.05, 0.08, 0.28],  # fear
        [-0.37, 0.000, 0.75, 0.13, 0.04, 0.33],  # happy
        [-0.37, 0.000, 0.80, 0.00, 0.00, 0.25],  # neutral
        [-0.39, -0.070, 0.70, -0.09, 0.00, 0.24],  # sad
        [-0.48, -0.015, 1.15, 0.00, 0.15, 0.17],  # surprise
    ],
    "float32",
)
_JITTER_STD = np.array([0.030, 0.030, 0.12, 0.035, 0.025, 0.030], "float32")


def _soft(d, edge):
    """1 inside (d < 0), 0 outside, with a linear ramp `edge` wide."""
    return np.clip(0.5 - d / edge, 0.0, 1.0)


def _segment_distance(x, y, x0, y0, x1, y1):
    """Distance from points (x, y) to segments (x0, y0)-(x1, y1)."""
    dx, dy = x1 - x0, y1 - y0
    t = ((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy + 1e-8)
    t = np.clip(t, 0.0, 1.0)
    return np.hypot(x - x0 - t * dx, y - y0 - t * dy)


def _draw(labels, image_size, rng, difficulty):
    n = labels.size
    s = image_size

    def col(values):
        return np.asarray(values, "float32").reshape(n, 1, 1)

    def normal(std):
        return col(rng.normal(0.0, std, n))

    params = (
        _CLASS_MEANS[labels]
        + difficulty
        * rng.normal(0.0, 1.0, (n, len(_PARAM_NAMES))).astype("float32")
        * _JITTER_STD
    )
    brow_y, tilt, eye_open, curve, mouth_open, width = (
        col(params[:, i]) for i in range(len(_PARAM_NAMES))
    )
    mouth_open = np.maximum(mouth_open, 0.0)
    eye_open = np.clip(eye_open, 0.25, 1.5)
    width = np.clip(width, 0.1, 0.45)

    # Pose: grid in [-1, 1], mapped into face coordinates (u, v).
    grid = (np.arange(s, dtype="float32") + 0.5) / s * 2.0 - 1.0
    gy, gx = np.meshgrid(grid, grid, indexing="ij")
    gx, gy = gx[None], gy[None]
    jitter = difficulty * 0.5 + 0.5
    angle = normal(0.12 * jitter)
    scale = col(rng.uniform(0.85, 1.05, n))
    x = (gx - normal(0.06 * jitter)) / scale
    y = (gy - normal(0.06 * jitter)) / scale
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * x + sin * y, -sin * x + cos * y
    edge = 2.5 / s / scale

    # Identity.
    face_w = col(rng.uniform(0.62, 0.78, n))
    face_h = col(rng.uniform(0.82, 0.95, n))
    eye_x = col(rng.uniform(0.24, 0.33, n))
    eye_y = col(rng.uniform(-0.20, -0.12, n))
    mouth_y = col(rng.uniform(0.38, 0.48, n))
    skin = col(rng.uniform(0.55, 0.85, n))
    background = col(rng.uniform(0.05, 0.45, n))
    feature = skin * col(rng.uniform(0.15, 0.4, n))

    face = _soft(np.hypot(u / face_w, v / face_h) - 1.0, edge * 2)
    img = background + (skin - background) * face

    brow = np.zeros_like(img)
    for side in (-1.0, 1.0):
        inner_x, outer_x = side * 0.08, side * (eye_x + 0.16)
        d = _segment_distance(
            u, v, inner_x, brow_y + tilt, outer_x, brow_y - tilt
        )
        brow = np.maximum(brow, _soft(d - 0.035, edge))

    eyes = np.zeros_like(img)
    ry = 0.07 * eye_open
    for side in (-1.0, 1.0):
        r = np.hypot((u - side * eye_x) / 0.11, (v - eye_y) / ry)
        eyes = np.maximum(eyes, _soft(r - 1.0, edge / ry))

    t = np.clip(u / width, -1.0, 1.0)
    inside = _soft(np.abs(u) - width, edge)
    centre = mouth_y - curve * t * t
    half = 0.022 + mouth_open * (1.0 - t * t)
    mouth = inside * _soft(np.abs(v - centre) - half, edge)

    marks = np.maximum(np.maximum(brow, eyes), mouth) * face
    img = img + (feature - img) * marks

    # Lighting gradient and pixel noise.
    light_angle = col(rng.uniform(0.0, 2 * np.pi, n))
    strength = col(rng.uniform(0.0, 0.25 * jitter, n))
    img = img + strength * (np.cos(light_angle) * gx + np.sin(light_angle) * gy)
    img = img * col(rng.uniform(0.8, 1.2, n))
    img = img + rng.normal(0.0, 0.04 * jitter, img.shape).astype("float32")
    return np.clip(img * 255.0, 0, 255).round().astype("uint8")


def make_synthetic_faces(
    num_samples, image_size=48, seed=0, difficulty=1.0, chunk_size=2048
):
    """Draw balanced grayscale expression faces in 7 classes.

    Labels follow `SYNTHETIC_CLASS_NAMES` (FER2013 order: angry, disgust,
    fear, happy, neutral, sad, surprise) and cycle through the classes,
    then are shuffled, so every class has `num_samples // 7` or one more
    samples. The same arguments always give the same images.

    Args:
        num_samples: int. Number of images.
        image_size: int. Height and width in pixels. Defaults to `48`.
        seed: int. Seed of `np.random.default_rng`. Defaults to `0`.
        difficulty: float. Scales the within-class jitter, pose and
            noise; `0` draws each class's mean face. Defaults to `1.0`.
        chunk_size: int. Images drawn per vectorised step (bounds
            memory). Defaults to `2048`.

    Returns:
        A tuple `(images, labels)`: uint8 `(num_samples, H, W)` and int32
        `(num_samples,)`.

    Example:
    >>> import ferzoo.data
    >>> images, labels = ferzoo.data.make_synthetic_faces(14, image_size=32)
    >>> images.shape, images.dtype.name, sorted(set(labels.tolist()))
    ((14, 32, 32), 'uint8', [0, 1, 2, 3, 4, 5, 6])
    """
    if int(num_samples) < 0:
        raise ValueError(
            f"`num_samples` must be >= 0. Received: num_samples={num_samples}"
        )
    if int(image_size) < 8:
        raise ValueError(
            f"`image_size` must be >= 8. Received: image_size={image_size}"
        )
    if difficulty < 0:
        raise ValueError(
            f"`difficulty` must be >= 0. Received: difficulty={difficulty}"
        )
    num_samples, image_size = int(num_samples), int(image_size)
    rng = np.random.default_rng(seed)
    num_classes = len(SYNTHETIC_CLASS_NAMES)
    labels = np.arange(num_samples, dtype="int32") % num_classes
    labels = rng.permutation(labels).astype("int32")
    images = np.empty((num_samples, image_size, image_size), "uint8")
    for start in range(0, num_samples, chunk_size):
        stop = min(start + chunk_size, num_samples)
        images[start:stop] = _draw(
            labels[start:stop], image_size, rng, difficulty
        )
    return images, labels
