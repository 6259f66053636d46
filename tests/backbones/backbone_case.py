"""Set-up shared by the backbone tests."""

import numpy as np

from tests.test_case import TestCase


class TinyBackboneTestCase(TestCase):
    """`check_tiny_backbone` runs `run_backbone_test` on a tiny variant:
    the class's `backbone_cls` with `tiny` config, then the case's."""

    backbone_cls = None
    tiny = {}

    def check_tiny_backbone(self, kwargs, size, expected_shape):
        # Sizes follow PyTorch's conv arithmetic.
        kwargs = {"image_shape": (size, size, 3), **self.tiny, **kwargs}
        images = np.random.uniform(0, 255, (2, size, size, 3))
        self.run_backbone_test(
            self.backbone_cls, kwargs, images, expected_shape
        )
