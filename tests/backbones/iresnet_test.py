import keras
import numpy as np
import pytest
from absl.testing import parameterized

from ferzoo.backbones import IResNetBackbone
from tests.backbones.backbone_case import TinyBackboneTestCase

TINY = {
    "stackwise_num_filters": [8, 8, 16],
    "stackwise_num_blocks": [1, 2, 1],
    "stem_filters": 8,
}


def ir_param_count(blocks, use_squeeze_excite, filters=(64, 128, 256, 512)):
    """Trainable parameters of insightface's `Backbone` without its head."""
    count = 3 * 64 * 9 + 2 * 64 + 64  # input_layer: conv, BN, PReLU
    c = 64
    for d, n in zip(filters, blocks):
        for _ in range(n):
            count += 2 * c + c * d * 9 + d + d * d * 9 + 2 * d  # res_layer
            count += (c * d + 2 * d) if c != d else 0  # shortcut_layer
            count += 2 * d * (d // 16) if use_squeeze_excite else 0
            c = d
    return count


class IResNetBackboneTest(TinyBackboneTestCase):
    backbone_cls = IResNetBackbone
    tiny = TINY

    @parameterized.named_parameters(
        ("ir_se", {"use_squeeze_excite": True}, 33, (2, 5, 5, 16)),
    )
    def test_backbone_basics(self, kwargs, size, expected_shape):
        self.check_tiny_backbone(kwargs, size, expected_shape)

    @parameterized.named_parameters(
        ("ir", {}, 32, (2, 4, 4, 16)),
        ("any_size", {"image_shape": (None, None, 3)}, 24, (2, 3, 3, 16)),
    )
    @pytest.mark.large
    def test_backbone_variants(self, kwargs, size, expected_shape):
        self.check_tiny_backbone(kwargs, size, expected_shape)

    @pytest.mark.large
    def test_ir50(self):
        self._check_ir50(use_squeeze_excite=False)

    @pytest.mark.large
    def test_ir_se50(self):
        self._check_ir50(use_squeeze_excite=True)

    def _check_ir50(self, use_squeeze_excite):
        name = "ir_se50" if use_squeeze_excite else "ir50"
        backbone = IResNetBackbone.from_name(name)
        trainable = sum(np.prod(w.shape) for w in backbone.trainable_weights)
        expected = ir_param_count([3, 4, 14, 3], use_squeeze_excite)
        self.assertEqual(trainable, expected)
        self.assertEqual(
            trainable, 30_950_080 if use_squeeze_excite else 30_727_360
        )
        self.assertEqual(tuple(backbone.output.shape), (None, 7, 7, 512))
        shapes = [
            tuple(backbone.get_layer(n).output.shape)[1:]
            for n in backbone.stage_output_names
        ]
        self.assertEqual(
            shapes, [(56, 56, 64), (28, 28, 128), (14, 14, 256), (7, 7, 512)]
        )

    def test_layer_names_follow_insightface(self):
        backbone = IResNetBackbone(
            image_shape=(32, 32, 3), use_squeeze_excite=True, **TINY
        )
        for name in ("input_layer_conv", "input_layer_bn", "input_layer_prelu",
                     "body_0_res_bn1", "body_0_res_conv1", "body_0_res_prelu",
                     "body_0_res_conv2", "body_0_res_bn2", "body_0_se_fc1",
                     "body_0_shortcut_pool", "body_3_shortcut_conv",
                     "body_3_shortcut_bn"):  # fmt: skip
            backbone.get_layer(name)
        # PyTorch's PReLU(channels): one slope per channel, 0.25 at init.
        alpha = backbone.get_layer("body_0_res_prelu").alpha
        self.assertEqual(tuple(alpha.shape), (1, 1, 8))
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(keras.ops.multiply(alpha, 1.0)), 0.25
        )

    def test_stage_outputs(self):
        backbone = IResNetBackbone(image_shape=(32, 32, 3), **TINY)
        multi = keras.Model(
            backbone.input,
            [backbone.get_layer(n).output for n in backbone.stage_output_names],
        )
        shapes = [tuple(y.shape) for y in multi(np.zeros((1, 32, 32, 3)))]
        self.assertEqual(shapes, [(1, 16, 16, 8), (1, 8, 8, 8), (1, 4, 4, 16)])

    @parameterized.named_parameters(
        (
            "stackwise_num_blocks",
            {"stackwise_num_blocks": [1, 0, 1]},
        ),
        (
            "stackwise_num_filters",
            {"stackwise_num_filters": [8, -1, 8]},
        ),
        ("stem_filters", {"stem_filters": 0}),
        ("image_shape", {"image_shape": (32, 32, 1)}),
    )
    def test_invalid_args(self, kwargs):
        (arg,) = kwargs
        with self.assertRaisesRegex(ValueError, f"`{arg}`"):
            IResNetBackbone(**{"image_shape": (32, 32, 3), **TINY, **kwargs})
        with self.assertRaisesRegex(ValueError, "`name`"):
            IResNetBackbone.from_name("ir51")

    @pytest.mark.large
    def test_ir50_forward_at_112(self):
        backbone = IResNetBackbone.from_name("ir_se50")
        out = backbone(np.random.uniform(0, 255, (1, 112, 112, 3)))
        self.assertEqual(tuple(out.shape), (1, 7, 7, 512))
        self.assertTrue(np.isfinite(keras.ops.convert_to_numpy(out)).all())
