import numpy as np
import pytest
from absl.testing import parameterized

from ferzoo.backbones import SmallCNNBackbone
from tests.test_case import TestCase


class SmallCNNBackboneTest(TestCase):
    @parameterized.named_parameters(
        ("tiny_any_size",
         {"stackwise_num_filters": [8, 16], "num_convs_per_stage": 1,
          "image_shape": (None, None, 3)}, 32, (2, 16, 16, 16)),
    )  # fmt: skip
    def test_backbone_basics(self, kwargs, size, expected_shape):
        self._check_backbone(kwargs, size, expected_shape)

    def _check_backbone(self, kwargs, size, expected_shape):
        # A tiny variant; sizes follow PyTorch's conv arithmetic.
        kwargs = {"image_shape": (size, size, 3), **kwargs}
        images = np.random.uniform(0, 255, (2, size, size, 3))
        self.run_backbone_test(SmallCNNBackbone, kwargs, images, expected_shape)

    @parameterized.named_parameters(
        ("default", {}, 48, (2, 12, 12, 128)),
    )  # fmt: skip
    @pytest.mark.large
    def test_backbone_variants(self, kwargs, size, expected_shape):
        self._check_backbone(kwargs, size, expected_shape)

    @parameterized.named_parameters(
        (
            "stackwise_num_filters",
            {"stackwise_num_filters": []},
        ),
        (
            "num_convs_per_stage",
            {"num_convs_per_stage": 0},
        ),
        ("image_shape", {"image_shape": (48, 48, 1)}),
    )
    def test_invalid_args(self, kwargs):
        (arg,) = kwargs
        with self.assertRaisesRegex(ValueError, f"`{arg}`"):
            SmallCNNBackbone(**kwargs)
