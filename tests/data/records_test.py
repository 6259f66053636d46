"""The one image decoder (`open_image`) on files PIL writes.

Each case is read the way training reads it (`decode_image`, used by
every reader and the streaming pipeline) and the way prediction reads it
(`ferzoo.predict.read_image`); both must give the pixels computed here
with NumPy from what was written.
"""

import numpy as np
from PIL import Image

from ferzoo.data.records import decode_image
from ferzoo.predict import read_image
from tests.test_case import TestCase


def _both(path, height, width):
    trained = decode_image(str(path), (height, width))
    predicted = read_image(str(path))
    return trained, predicted


class DecoderTest(TestCase):
    def check(self, path, expected, atol=1):
        expected = np.asarray(expected, "float64")
        if expected.ndim == 2:
            expected = np.repeat(expected[..., None], 3, axis=-1)
        trained, predicted = _both(path, *expected.shape[:2])
        np.testing.assert_allclose(trained, expected, atol=atol)
        np.testing.assert_allclose(predicted, expected, atol=atol)
        np.testing.assert_array_equal(trained, predicted)

    def test_16_bit_gray_png(self):
        values = np.linspace(0, 65535, 24 * 32).reshape(24, 32)
        path = self.tmp_dir() + "/gray16.png"
        Image.fromarray(values.astype("uint16")).save(path)
        self.check(path, values / 257.0)

    def test_rgba_png_is_put_over_white(self):
        rng = np.random.default_rng(0)
        rgb = rng.integers(0, 256, (16, 20, 3))
        alpha = rng.integers(0, 256, (16, 20, 1))
        path = self.tmp_dir() + "/rgba.png"
        rgba = np.concatenate([rgb, alpha], -1).astype("uint8")
        Image.fromarray(rgba, "RGBA").save(path)
        a = alpha / 255.0
        self.check(path, rgb * a + 255.0 * (1 - a))

    def test_palette_png(self):
        colors = np.array(
            [[200, 30, 40], [10, 220, 60], [0, 0, 255], [9, 9, 9]]
        )
        index = np.random.default_rng(1).integers(0, 4, (12, 18))
        image = Image.fromarray(index.astype("uint8"), "P")
        image.putpalette(colors.astype("uint8").ravel().tolist())
        path = self.tmp_dir() + "/palette.png"
        image.save(path)
        self.check(path, colors[index], atol=0)
        # A transparent palette entry is white, as alpha is elsewhere.
        image.save(path, transparency=3)
        expected = np.where((index == 3)[..., None], 255, colors[index])
        self.check(path, expected, atol=0)

    def test_cmyk_jpeg(self):
        # Blocks of pure inks: none (white), cyan, magenta, yellow, black.
        inks = np.array(
            [[0, 0, 0, 0], [255, 0, 0, 0], [0, 255, 0, 0], [0, 0, 255, 0],
             [0, 0, 0, 255]]
        )  # fmt: skip
        rgb = np.array(
            [[255, 255, 255], [0, 255, 255], [255, 0, 255], [255, 255, 0],
             [0, 0, 0]]
        )  # fmt: skip
        cmyk = np.repeat(np.repeat(inks[None], 16, 0), 16, 1)
        path = self.tmp_dir() + "/cmyk.jpg"
        Image.fromarray(cmyk.astype("uint8"), "CMYK").save(path, quality=95)
        self.assertEqual(Image.open(path).mode, "CMYK")
        expected = np.repeat(np.repeat(rgb[None], 16, 0), 16, 1)
        # JPEG blurs the block edges; compare the block centres.
        trained, predicted = _both(path, 16, 80)
        for got in (trained, predicted):
            np.testing.assert_allclose(
                got[4:12, 4::16][:, :5], expected[4:12, 4::16][:, :5], atol=12
            )
        np.testing.assert_array_equal(trained, predicted)

    def test_exif_rotated_jpeg_is_turned_upright(self):
        # 20 x 40 stored, EXIF orientation 6: shown rotated 90 degrees
        # clockwise, so 40 x 20.
        stored = np.zeros((20, 40), "uint8")
        stored[:, :10] = 255  # a white band at the stored left edge
        image = Image.fromarray(stored)
        exif = image.getexif()
        exif[0x0112] = 6
        path = self.tmp_dir() + "/rotated.jpg"
        image.save(path, exif=exif, quality=95)
        self.check(path, np.rot90(stored, k=-1), atol=10)
