"""DacFER and AFCN against the Baseline in the same short fit.

The flip-consistency loss can be lowered by shrinking the classifier
kernel or the features instead of learning; these fits check the kernel
keeps its norm and compare held-out accuracy with a Baseline trained on
the same noisy synthetic faces, seed and recipe.

Measured state (docs/methods/dacfer.md and afcn.md, "Consistency scale"
and "The stall"): trained from scratch, both lag the Baseline (here,
JAX: Baseline 0.475, DacFER 0.348, AFCN 0.185; TensorFlow: 0.542,
0.346, 0.208; with AFCN's zero-initialised classifier, JAX: Baseline
0.451, DacFER 0.357, AFCN 0.163; TensorFlow: 0.560, 0.346, 0.158).
The accuracy comparison is not asserted (an xfail that passes the day
the methods catch up cannot fail); what is asserted is what must hold
whatever the accuracies: the Baseline and DacFER learn (above chance by a
margin) and the classifier kernel keeps its norm (or, zero-initialised,
grows).
"""

import keras
import numpy as np
import pytest

import ferzoo
from ferzoo.data import make_synthetic_faces
from ferzoo.data import symmetric_noise
from tests.test_case import TestCase
from tests.test_case import tiny_backbone

NUM_TRAIN, NUM_TEST, SIZE, EPOCHS = 448, 448, 32, 8


def faces(num_samples, seed):
    images, labels = make_synthetic_faces(
        num_samples, image_size=SIZE, seed=seed, difficulty=0.5
    )
    return np.repeat(images[..., None], 3, -1).astype("float32"), labels


def short_fit(cls, **kwargs):
    """Held-out accuracy and classifier-kernel norms before and after."""
    images, clean = faces(NUM_TRAIN, seed=0)
    noisy = symmetric_noise(clean, 0.3, 7, seed=0).labels
    test_images, test_labels = faces(NUM_TEST, seed=1)
    keras.utils.set_random_seed(0)
    model = cls(
        backbone=tiny_backbone(SIZE, filters=(16, 32, 64)),
        num_classes=7,
        num_samples=NUM_TRAIN,
        **kwargs,
    )
    model.recipe = {**model.recipe, "learning_rate": 2e-3}
    model.compile()
    norm = np.linalg.norm(model.classifier.kernel.numpy())
    x = {"images": images, "sample_ids": np.arange(NUM_TRAIN, dtype="int32")}
    model.fit(x, noisy, batch_size=32, epochs=EPOCHS, verbose=0)
    probs = model.predict(test_images, batch_size=64, verbose=0)
    accuracy = float((probs.argmax(-1) == test_labels).mean())
    return accuracy, norm, np.linalg.norm(model.classifier.kernel.numpy())


@pytest.mark.large
class FlipAttentionVsBaselineTest(TestCase):
    baseline = None

    @classmethod
    def baseline_accuracy(cls):
        if cls.baseline is None:
            cls.baseline = short_fit(ferzoo.models.Baseline)[0]
        return cls.baseline

    def check(self, cls, **kwargs):
        baseline = self.baseline_accuracy()
        # The fit is long enough to learn: chance is 1/7.
        self.assertGreater(baseline, 0.3)
        accuracy, before, after = short_fit(cls, **kwargs)
        # The maps do not train the kernel, so it does not collapse; a
        # zero-initialised kernel (AFCN's) grows (JAX: 0 -> 0.59).
        if before > 0:
            self.assertGreater(after, 0.9 * before, (before, after))
        else:
            self.assertGreater(after, 0.1, (before, after))
        return accuracy, baseline

    def test_dacfer_against_baseline(self):
        accuracy, baseline = self.check(
            ferzoo.models.DacFER, attention_reduction=4
        )
        self.assertGreater(accuracy, 0.25)  # it learns, if slower

    def test_afcn_kernel_grows(self):
        self.check(ferzoo.models.AFCN)
