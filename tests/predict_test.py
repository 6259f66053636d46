import io
import json
import os
from pathlib import Path
from unittest import mock

import keras
import numpy as np
import pytest
from PIL import Image

import ferzoo
from ferzoo.errors import PresetError
from ferzoo.predict import images
from tests.test_case import TestCase
from tests.test_case import tiny_backbone

NAMES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
# Where make_photo pastes its two 96 px faces: (x, y, w, h).
PASTED = [(40, 60, 96, 96), (250, 80, 96, 96)]


def photo_parts(size):
    """make_photo's two 96 px synthetic faces, its background (a colour
    gradient, `(height, width, 3)`) and the generator of its noise."""
    faces, _ = ferzoo.data.make_synthetic_faces(
        2, image_size=96, seed=1, difficulty=0.5
    )
    width, height = size
    ramp = np.linspace(60, 160, width)[None, :, None]
    background = np.broadcast_to(ramp, (height, width, 3)) + [30, 0, -20]
    return faces, background, np.random.default_rng(0)


def make_photo(path, size=(400, 240)):
    """A photo-like RGB image with two synthetic faces pasted in.

    The background is a colour gradient with noise; the faces are
    ferzoo's procedurally drawn grey faces, tinted. Returns the array.
    """
    faces, background, rng = photo_parts(size)
    photo = background + rng.normal(0, 6, background.shape)
    for face, (x, y, w, h) in zip(faces, PASTED):
        photo[y : y + h, x : x + w] = face[..., None] * [1.0, 0.9, 0.8]
    photo = np.clip(photo, 0, 255).astype("uint8")
    Image.fromarray(photo).save(path)
    return photo


class SquashedHead(ferzoo.models.Baseline):
    """A dense head followed by tanh: pooling + dense no longer holds."""

    def classify(self, pooled, training=False):
        return keras.ops.tanh(super().classify(pooled, training))


def tiny_model(cls=ferzoo.models.Baseline, **kwargs):
    return cls(backbone=tiny_backbone(32), num_classes=7, **kwargs)


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def reference_crop(photo, box, size=32, gray=False):
    """The crop the model should see, built with PIL directly."""
    x, y, w, h = box
    crop = Image.fromarray(photo).crop((x, y, x + w, y + h))
    if gray:
        crop = crop.convert("L").convert("RGB")
    return np.asarray(crop.resize((size, size), Image.BILINEAR))


class PredictTest(TestCase):
    def test_haar_finds_pasted_faces_and_matches_model_predict(self):
        path = os.path.join(self.tmp_dir(), "photo.png")
        photo = make_photo(path)
        model = tiny_model()
        (result,) = ferzoo.predict(
            path, model=model, class_names=NAMES, detector="haar", align=False
        )
        self.assertEqual(result.status, "ok")
        self.assertEqual(result.size, (400, 240))
        self.assertEqual(len(result.faces), 2)
        for face, pasted in zip(result.faces, PASTED):
            self.assertGreater(iou(face.box, pasted), 0.6, face.box)
            expected = model.predict(
                reference_crop(photo, face.box)[None], verbose=0
            )[0]
            self.assertAllClose(face.probabilities, expected, atol=1e-5)
            self.assertEqual(face.top_class, NAMES[int(expected.argmax())])
            self.assertAlmostEqual(face.top_probability, expected.max(), 5)
        # A large photo is searched at 1280 px; boxes come back full size.
        big = np.asarray(Image.fromarray(photo).resize((1600, 960)))
        boxes = images.detect_faces(big)
        self.assertEqual(len(boxes), 2)
        for box, face in zip(boxes, result.faces):
            self.assertGreater(iou(box, [4 * v for v in face.box]), 0.9)
        # Gray crops for a gray-trained model: same as converting first.
        (gray,) = ferzoo.predict(
            path, model=model, grayscale=True, detector="haar", align=False
        )
        box = gray.faces[0].box
        expected = model.predict(
            reference_crop(photo, box, gray=True)[None], verbose=0
        )[0]
        self.assertAllClose(gray.faces[0].probabilities, expected, atol=1e-5)
        self.assertEqual(gray.faces[0].class_names[0], "class_0")

    def test_margin_and_detector_none(self):
        self.assertEqual(
            images.crop_box((10, 20, 40, 40), 0.25, 100, 100),
            (0, 10, 60, 60),
        )
        self.assertEqual(
            images.crop_box((70, 70, 40, 40), 0.25, 100, 100),
            (60, 60, 40, 40),
        )
        faces, _ = ferzoo.data.make_synthetic_faces(3, image_size=40)
        model = tiny_model()
        results = ferzoo.predict(list(faces), model=model, detector="none")
        expected = model.predict(
            np.stack(
                [
                    reference_crop(np.stack([f] * 3, -1), (0, 0, 40, 40))
                    for f in faces
                ]
            ),
            verbose=0,
        )
        got = np.stack([r.faces[0].probabilities for r in results])
        self.assertAllClose(got, expected, atol=1e-5)
        self.assertEqual(results[2].faces[0].box, (0, 0, 40, 40))
        with self.assertRaisesRegex(ValueError, "detector"):
            ferzoo.predict(faces, model=model, detector="dlib")

    def test_exif_grayscale_palette_and_rgba(self):
        tmp = self.tmp_dir()
        rng = np.random.default_rng(0)
        raw = rng.integers(0, 256, (20, 30, 3), dtype="uint8")
        exif = Image.Exif()
        exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise
        Image.fromarray(raw).save(f"{tmp}/rotated.png", exif=exif)
        upright = images.read_image(f"{tmp}/rotated.png")
        np.testing.assert_array_equal(upright, np.rot90(raw, k=-1))
        gray = raw[..., 0]
        Image.fromarray(gray).save(f"{tmp}/gray.png")
        np.testing.assert_array_equal(
            images.read_image(f"{tmp}/gray.png"), np.stack([gray] * 3, -1)
        )
        deep = (gray.astype("uint16") * 257).astype("uint16")
        Image.fromarray(deep).save(f"{tmp}/gray16.png")
        got = images.read_image(f"{tmp}/gray16.png")[..., 0].astype(int)
        want = np.round(gray * 255.0 / gray.max()).astype(int)
        self.assertLessEqual(np.abs(got - want).max(), 1)
        rgba = np.dstack([raw, np.full((20, 30), 255, "uint8")])
        rgba[0, 0, 3] = 0  # one transparent pixel becomes white
        Image.fromarray(rgba).save(f"{tmp}/alpha.png")
        got = images.read_image(f"{tmp}/alpha.png")
        np.testing.assert_array_equal(got[0, 0], [255, 255, 255])
        np.testing.assert_array_equal(got[1:], raw[1:])
        Image.fromarray(raw).quantize(16).save(f"{tmp}/palette.bmp")
        self.assertEqual(
            images.read_image(f"{tmp}/palette.bmp").shape, raw.shape
        )

    def test_no_face_corrupt_and_folders(self):
        tmp = self.tmp_dir()
        folder = os.path.join(tmp, "photos")
        os.makedirs(folder)
        make_photo(os.path.join(folder, "b_photo.webp"))
        Image.new("RGB", (120, 90), (128, 128, 128)).save(f"{folder}/a.jpg")
        with open(f"{folder}/notes.txt", "w") as f:
            f.write("not listed: folders take image extensions only")
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, "JPEG")
        with open(f"{folder}/c_truncated.jpg", "wb") as f:
            f.write(buffer.getvalue()[:300])
        with open(f"{tmp}/fake.png", "w") as f:
            f.write("hello")
        os.makedirs(f"{tmp}/empty")
        results = ferzoo.predict(
            [folder, f"{tmp}/fake.png", f"{tmp}/missing.jpg", f"{tmp}/empty"],
            model=tiny_model(),
            detector="haar",
            align=False,
        )
        by_name = {os.path.basename(r.source): r for r in results}
        self.assertEqual(
            [os.path.basename(r.source) for r in results],
            [
                "a.jpg",
                "b_photo.webp",
                "c_truncated.jpg",
                "fake.png",
                "missing.jpg",
                "empty",
            ],
        )
        self.assertEqual(by_name["a.jpg"].status, "no_face")
        self.assertEqual(len(by_name["b_photo.webp"].faces), 2)
        self.assertIn("corrupt", by_name["c_truncated.jpg"].error)
        self.assertIn("not an image", by_name["fake.png"].error)
        self.assertIn("no such file", by_name["missing.jpg"].error)
        self.assertIn("no .jpg", by_name["empty"].error)
        json.dumps([r.to_json() for r in results])

    def test_cam_shape_range_and_numpy_reference(self):
        faces, _ = ferzoo.data.make_synthetic_faces(2, image_size=32)
        model = tiny_model()
        results = ferzoo.predict(
            list(faces), model=model, detector="none", cam=True
        )
        x = np.stack([faces] * 3, -1).astype("float32")
        features = keras.ops.convert_to_numpy(model.backbone(x))
        kernel = model.classifier.kernel.numpy()
        for i, result in enumerate(results):
            face = result.faces[0]
            self.assertEqual(face.cam.shape, (32, 32))
            self.assertAlmostEqual(float(face.cam.min()), 0.0)
            self.assertAlmostEqual(float(face.cam.max()), 1.0)
            raw = features[i] @ kernel[:, face.top_index]
            raw = Image.fromarray(raw.astype("float32"))
            raw = np.asarray(raw.resize((32, 32), Image.BILINEAR))
            expected = (raw - raw.min()) / (raw.max() - raw.min())
            self.assertAllClose(face.cam, expected, atol=1e-4)
            overlay = images.cam_overlay(np.stack([faces[i]] * 3, -1), face)
            self.assertEqual(overlay.size, (192, 192))
        # Logits that are not GAP + dense: the numeric check refuses.
        squashed = tiny_model(SquashedHead)
        with self.assertRaisesRegex(ValueError, "does not support class act"):
            ferzoo.predict(
                list(faces), model=squashed, detector="none", cam=True
            )

    @pytest.mark.large
    def test_model_resolution(self):
        tmp = self.tmp_dir()
        faces, _ = ferzoo.data.make_synthetic_faces(2, image_size=32)
        x = np.stack([faces] * 3, -1)
        model = tiny_model()
        expected = model.predict(x, verbose=0)
        names = [n.upper() for n in NAMES]
        meta = {"dataset": {"name": "FER2013", "class_names": names}}
        model.save_to_preset(f"{tmp}/preset", meta)
        # A run folder: best.keras, names from the test results.
        os.makedirs(f"{tmp}/run")
        model.save(f"{tmp}/run/best.keras")
        with open(f"{tmp}/run/results.json", "w") as f:
            json.dump({"test": {"final": {"class_names": NAMES}}}, f)
        ferzoo.export.export_saved_model(model, f"{tmp}/saved")
        cases = {
            f"{tmp}/preset": (names, True),
            f"{tmp}/run": (NAMES, False),
            f"{tmp}/run/best.keras": (NAMES, False),
            f"{tmp}/saved": ([f"class_{i}" for i in range(7)], False),
        }
        for source, (want_names, gray) in cases.items():
            predictor = ferzoo.predict.load_predictor(source)
            self.assertEqual(predictor.class_names, want_names, source)
            self.assertEqual(predictor.grayscale, gray, source)
            got = predictor.predict(x)
            self.assertAllClose(got, expected, atol=1e-5, msg=source)
        self.assertIn("no class names", predictor.notes[0])
        with self.assertRaisesRegex(ValueError, "does not support"):
            predictor.check_cam()
        os.remove(f"{tmp}/preset/model.weights.h5")
        with self.assertWarnsRegex(UserWarning, "no trained weights"):
            ferzoo.predict(x, model=f"{tmp}/preset", detector="none")
        # The default preset, where none is installed.
        empty = f"{tmp}/no_presets"
        os.makedirs(empty)
        with mock.patch.object(
            ferzoo.presets, "builtin_preset_dir", lambda: Path(empty)
        ):
            with self.assertRaisesRegex(
                PresetError, "no trained model.*--model"
            ):
                ferzoo.predict.load_predictor()
        with self.assertRaisesRegex(PresetError, "2 class names"):
            ferzoo.predict.load_predictor(model, class_names=["a", "b"])
