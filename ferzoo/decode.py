"""The one image decoder of ferzoo (PIL and NumPy only).

Training, evaluation, the audit and prediction all read images through
`open_image`, so a photo gives the same pixels everywhere. It lives
outside `ferzoo.data` so that prediction on a light runtime (ONNX
Runtime, LiteRT) decodes images without importing TensorFlow or Keras.
"""

import io

import numpy as np

GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def open_image(source):
    """An image as ferzoo reads it everywhere: upright, 8-bit, gray or RGB.

    The one decoder of training, evaluation, the audit and prediction:
    a path, bytes, uint8 array or PIL image becomes a PIL image in mode
    `"L"` (gray sources) or `"RGB"`:

    - turned upright by its EXIF orientation;
    - 16-bit gray (`I;16`, and `I` holding values above 255) scaled by
      255 / 65535; float (`F`) clipped to [0, 255];
    - alpha (RGBA, LA, a palette with transparency) composited over
      white;
    - palette, CMYK (JPEG included) and other modes converted to RGB.
    """
    from PIL import Image
    from PIL import ImageOps

    if isinstance(source, np.ndarray):
        image = Image.fromarray(source)
    elif isinstance(source, Image.Image):
        image = source
    elif isinstance(source, bytes):
        image = Image.open(io.BytesIO(source))
    else:
        image = Image.open(source)
    image.load()
    image = ImageOps.exif_transpose(image)
    gray = image.mode in GRAY_MODES
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, "float64")
        top = float(values.max()) if values.size else 0.0
        if image.mode.startswith("I;16") or 255 < top <= 65535:
            values = values * (255.0 / 65535.0)
        elif top > 65535:
            values = values * (255.0 / top)
        image = Image.fromarray(np.clip(values.round(), 0, 255).astype("uint8"))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    return image.convert("L" if gray else "RGB")
