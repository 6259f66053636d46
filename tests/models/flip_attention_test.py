"""The flip-attention branch DacFER and AFCN share (flip_attention.py).

Each method's file checks its loss against NumPy; here, what holds for
both: a flip-equivariant network has zero consistency, serving runs no
flip branch, and a short fit lowers the consistency without shrinking
the classifier.
"""

import numpy as np
from absl.testing import parameterized

from ferzoo.models import AFCN
from ferzoo.models import DacFER
from tests.models.afcn_test import glorot_kernel
from tests.test_case import MethodTestCase
from tests.test_case import noisy_synthetic
from tests.test_case import raw_outputs
from tests.test_case import symmetrize_kernels


def flip_model(cls, kwargs):
    if cls is DacFER:
        kwargs = {**kwargs, "attention_reduction": 4}
    model = cls(**kwargs)
    if cls is AFCN:
        glorot_kernel(model)  # a zero classifier has zero maps
    return model


class FlipAttentionTest(MethodTestCase):
    @parameterized.parameters(DacFER, AFCN)
    def test_consistency_zero_for_flip_symmetric_model(self, cls):
        model = flip_model(cls, self.kwargs)
        x, y = self.data
        ids = x["sample_ids"]
        _, terms = self.loss_of(model, raw_outputs(model, x), y, ids, False)
        self.assertGreater(terms["consistency"], 1e-5)
        symmetrize_kernels(model)
        _, terms = self.loss_of(model, raw_outputs(model, x), y, ids, False)
        self.assertLess(terms["consistency"], 1e-9)
        # Serving images alone runs no flip branch.
        self.assertNotIn("cam", model(x["images"]))

    @parameterized.parameters(DacFER, AFCN)
    def test_short_fit_lowers_consistency(self, cls):
        x, y = noisy_synthetic()
        kwargs = {**self.kwargs, "num_samples": len(y)}
        if cls is AFCN:
            kwargs["warmup_epochs"] = 2
        model = flip_model(cls, kwargs)
        norm = np.linalg.norm(model.classifier.kernel.numpy())
        history = model.fit(x, y, batch_size=32, epochs=4, verbose=0).history
        consistency = history["loss_consistency"]
        self.assertLess(consistency[-1], 0.5 * consistency[0], consistency)
        # Not by shrinking the head: the maps do not train the kernel, so
        # its norm does not collapse.
        after = np.linalg.norm(model.classifier.kernel.numpy())
        self.assertGreater(after, 0.9 * norm, (norm, after))
