import numpy as np
import pytest

from ferzoo.predict import align
from ferzoo.predict.pipeline import FaceCropper
from tests.test_case import TestCase


def rotation(degrees):
    t = np.radians(degrees)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


class AlignMathTest(TestCase):
    def test_similarity_inverts_a_known_pose(self):
        # Five points = the template, scaled, rotated 20 degrees and
        # shifted: the map must send them back onto the template.
        template = align.FER2013_TEMPLATE
        points = 130.0 * template @ rotation(20).T + [40.0, 25.0]
        self.assertAlmostEqual(align.eye_angle(points), 20.0, places=6)
        matrix = align.similarity(points, template, 96)
        mapped = points @ matrix[:, :2].T + matrix[:, 2]
        np.testing.assert_allclose(mapped, template * 96, atol=1e-9)
        # A map that is a rotation times a scale (no shear).
        a, b = matrix[:, 0], matrix[:, 1]
        self.assertAlmostEqual(float(a @ b), 0.0, places=9)
        self.assertAlmostEqual(np.hypot(*a), 96 / 130, places=9)

    def test_rotation_comes_from_the_eyes_only(self):
        # Moving the mouth leaves the rotation to the eye line.
        template = align.FER2013_TEMPLATE
        points = template * 100.0
        points[3:] += [6.0, 0.0]
        matrix = align.similarity(points, template, 100)
        self.assertAlmostEqual(float(matrix[1, 0]), 0.0, places=9)
        self.assertGreater(float(matrix[0, 0]), 0)

    def test_five_points(self):
        landmarks = np.arange(136, dtype=float).reshape(68, 2)
        points = align.five_points(landmarks)
        np.testing.assert_allclose(points[0], landmarks[36:42].mean(0))
        np.testing.assert_allclose(points[1], landmarks[42:48].mean(0))
        np.testing.assert_allclose(points[2:], landmarks[[30, 48, 54]])

    def test_crop_square_is_black_outside(self):
        rgb = np.full((10, 10, 3), 200, np.uint8)
        crop = align.crop_square(rgb, (-10, 0, 20, 20), 20)
        self.assertEqual(crop.shape, (20, 20, 3))
        np.testing.assert_array_equal(crop[:10, :8], 0)
        np.testing.assert_array_equal(crop[:10, 12:20], 200)


@pytest.mark.large
class AlignFaceTest(TestCase):
    def test_a_tilted_face_comes_out_upright(self):
        import cv2
        import matplotlib.cbook

        from ferzoo.predict.images import read_image

        rgb = read_image(
            matplotlib.cbook.get_sample_data(
                "grace_hopper.jpg", asfileobj=False
            )
        )
        rgb = cv2.resize(rgb, (256, 300), interpolation=cv2.INTER_AREA)
        cropper = FaceCropper("ssd", True, 0.0, (112, 112), True)
        ((upright, _),) = cropper.faces([rgb])[0]
        self.assertLess(abs(upright.angle), 8)
        big = cv2.copyMakeBorder(
            rgb, 100, 100, 100, 100, cv2.BORDER_CONSTANT, value=(128,) * 3
        )
        h, w = big.shape[:2]
        for degrees in (-25, 25):
            # cv2 turns the image counter-clockwise for positive angles,
            # so the eye line then tilts by -degrees (y down).
            m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
            turned = cv2.warpAffine(big, m, (w, h), borderValue=(128,) * 3)
            faces = cropper.faces([turned])[0]
            self.assertEqual(len(faces), 1, degrees)
            face, crop = faces[0]
            self.assertAlmostEqual(face.angle, upright.angle - degrees, delta=6)
            self.assertEqual(crop.shape, (112, 112, 3))
            # The aligned crop's own landmarks have level eyes.
            marks = cropper.aligner.landmarks(
                face_crop := cv2.warpAffine(
                    turned, face.transform, (face.crop_side,) * 2
                ),
                [(0, 0, *face_crop.shape[:2][::-1])],
            )[0]
            self.assertLess(abs(align.eye_angle(align.five_points(marks))), 5)
