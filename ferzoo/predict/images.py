"""Images for `ferzoo.predict`: read, find faces, crop and draw."""

import functools
import pathlib

import numpy as np

from ferzoo.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Photos are scaled down to this longest side before detection (speed).
DETECT_MAX_SIDE = 1280
HAAR_FILE = "haarcascade_frontalface_default.xml"


def expand_inputs(images_or_paths):
    """`[(name, source)]` for files, folders (their images) and arrays."""
    from PIL import Image

    single = (str, pathlib.PurePath, Image.Image)
    if isinstance(images_or_paths, single) or (
        isinstance(images_or_paths, np.ndarray) and images_or_paths.ndim < 4
    ):
        images_or_paths = [images_or_paths]
    out = []
    for i, item in enumerate(images_or_paths):
        if isinstance(item, (np.ndarray, Image.Image)):
            out.append((f"<image {i}>", item))
            continue
        path = pathlib.Path(item)
        if path.is_dir():
            files = sorted(
                p
                for p in path.iterdir()
                if p.is_file()
                and p.suffix.lower() in IMAGE_EXTENSIONS
                and not p.name.startswith(".")
            )
            if not files:
                message = f"no {'/'.join(IMAGE_EXTENSIONS)} images in folder"
                out.append((str(path), DataError(message, path=path)))
            out.extend((str(p), p) for p in files)
        else:
            out.append((str(path), path))
    return out


def read_image(source):
    """Upright uint8 RGB `(H, W, 3)` from a path, PIL image or array.

    Decoded by `ferzoo.decode.open_image`, as the training data is.
    """
    from PIL import Image
    from PIL import UnidentifiedImageError

    from ferzoo.decode import open_image

    if isinstance(source, np.ndarray):
        array = np.asarray(source)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if (
            array.ndim not in (2, 3)
            or array.ndim == 3
            and array.shape[-1] not in (3, 4)
        ):
            raise DataError(
                "an image array must be (H, W), (H, W, 1), (H, W, 3) or "
                f"(H, W, 4). Received: shape={array.shape}"
            )
        image = Image.fromarray(np.clip(array, 0, 255).astype("uint8"))
    elif isinstance(source, Image.Image):
        image = source
    else:
        path = pathlib.Path(source)
        if not path.is_file():
            raise DataError("no such file", path=path)
        try:
            return np.asarray(open_image(path).convert("RGB"), dtype="uint8")
        except UnidentifiedImageError as e:
            raise DataError("not an image PIL can read", path=path) from e
        except Exception as e:  # PIL raises many types on broken files
            raise DataError(
                f"corrupt image ({type(e).__name__}: {e})", path=path
            ) from e
    return np.asarray(open_image(image).convert("RGB"), dtype="uint8")


@functools.lru_cache(maxsize=1)
def _haar_cascade():
    try:
        import cv2
    except ImportError as e:
        raise ImportError(
            "face detection needs OpenCV: pip install "
            "'opencv-python-headless<5' (or use detector='none')."
        ) from e
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + HAAR_FILE)
    if cascade.empty():
        raise RuntimeError(
            f"OpenCV has no {HAAR_FILE} in {cv2.data.haarcascades}; "
            "install opencv-python-headless 4.x."
        )
    return cascade


def detect_faces(rgb):
    """Haar-cascade face boxes `[(x, y, w, h)]`, left to right."""
    import cv2

    cascade = _haar_cascade()
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = max(gray.shape) / DETECT_MAX_SIDE
    if scale > 1:
        size = (round(gray.shape[1] / scale), round(gray.shape[0] / scale))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    scale = max(scale, 1.0)
    boxes = cascade.detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24)
    )
    boxes = [tuple(int(round(v * scale)) for v in b) for b in boxes]
    return sorted(boxes)


def crop_box(box, margin, width, height):
    """`box` grown by `margin` (a fraction of its size) on each side,
    clipped to the image."""
    x, y, w, h = box
    x0, y0 = max(0, round(x - margin * w)), max(0, round(y - margin * h))
    x1 = min(width, round(x + w + margin * w))
    y1 = min(height, round(y + h + margin * h))
    return (x0, y0, x1 - x0, y1 - y0)


def crop_face(rgb, box, size, grayscale=False):
    """The `box` region of `rgb` resized to `size` `(H, W)`, uint8 RGB."""
    from PIL import Image

    x, y, w, h = box
    face = Image.fromarray(rgb[y : y + h, x : x + w])
    if grayscale:
        face = face.convert("L")
    face = face.resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(face.convert("RGB"), dtype="uint8")


def draw_faces(rgb, faces):
    """A PIL copy of `rgb` with each face's box and top class drawn."""
    from PIL import Image
    from PIL import ImageDraw

    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    line = max(2, round(min(image.size) / 250))
    color = (230, 40, 40)
    for face in faces:
        x, y, w, h = face.box
        draw.rectangle([x, y, x + w - 1, y + h - 1], outline=color, width=line)
        label = f"{face.top_class} {face.top_probability:.2f}"
        font = _font(max(12, min(48, round(h / 7))))
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        box_h = bottom - top + 2 * line
        ty = y - box_h if y >= box_h else min(y + h, image.size[1] - box_h)
        draw.rectangle([x, ty, x + right - left + 2 * line, ty + box_h], color)
        draw.text((x + line - left, ty + line - top), label, "white", font)
    return image


def _font(size):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def cam_overlay(rgb, face, alpha=0.5, min_side=192):
    """The face's crop with its CAM drawn over it as a heat map (PIL)."""
    import matplotlib
    from PIL import Image

    if getattr(face, "transform", None) is not None:
        import cv2  # an aligned face: its crop is the warped square

        side = int(face.crop_side)
        crop = Image.fromarray(
            cv2.warpAffine(
                np.ascontiguousarray(rgb),
                face.transform,
                (side, side),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
        )
        w = h = side
    else:
        x, y, w, h = face.crop_box
        crop = Image.fromarray(rgb[y : y + h, x : x + w])
    zoom = max(1.0, min_side / max(w, h))
    size = (round(w * zoom), round(h * zoom))
    crop = np.asarray(crop.resize(size, Image.BILINEAR), "float32")
    heat = Image.fromarray(face.cam.astype("float32"))
    heat = np.clip(np.asarray(heat.resize(size, Image.BILINEAR)), 0, 1)
    colors = matplotlib.colormaps["jet"](heat)[..., :3] * 255.0
    blended = (1 - alpha) * crop + alpha * colors
    return Image.fromarray(blended.round().astype("uint8"))
