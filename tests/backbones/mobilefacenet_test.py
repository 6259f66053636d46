import numpy as np
import pytest
from absl.testing import parameterized

from ferzoo.backbones import MobileFaceNetBackbone
from tests.backbones.backbone_case import TinyBackboneTestCase

TINY = {"stackwise_num_blocks": [2, 1, 1, 1, 1], "width_multiplier": 0.25}


class MobileFaceNetBackboneTest(TinyBackboneTestCase):
    backbone_cls = MobileFaceNetBackbone
    tiny = TINY

    @parameterized.named_parameters(
        ("two_stages",
         {"stackwise_expansion": [2, 2], "stackwise_num_filters": [16, 24],
          "stackwise_num_blocks": [1, 2], "stackwise_strides": [2, 1],
          "stem_filters": 16, "output_filters": 32, "width_multiplier": 1.0,
          "image_shape": (None, None, 3)},
         24, (2, 6, 6, 32)),
    )  # fmt: skip
    def test_backbone_basics(self, kwargs, size, expected_shape):
        self.check_tiny_backbone(kwargs, size, expected_shape)

    @parameterized.named_parameters(
        ("tiny", {}, 32, (2, 2, 2, 128)),
        ("tiny_odd_size", {}, 33, (2, 3, 3, 128)),
    )  # fmt: skip
    @pytest.mark.large
    def test_backbone_variants(self, kwargs, size, expected_shape):
        self.check_tiny_backbone(kwargs, size, expected_shape)

    def test_paper_config(self):
        backbone = MobileFaceNetBackbone()
        trainable = sum(np.prod(w.shape) for w in backbone.trainable_weights)
        # Conv, BN and PReLU weights up to `conv_6_sep` (no GDC, no linear).
        self.assertEqual(trainable, 911_232)
        self.assertEqual(tuple(backbone.output.shape), (None, 7, 7, 512))
        self.assertEqual(
            backbone.stage_output_names,
            ["stage1_4_add", "stage2_0_project_bn", "stage3_5_add",
             "stage4_0_project_bn", "stage5_1_add"],
        )  # fmt: skip
        for name in ("conv1_conv", "conv2_dw_conv", "stage1_0_expand_conv",
                     "stage1_0_dw_conv", "stage1_0_project_bn",
                     "conv_6_sep_prelu"):  # fmt: skip
            backbone.get_layer(name)

    def test_stage_outputs(self):
        backbone = MobileFaceNetBackbone(image_shape=(32, 32, 3), **TINY)
        shapes = [
            tuple(backbone.get_layer(n).output.shape)[1:3]
            for n in backbone.stage_output_names
        ]
        self.assertEqual(shapes, [(8, 8), (4, 4), (4, 4), (2, 2), (2, 2)])

    @parameterized.named_parameters(
        (
            "stackwise_strides",
            {"stackwise_strides": [2, 2, 1, 3, 1]},
        ),
        (
            "stackwise_expansion",
            {"stackwise_expansion": [2, 4]},
        ),
        (
            "stackwise_num_blocks",
            {"stackwise_num_blocks": [1, 1, 0, 1, 1]},
        ),
        ("width_multiplier", {"width_multiplier": 0}),
        ("output_filters", {"output_filters": -1}),
        ("image_shape", {"image_shape": (32, 32, 4)}),
    )
    def test_invalid_args(self, kwargs):
        (arg,) = kwargs
        with self.assertRaisesRegex(ValueError, f"`{arg}`"):
            MobileFaceNetBackbone(**{"image_shape": (32, 32, 3), **kwargs})

    @pytest.mark.large
    def test_forward_at_112(self):
        backbone = MobileFaceNetBackbone()
        out = backbone(np.random.uniform(0, 255, (1, 112, 112, 3)))
        self.assertEqual(tuple(out.shape), (1, 7, 7, 512))
