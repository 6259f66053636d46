"""face-api's SSD face detector and landmark net, ported: parity with
the TF.js nets run in node (tests/fixtures/faceapi_ssd_reference.json,
written by scripts/faceapi_ssd_reference.mjs), and the NumPy pieces
against their definitions."""

import base64
import json

import numpy as np
import pytest

from ferzoo.predict import detect
from tests.test_case import REPO
from tests.test_case import TestCase

FIXTURE = REPO / "tests" / "fixtures" / "faceapi_ssd_reference.json"


def mulberry32(seed, shape):
    """scripts/faceapi_ssd_reference.mjs's seeded uint8 image."""
    k = np.arange(1, int(np.prod(shape)) + 1, dtype=np.uint64)
    a = ((seed + k * 0x6D2B79F5) & 0xFFFFFFFF).astype(np.uint32)
    t = (a ^ (a >> 15)) * (a | 1)
    t = (t + (t ^ (t >> 7)) * (t | 61)) ^ t
    u = (t ^ (t >> 14)).astype(np.float64) / 2**32
    return np.floor(u * 256).astype(np.uint8).reshape(shape)


def decode(entry):
    return np.frombuffer(base64.b64decode(entry["data"]), "<f4").reshape(
        entry["shape"]
    )


def reference(fixture=FIXTURE):
    """`(raw fixture, [(name, image, record)])` for a fixture's inputs:
    its seeded noise images and its photo."""
    raw = json.loads(fixture.read_text())
    out = []
    for e in raw["noise"]:
        out.append((f"seed{e['seed']}", mulberry32(e["seed"], (
            e["height"], e["width"], 3)), e))  # fmt: skip
    photo = raw["photo"]
    pixels = np.frombuffer(base64.b64decode(photo["pixels"]), np.uint8)
    out.append(
        ("photo", pixels.reshape(photo["height"], photo["width"], 3), photo)
    )
    return raw, out


class ResizeAndNMSTest(TestCase):
    def test_legacy_bilinear_against_loops(self):
        # TF's resize without half-pixel centres, written as loops.
        rng = np.random.default_rng(0)
        image = rng.uniform(0, 255, (5, 7, 3))
        out = detect.resize_bilinear_legacy(image, 8, 4)
        expected = np.zeros((8, 4, 3))
        for r in range(8):
            for c in range(4):
                y, x = r * 5 / 8, c * 7 / 4
                y0, x0 = int(y), int(x)
                y1, x1 = min(y0 + 1, 4), min(x0 + 1, 6)
                fy, fx = y - y0, x - x0
                expected[r, c] = (
                    image[y0, x0] * (1 - fy) * (1 - fx)
                    + image[y0, x1] * (1 - fy) * fx
                    + image[y1, x0] * fy * (1 - fx)
                    + image[y1, x1] * fy * fx
                )
        np.testing.assert_allclose(out, expected, rtol=1e-5)
        # Padding goes to the bottom/right; the square's side comes back.
        square, side = detect.ssd_input(np.full((2, 4, 3), 200, "uint8"), 4)
        self.assertEqual(side, 4)
        np.testing.assert_array_equal(square[:2, :, 0], 200)
        np.testing.assert_array_equal(square[2:], 0)

    def test_nms(self):
        boxes = np.array(
            [
                [0.0, 0.0, 1.0, 1.0],  # 0.9
                [0.0, 0.1, 1.0, 1.1],  # 0.8: IoU 0.82 with box 0, dropped
                [0.0, 0.6, 1.0, 1.6],  # 0.7: IoU 0.25 with box 0, kept
                [2.0, 2.0, 3.0, 3.0],  # 0.4: below the threshold
                [1.0, 1.0, 0.0, 0.0],  # 0.6: box 0 flipped, IoU 1
            ]
        )
        scores = np.array([0.9, 0.8, 0.7, 0.4, 0.6])
        self.assertEqual(detect.non_max_suppression(boxes, scores), [0, 2])
        self.assertEqual(
            detect.non_max_suppression(boxes, scores, max_results=1), [0]
        )
        kept = detect.non_max_suppression(boxes, scores, min_score=0.3)
        self.assertEqual(kept, [0, 2, 3])

    def test_turned_pass_boxes_map_back(self):
        # A point of the image, turned with the pass's own warp, lands
        # where the box centre found in the turned image maps back from.
        rgb = np.zeros((60, 100, 3), np.uint8)
        rgb[10:14, 70:74] = 255  # a bright spot centred at (72, 12)
        turned, inverse = detect._rotate(rgb, 25.0)
        ys, xs = np.nonzero(turned[..., 0] > 100)
        found = detect.Detection((xs.mean() - 5, ys.mean() - 5, 10, 10), 0.9)
        back = detect._rotate_back(found, inverse)
        x, y, w, h = back.box
        self.assertEqual((w, h), (10, 10))
        np.testing.assert_allclose([x + w / 2, y + h / 2], [72, 12], atol=1)

    def test_fuse_boxes_weighted_mean_and_mean_score(self):
        # Two passes: A (pass 0, 0.8) and B (pass 1, 0.6) overlap (IoU
        # 0.68), C (pass 0, 0.4) is elsewhere; D (pass 0, 0.3) overlaps A
        # but pass 0 already counts A's 0.8 for that face.
        a = detect.Detection((0.0, 0.0, 10.0, 10.0), 0.8)
        b = detect.Detection((2.0, 0.0, 10.0, 10.0), 0.6)
        c = detect.Detection((30.0, 0.0, 10.0, 10.0), 0.4)
        d = detect.Detection((0.0, 1.0, 10.0, 10.0), 0.3)
        fused = detect.fuse_boxes([[a, c, d], [b]], merge_iou=0.3)
        self.assertEqual(len(fused), 2)
        # Box: score-weighted mean of A, B and D; score: (0.8 + 0.6) / 2.
        x = (0.8 * 0 + 0.6 * 2 + 0.3 * 0) / 1.7
        y = (0.3 * 1) / 1.7
        np.testing.assert_allclose(fused[0].box, (x, y, 10, 10))
        self.assertAlmostEqual(fused[0].score, 0.7)
        # C: seen by one of two passes.
        np.testing.assert_allclose(fused[1].box, c.box)
        self.assertAlmostEqual(fused[1].score, 0.2)

    def test_views_map_back(self):
        rgb = np.zeros((60, 100, 3), np.uint8)
        rgb[10:14, 70:74] = (255, 128, 0)  # a spot centred at (72, 12)
        for spec in (
            detect.Pass(zoom=2.0),
            detect.Pass(-25.0, zoom=2.5),
            detect.Pass(25.0, gray=True),
        ):
            view, inverse = detect._view(rgb, spec)
            side = round(100 * spec.zoom)
            self.assertEqual(view.shape[:2], (side, side) if spec.zoom > 1
                             else (60, 100))  # fmt: skip
            ys, xs = np.nonzero(view.max(-1) > 60)
            found = detect.Detection((xs.mean() - 2, ys.mean() - 2, 4, 4), 1)
            x, y, w, h = detect._rotate_back(found, inverse).box
            np.testing.assert_allclose([x + 2, y + 2], [72, 12], atol=1)
        # Gray: ITU-R 601 luma in all three channels (OpenCV's weights).
        view, _ = detect._view(rgb, detect.Pass(gray=True))
        luma = round(0.299 * 255 + 0.587 * 128)
        np.testing.assert_allclose(view[12, 72], [luma] * 3, atol=1)

    def test_default_passes_find_what_one_pass_misses(self):
        # A stand-in net "sees" the bright square only when it is under
        # 250 px in the 512 px input, as the SSD misses FER2013's large
        # upscaled faces: the plain pass (a 320 px square) misses it, the
        # zoomed-out ones (160 px, 213 px turned) find it, and fusion
        # averages 3 passes of 0.9 over 6: 0.45.
        def net(batch):
            out = np.zeros((len(batch), 2, 5), np.float32)
            for i, image in enumerate(batch):
                ys, xs = np.nonzero(image[..., 0] > 128)
                y0, x0, y1, x1 = ys.min(), xs.min(), ys.max() + 1, xs.max() + 1
                out[i, 0, :4] = np.array([y0, x0, y1, x1]) / 512
                out[i, 0, 4] = 0.9 if max(y1 - y0, x1 - x0) < 250 else 0.05
            return out

        rgb = np.zeros((64, 64, 3), np.uint8)
        rgb[12:52, 12:52] = 255
        self.assertEqual(
            detect.load_detector("ssd-upright", net=net).detect(rgb), []
        )
        faces = detect.load_detector("ssd", net=net).detect(rgb)
        self.assertEqual(len(faces), 1)
        self.assertAlmostEqual(faces[0].score, 0.45, places=5)
        x, y, w, h = faces[0].box
        np.testing.assert_allclose([x + w / 2, y + h / 2], [32, 32], atol=1)
        self.assertTrue(40 <= w <= 54)


@pytest.mark.large
class FaceApiParityTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.detector = detect.SSDFaceDetector()
        cls.raw, cls.inputs = reference()

    def test_anchor_boxes_and_scores_match_tfjs(self):
        stride = self.raw["anchor_stride"]
        for name, image, record in self.inputs:
            square, _ = detect.ssd_input(image)
            boxes, scores = self.detector.raw(square[None])
            self.assertEqual(scores.shape[1], record["num_anchors"])
            picks = (
                (np.arange(0, scores.shape[1], stride), record["strided"]),
                (np.array(record["top"]["indices"]), record["top"]),
            )
            for idx, ref in picks:
                np.testing.assert_allclose(
                    scores[0, idx], decode(ref["scores"]), atol=1e-4,
                    err_msg=name)  # fmt: skip
                np.testing.assert_allclose(
                    boxes[0, idx], decode(ref["boxes"]), atol=1e-4,
                    err_msg=name)  # fmt: skip
            # Not a degenerate fixture: the scores spread.
            spread = np.ptp(decode(record["strided"]["scores"]))
            self.assertGreater(spread, 0.01)

    def test_located_faces_match_tfjs(self):
        _, photo, record = self.inputs[-1]
        # face-api scales the x (y) of its boxes back with the image's
        # width (height) resized to 512 and rounded to whole pixels
        # (computeReshapedDimensions); ferzoo scales with the exact ratio.
        h, w = photo.shape[:2]
        side = max(h, w)
        fix_x = round(w * 512 / side) * side / (512 * w)
        fix_y = round(h * 512 / side) * side / (512 * h)
        for threshold, expected in record["locate_faces"].items():
            detector = detect.SSDFaceDetector(min_score=float(threshold))
            found = sorted(detector.detect(photo), key=lambda d: -d.score)
            self.assertEqual(len(found), len(expected), threshold)
            for face, ref in zip(found, expected):
                self.assertAlmostEqual(face.score, ref["score"], places=4)
                ref_box = np.array(
                    [ref[k] for k in ("x", "y", "width", "height")]
                ) * [fix_x, fix_y, fix_x, fix_y]
                np.testing.assert_allclose(face.box, ref_box, atol=1e-3)
        # Grace Hopper's face is found, and only it, at face-api's 0.5.
        self.assertEqual(len(record["locate_faces"]["0.5"]), 1)

    def test_landmark_net_matches_tfjs(self):
        from ferzoo.predict.nets import FaceLandmark68Net

        _, photo, record = self.inputs[-1]
        net = FaceLandmark68Net.from_preset("face_landmark68_net")
        # face-api pads to a centred square with black, then resizes.
        h, w = photo.shape[:2]
        side = max(h, w)
        square = np.zeros((side, side, 3), "uint8")
        top, left = round((side - h) / 2), round((side - w) / 2)
        square[top : top + h, left : left + w] = photo
        crop = detect.resize_bilinear_legacy(square, 112, 112)
        points = np.asarray(net.predict(crop[None], verbose=0))
        expected = decode(record["landmark_outputs"]).reshape(1, 68, 2)
        np.testing.assert_allclose(points, expected, atol=1e-4)
