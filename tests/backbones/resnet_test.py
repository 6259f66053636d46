import keras
import numpy as np
import pytest
from absl.testing import parameterized

from ferzoo.backbones import ResNetBackbone
from ferzoo.backbones.resnet import RESNET_CONFIGS
from tests.backbones.backbone_case import TinyBackboneTestCase

TINY = {
    "stackwise_num_filters": [8, 16],
    "stackwise_num_blocks": [1, 2],
    "stem_filters": 8,
}


class ResNetBackboneTest(TinyBackboneTestCase):
    backbone_cls = ResNetBackbone
    tiny = TINY

    @parameterized.named_parameters(
        # Sizes follow PyTorch: floor((h + 2 * pad - kernel) / stride) + 1.
        ("bottleneck_se_any_size",
         {"block_type": "bottleneck_block", "use_squeeze_excite": True,
          "image_shape": (None, None, 3)}, 40, (2, 5, 5, 64)),
    )  # fmt: skip
    def test_backbone_basics(self, kwargs, size, expected_shape):
        self.check_tiny_backbone(kwargs, size, expected_shape)

    @parameterized.named_parameters(
        ("basic_imagenet", {"block_type": "basic_block"}, 33, (2, 5, 5, 16)),
        ("basic_small_se", {"stem": "small", "use_squeeze_excite": True},
         32, (2, 16, 16, 16)),
        ("bottleneck", {"block_type": "bottleneck_block"}, 64,
         (2, 8, 8, 64)),
    )  # fmt: skip
    @pytest.mark.large
    def test_backbone_variants(self, kwargs, size, expected_shape):
        self.check_tiny_backbone(kwargs, size, expected_shape)

    def test_resnet18(self):
        # torchvision's parameter count without `fc`.
        self._check_config("resnet18", 11_176_512, 512)

    @parameterized.named_parameters(
        # torchvision's parameter counts without `fc`; SE-ResNet-50 is
        # timm's / Cadene's `se_resnet50` (28,088,024) without `fc`.
        ("resnet34", "resnet34", 21_284_672, 512),
        ("resnet50", "resnet50", 23_508_032, 2048),
        ("se_resnet50", "se_resnet50", 26_039_024, 2048),
    )
    @pytest.mark.large
    def test_standard_configs(self, name, num_params, num_features):
        self._check_config(name, num_params, num_features)

    def _check_config(self, name, num_params, num_features):
        backbone = ResNetBackbone.from_name(name)
        trainable = sum(np.prod(w.shape) for w in backbone.trainable_weights)
        self.assertEqual(trainable, num_params)
        self.assertEqual(
            tuple(backbone.output.shape), (None, 7, 7, num_features)
        )

    def test_small_stem_on_48_px(self):
        backbone = ResNetBackbone.from_name(
            "resnet18", image_shape=(48, 48, 3), stem="small"
        )
        self.assertEqual(tuple(backbone.output.shape), (None, 6, 6, 512))

    def test_layer_names_follow_torchvision(self):
        backbone = ResNetBackbone(
            image_shape=(32, 32, 3),
            block_type="bottleneck_block",
            use_squeeze_excite=True,
            **TINY,
        )
        for name in ("conv1_conv", "conv1_bn", "pool1_pool",
                     "layer1_0_conv3", "layer1_0_bn3",
                     "layer1_0_downsample_conv", "layer2_0_downsample_bn",
                     "layer2_1_se_fc1", "layer2_1_se_fc2"):  # fmt: skip
            backbone.get_layer(name)
        self.assertEqual(backbone.get_layer("conv1_bn").epsilon, 1e-5)
        with self.assertRaises(ValueError):
            backbone.get_layer("layer2_1_downsample_conv")

    def test_stage_outputs(self):
        backbone = ResNetBackbone(image_shape=(32, 32, 3), **TINY)
        multi = keras.Model(
            backbone.input,
            [backbone.get_layer(n).output for n in backbone.stage_output_names],
        )
        shapes = [tuple(y.shape) for y in multi(np.zeros((1, 32, 32, 3)))]
        self.assertEqual(shapes, [(1, 8, 8, 8), (1, 4, 4, 16)])

    @parameterized.named_parameters(
        ("block_type", {"block_type": "bottleneck"}),
        ("stem", {"stem": "cifar"}),
        (
            "stackwise_num_blocks",
            {"stackwise_num_blocks": [1]},
        ),
        (
            "stackwise_num_filters",
            {"stackwise_num_filters": []},
        ),
        ("stem_filters", {"stem_filters": 0}),
        ("image_shape", {"image_shape": (32, 32)}),
    )
    def test_invalid_args(self, kwargs):
        (arg,) = kwargs
        with self.assertRaisesRegex(ValueError, f"`{arg}`"):
            ResNetBackbone(**{"image_shape": (32, 32, 3), **TINY, **kwargs})
        with self.assertRaisesRegex(ValueError, "`name`"):
            ResNetBackbone.from_name("resnet19")

    @pytest.mark.large
    def test_full_size_forward(self):
        for name in RESNET_CONFIGS:
            backbone = ResNetBackbone.from_name(name)
            out = backbone(np.random.uniform(0, 255, (1, 224, 224, 3)))
            self.assertEqual(out.shape[:3], (1, 7, 7))
            self.assertTrue(np.isfinite(keras.ops.convert_to_numpy(out)).all())
