"""MediaPipe's BlazeFace, ported: parity with the TF.js graph model run in
node as @vladmandic/human runs it (tests/fixtures/blazeface_reference.json,
written by scripts/blazeface_reference.mjs), and the anchors, decoding and
the SSD + BlazeFace vote against their definitions."""

import numpy as np
import pytest

from ferzoo.predict import blazeface
from ferzoo.predict import detect
from tests.predict_detect_test import decode
from tests.predict_detect_test import reference
from tests.test_case import REPO
from tests.test_case import TestCase

FIXTURE = REPO / "tests" / "fixtures" / "blazeface_reference.json"


class AnchorsAndDecodingTest(TestCase):
    def test_anchors_follow_humans_loops(self):
        # human's generateAnchors(256): strides 16 and 32, 2 and 6
        # anchors per cell, rows (y) outer, columns (x) inner.
        expected = []
        for stride, per_cell in ((16, 2), (32, 6)):
            for gy in range(256 // stride):
                for gx in range(256 // stride):
                    centre = [stride * (gx + 0.5), stride * (gy + 0.5)]
                    expected.extend([centre] * per_cell)
        np.testing.assert_array_equal(
            blazeface.blazeface_anchors(), np.array(expected)
        )

    def test_decoder_against_numpy(self):
        rng = np.random.default_rng(0)
        raw = rng.normal(0, 20, (2, 896, 17)).astype("float32")
        boxes, scores, points = (
            np.asarray(v) for v in blazeface.BlazeFaceDecoder()(raw)
        )
        anchors = blazeface.blazeface_anchors()
        cx, cy = raw[..., 1] + anchors[:, 0], raw[..., 2] + anchors[:, 1]
        w, h = raw[..., 3], raw[..., 4]
        expected = np.stack(
            [cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], -1
        )
        np.testing.assert_allclose(boxes, expected / 256, atol=1e-5)
        np.testing.assert_allclose(scores, 1 / (1 + np.exp(-raw[..., 0])),
                                   rtol=1e-5)  # fmt: skip
        # keypoint 3 is columns 11 (x) and 12 (y)
        np.testing.assert_allclose(
            points[:, :, 3], (raw[..., 11:13] + anchors) / 256, atol=1e-5
        )

    def test_channel_pad_appends_zeros(self):
        x = np.arange(24, dtype="float32").reshape(1, 2, 3, 4)
        out = np.asarray(blazeface.ChannelPad(3)(x))
        self.assertEqual(out.shape, (1, 2, 3, 7))
        np.testing.assert_array_equal(out[..., :4], x)
        np.testing.assert_array_equal(out[..., 4:], 0)

    def test_blazeface_box_into_ssd_framing(self):
        face = detect.Detection((10.0, 20.0, 40.0, 50.0), 0.7)
        out = detect._blazeface_to_ssd(face, (0.5, 2.0, 0.25, -0.1))
        # centre (30, 45) + (0.25 * 40, -0.1 * 50); size (20, 100)
        np.testing.assert_allclose(out.box, (30.0, -10.0, 20.0, 100.0))
        self.assertEqual(out.score, 0.7)


class VoteTest(TestCase):
    def test_gray_only_boxes_need_blazeface(self):
        passes = (
            detect.Pass(),
            detect.Pass(gray=True),
            detect.Pass(net="blazeface"),
        )
        box = (0.0, 0.0, 10.0, 10.0)
        elsewhere = (50.0, 0.0, 10.0, 10.0)
        det = detect.Detection
        vote = detect.Vote(0.05, 0.1, 0.3)
        # Only the gray pass (0.4): ssd mean 0.2, colour 0: dropped.
        self.assertEqual(vote.select([[], [det(box, 0.4)], []], passes), [])
        # ... unless BlazeFace agrees (0.5 > 0.3): kept, scored 0.2.
        kept = vote.select(
            [[], [det(box, 0.4)], [det((1.0, 0.0, 10.0, 10.0), 0.5)]],
            passes,
        )
        self.assertEqual(len(kept), 1)
        self.assertAlmostEqual(kept[0].score, 0.2)
        # The box is the SSD's, not BlazeFace's.
        self.assertEqual(kept[0].box, box)
        # Colour 0.3 > 0.1: kept without BlazeFace; BlazeFace alone
        # elsewhere (ssd mean 0): dropped.
        kept = vote.select([[det(box, 0.3)], [], [det(elsewhere, 0.9)]], passes)
        self.assertEqual([d.box for d in kept], [box])
        # BlazeFace rescues a face the SSD scores low (0.08 in both
        # passes: mean and colour 0.08 <= 0.1, above 0.05).
        low = [[det(box, 0.08)], [det(box, 0.08)]]
        self.assertEqual(len(vote.select(low + [[det(box, 0.6)]], passes)), 1)
        self.assertEqual(vote.select(low + [[det(box, 0.2)]], passes), [])
        self.assertEqual(vote.select(low + [[]], passes), [])


@pytest.mark.large
class BlazeFaceParityTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.net = blazeface.BlazeFaceNet.from_preset("blazeface_face")
        cls.raw, cls.inputs = reference(FIXTURE)

    def outputs(self, image):
        square, _ = detect.ssd_input(image, 256, exact=True)
        out = self.net.predict_on_batch(square[None])
        return {k: np.asarray(v)[0] for k, v in out.items()}

    def test_scores_boxes_keypoints_match_tfjs(self):
        stride = self.raw["anchor_stride"]
        for name, image, record in self.inputs:
            out = self.outputs(image)
            self.assertEqual(len(out["scores"]), record["num_anchors"])
            picks = (
                (np.arange(0, 896, stride), record["strided"]),
                (np.array(record["top"]["indices"]), record["top"]),
            )
            for idx, ref in picks:
                np.testing.assert_allclose(
                    out["scores"][idx], decode(ref["scores"]), atol=1e-4,
                    err_msg=name)  # fmt: skip
                # human's [x0, y0, x1, y1] in input pixels
                xyxy = decode(ref["boxes_xyxy_px"]) / 256
                np.testing.assert_allclose(
                    out["boxes"][idx], xyxy[:, [1, 0, 3, 2]], atol=1e-4,
                    err_msg=name)  # fmt: skip
                np.testing.assert_allclose(
                    out["keypoints"][idx], decode(ref["keypoints_px"]) / 256,
                    atol=1e-4, err_msg=name)  # fmt: skip
            self.assertGreater(np.ptp(decode(record["strided"]["scores"])),
                               0.01)  # fmt: skip

    def test_nms_and_photo_face_match_tfjs(self):
        _, photo, record = self.inputs[-1]
        out = self.outputs(photo)
        nms = record["nms"]
        # tf.image.nonMaxSuppression (IoU 0.1, score 0.2): the same kept
        # anchors as ferzoo's face-api NMS at those settings.
        kept = detect.non_max_suppression(
            out["boxes"], out["scores"], nms["max"], nms["iou"],
            nms["min_score"])  # fmt: skip
        self.assertEqual(kept, nms["indices"])
        # One face at score > 0.5: Grace Hopper's, in pixels of the photo.
        det = detect.load_detector("blazeface")
        faces = det.detect(photo)
        self.assertEqual(len(faces), 1)
        top = record["top"]
        ref = decode(top["boxes_xyxy_px"])[0] * max(photo.shape[:2]) / 256
        found = (ref[0], ref[1], ref[2] - ref[0], ref[3] - ref[1])
        mapped = detect._blazeface_to_ssd(detect.Detection(found, 1.0))
        np.testing.assert_allclose(faces[0].box, mapped.box, atol=0.05)
