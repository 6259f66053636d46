import base64
import json

import keras
import numpy as np
import pytest
from absl.testing import parameterized

from ferzoo.backbones import DlibResNetBackbone
from ferzoo.backbones.dlib_resnet import DownsampleShortcutAdd
from tests.test_case import REPO
from tests.test_case import TestCase

FIXTURE = REPO / "tests" / "fixtures" / "faceapi_reference.json"


def mulberry32_pixels(seed, size):
    """scripts/faceapi_reference.mjs's seeded uint8 image, in NumPy."""
    k = np.arange(1, size * size * 3 + 1, dtype=np.uint64)
    a = ((seed + k * 0x6D2B79F5) & 0xFFFFFFFF).astype(np.uint32)
    t = (a ^ (a >> 15)) * (a | 1)
    t = (t + (t ^ (t >> 7)) * (t | 61)) ^ t
    u = (t ^ (t >> 14)).astype(np.float64) / 2**32
    return np.floor(u * 256).astype(np.uint8).reshape(size, size, 3)


def faceapi_reference(net):
    """Inputs and recorded TF.js arrays of one net of the fixture."""
    entry = json.loads(FIXTURE.read_text())[net]
    images = np.stack(
        [mulberry32_pixels(s, entry["size"]) for s in entry["seeds"]]
    )
    weights = np.arange(images[0].size) % 7 + 1
    checksums = [int((im.reshape(-1) * weights).sum()) for im in images]
    assert checksums == entry["checksums"], "input recipe drifted"
    arrays = {
        key: np.frombuffer(base64.b64decode(v["data"]), "<f4").reshape(
            v["shape"]
        )
        for key, v in entry.items()
        if isinstance(v, dict) and "data" in v
    }
    return images, arrays


def pooled_features(net, backbone_cls, preset):
    """The preset backbone's features on the inputs of `net` in the
    fixture, averaged over the map, and the fixture's arrays of `net`."""
    images, ref = faceapi_reference(net)
    backbone = backbone_cls.from_preset(preset)
    features = np.asarray(backbone.predict(images, verbose=0))
    return features.mean((1, 2)), ref


def numpy_downsample_add(x, residual):
    """face-api's residualDown join, re-derived with NumPy loops."""
    b, h, w, c = x.shape
    pooled = np.zeros((b, h // 2, w // 2, c))
    for i in range(h // 2):
        for j in range(w // 2):
            pooled[:, i, j] = x[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean(
                (1, 2)
            )
    out = np.zeros(pooled.shape[:3] + (residual.shape[-1],))
    out[..., :c] = pooled
    rh, rw = residual.shape[1:3]
    out[:, :rh, :rw] += residual
    return out


class DlibResNetBackboneTest(TestCase):
    def test_backbone_basics(self):
        images = np.random.uniform(0, 255, (2, 64, 64, 3))
        self.run_backbone_test(
            DlibResNetBackbone,
            {"image_shape": (None, None, 3), "include_last_block": False},
            images,
            (2, 1, 1, 256),
        )

    @parameterized.named_parameters(
        ("even", 6, (2, 2)), ("odd", 7, (3, 3)), ("wide", 8, (4, 3))
    )
    def test_downsample_join_matches_numpy(self, size, residual_size):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(2, size, size + 1, 3)).astype("float32")
        residual = rng.normal(size=(2, *residual_size, 6)).astype("float32")
        out = DownsampleShortcutAdd()([x, residual])
        self.assertAllClose(
            out, numpy_downsample_add(x, residual), atol=1e-5, rtol=1e-5
        )

    def test_stage_outputs(self):
        backbone = DlibResNetBackbone(image_shape=(112, 112, 3))
        shapes = [
            tuple(backbone.get_layer(n).output.shape)[1:]
            for n in backbone.stage_output_names
        ]
        self.assertEqual(
            shapes,
            [(26, 26, 32), (13, 13, 64), (6, 6, 128), (3, 3, 256),
             (1, 1, 256)],
        )  # fmt: skip
        # 29 conv layers; ~5.6 M parameters with face-api's 256 x 128 fc.
        convs = [layer for layer in backbone.layers if layer.weights]
        self.assertEqual(len(convs), 29)
        self.assertEqual(backbone.count_params() + 256 * 128, 5_607_488)

    @parameterized.named_parameters(
        ("image_shape", {"image_shape": (96, 96, 3)}),
        ("image_shape_channels", {"image_shape": (112, 112, 1)}),
        ("weights_preset", {"weights_preset": 3}),
    )
    def test_invalid_args(self, kwargs):
        (arg,) = kwargs
        with self.assertRaisesRegex(ValueError, f"`{arg}`"):
            DlibResNetBackbone(**kwargs)

    @pytest.mark.large
    def test_matches_faceapi_tfjs(self):
        # face-api's descriptor = mean over the last map @ fc (TF.js, node).
        pooled, ref = pooled_features(
            "recognition", DlibResNetBackbone, "dlib_resnet29"
        )
        fc = ref["fc_columns"]
        descriptors = pooled @ fc
        expected = ref["descriptors"][:, : fc.shape[1]]
        self.assertLess(np.abs(descriptors - expected).max(), 1e-4)
        # The two seeded inputs give different descriptors (not a
        # degenerate fixture).
        self.assertGreater(np.abs(expected[0] - expected[1]).max(), 1e-2)

    @pytest.mark.large
    def test_weights_preset_any_size_and_truncated(self):
        full = DlibResNetBackbone.from_preset("dlib_resnet29")
        cut = DlibResNetBackbone(
            image_shape=(64, 64, 3),
            include_last_block=False,
            weights_preset="dlib_resnet29",
        )
        self.assertEqual(cut.stage_output_names[-1], "conv256_2_out")
        for layer in cut.layers:
            for a, b in zip(
                layer.get_weights(), full.get_layer(layer.name).get_weights()
            ):
                np.testing.assert_array_equal(a, b)
        self.assertEqual(tuple(cut.output.shape), (None, 1, 1, 256))

    @pytest.mark.large
    def test_output_norm_standardises_and_keeps_the_weights(self):
        plain = DlibResNetBackbone(
            image_shape=(64, 64, 3),
            include_last_block=False,
            weights_preset="dlib_resnet29",
        )
        normed = DlibResNetBackbone.from_config(
            dict(plain.get_config(), output_norm=True)
        )
        self.assertEqual(normed.get_config()["output_norm"], True)
        self.assertNotIn("output_norm", plain.get_config())
        for layer in plain.layers:
            for a, b in zip(
                layer.get_weights(), normed.get_layer(layer.name).get_weights()
            ):
                np.testing.assert_array_equal(a, b)
        # Training mode: each channel standardised over the batch.
        rng = np.random.default_rng(0)
        images = rng.uniform(0, 255, (8, 64, 64, 3)).astype("float32")
        out = np.asarray(normed(images, training=True))
        raw = np.asarray(plain(images))
        expected = (raw - raw.mean((0, 1, 2))) / np.sqrt(
            raw.var((0, 1, 2)) + 1e-3
        )
        np.testing.assert_allclose(out, expected, atol=1e-3)

    def test_output_norm_momentum_moves_the_statistics_by_its_rate(self):
        backbone = DlibResNetBackbone(
            image_shape=(56, 56, 3),
            include_last_block=False,
            output_norm=True,
            output_norm_momentum=0.9,
        )
        config = backbone.get_config()
        self.assertEqual(config["output_norm_momentum"], 0.9)
        self.assertNotIn(
            "output_norm_momentum",
            DlibResNetBackbone(output_norm=True).get_config(),
        )
        restored = DlibResNetBackbone.from_config(config)
        norm = restored.get_layer("output_norm")
        pre = keras.Model(restored.input, norm.input)
        images = np.random.default_rng(1).uniform(0, 255, (4, 56, 56, 3))
        raw = np.asarray(pre(images.astype("float32")))
        restored(images.astype("float32"), training=True)
        # One step: moving mean = 0.9 * 0 + 0.1 * the batch mean.
        np.testing.assert_allclose(
            np.asarray(norm.moving_mean), 0.1 * raw.mean((0, 1, 2)), rtol=1e-4
        )
