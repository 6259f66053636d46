"""Test-time flip (`test_time_flip`): probabilities, config, training.

The reference is NumPy on two plain forward passes of the same model
(its logits of `x` and of `x[:, :, ::-1]`), each softmaxed, then
averaged. The model's classifier is scaled up so that the wrong
variants (logits averaged, the image flipped upside down, no flip) are
each far from that reference; the tests assert that too.
"""

import keras
import numpy as np
import pytest

from ferzoo.models import SCN
from ferzoo.models import Baseline
from tests.test_case import TestCase
from tests.test_case import numpy_softmax
from tests.test_case import tiny_backbone
from tests.test_case import tiny_batch

ATOL = 1e-5


def peaked(cls=Baseline, scale=30.0, **kwargs):
    """A tiny model far from flip-invariant, with peaked outputs.

    Its first conv kernel is made odd left-right (`k - k[:, ::-1]`): an
    image and its mirror then give opposite responses before the ReLU.
    """
    model = cls(backbone=tiny_backbone(), num_classes=7, **kwargs)
    conv = next(
        layer
        for layer in model.backbone.layers
        if isinstance(layer, keras.layers.Conv2D)
    )
    kernel = np.array(conv.kernel.numpy())
    conv.kernel.assign(kernel - kernel[:, ::-1])
    kernel, bias = model.classifier.get_weights()
    model.classifier.set_weights([kernel * scale, bias])
    return model


def lopsided_images(num_images=5, size=32, seed=0):
    """Images unlike their mirror: ramps and a band on the left side."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)
    out = np.zeros((num_images, size, size, 3))
    for i in range(num_images):
        out[i, :, :, 0] = 255 * rng.uniform(0.3, 1) * ramp[None, :] ** (1 + i)
        out[i, :, :, 1] = 128 * ramp[:, None]
        out[i, :, : 12 * (1 + i % 2), 2] = 200
    return out.astype("float32")


def plain_logits(model, images):
    """The model's logits, one forward pass (no flip anywhere)."""
    ids = np.arange(len(images), dtype="int32")
    out = model({"images": images, "sample_ids": ids}, training=False)
    return np.asarray(keras.ops.convert_to_numpy(out["logits"]), "float64")


class TestTimeFlipTest(TestCase):
    def setUp(self):
        super().setUp()
        x, self.y = tiny_batch(5, size=32)
        self.x, self.ids = lopsided_images(), x["sample_ids"]

    def reference(self, model):
        logits = plain_logits(model, self.x)
        mirror = plain_logits(model, self.x[:, :, ::-1])
        want = (numpy_softmax(logits) + numpy_softmax(mirror)) / 2
        # The test can fail: each wrong variant is far from `want`.
        upside_down = plain_logits(model, self.x[:, ::-1])
        wrong = {
            "logits averaged": numpy_softmax((logits + mirror) / 2),
            "flipped up-down": (
                numpy_softmax(logits) + numpy_softmax(upside_down)
            )
            / 2,
            "no flip": numpy_softmax(logits),
        }
        for name, probs in wrong.items():
            self.assertGreater(np.abs(probs - want).max(), 100 * ATOL, name)
        return logits, want

    def test_flip_averages_probabilities_of_both_views(self):
        model = peaked()
        logits, want = self.reference(model)
        # Off (the default): predictions are the plain softmax.
        self.assertFalse(model.test_time_flip)
        self.assertAllClose(
            model.predict(self.x, verbose=0), numpy_softmax(logits), ATOL
        )
        # On: a traced predict function must not keep the former setting.
        model.test_time_flip = True
        dict_x = {"images": self.x, "sample_ids": self.ids}
        for got in (
            model.predict(self.x, verbose=0),
            model.predict(self.x, batch_size=2, verbose=0),
            model.predict(dict_x, verbose=0),
            model.predict_on_batch(self.x),
            keras.ops.convert_to_numpy(model.probabilities(self.x)),
        ):
            self.assertAllClose(got, want, ATOL)
        model.test_time_flip = False
        self.assertAllClose(
            model.predict(self.x, verbose=0), numpy_softmax(logits), ATOL
        )

    def test_a_method_with_its_own_call_and_the_constructor_argument(self):
        model = peaked(SCN, num_samples=5, test_time_flip=True)
        _, want = self.reference(model)
        self.assertAllClose(model.predict(self.x, verbose=0), want, ATOL)

    def test_config_written_only_when_on(self):
        off = Baseline(backbone=tiny_backbone(), num_classes=3)
        self.assertNotIn("test_time_flip", off.get_config())
        self.assertEqual(off.inference_config(), {})
        on = SCN(backbone=tiny_backbone(), num_classes=3, test_time_flip=True)
        config = on.get_config()
        self.assertIs(config["test_time_flip"], True)
        self.assertTrue(SCN.from_config(config).test_time_flip)
        self.run_serialization_test(on)
        with self.assertRaisesRegex(ValueError, "True or False"):
            on.test_time_flip = "yes"

    def test_training_and_evaluate_are_unaffected(self):
        x = {"images": self.x, "sample_ids": self.ids}
        results = {}
        for flip in (False, True):
            keras.utils.set_random_seed(0)
            model = Baseline(
                backbone=tiny_backbone(), num_classes=7, num_samples=5
            )
            model.test_time_flip = flip
            model.compile(optimizer=keras.optimizers.SGD(0.1))
            evaluated = model.evaluate(x, self.y, verbose=0)
            trained = model.train_on_batch(x, self.y)
            weights = model.classifier.get_weights()[0]
            results[flip] = (evaluated, trained, weights)
        for a, b in zip(results[False], results[True]):
            self.assertAllClose(np.asarray(a), np.asarray(b), atol=1e-6)

    def test_cached_trunk_maps_get_one_pass(self):
        # Maps of a frozen trunk are not pixels: no flip, and no error
        # (training reports predict on them every epoch).
        model = peaked(freeze_until="stage1_pool", num_samples=5)
        logits, want = self.reference(model)
        model.test_time_flip = True
        maps = keras.ops.convert_to_numpy(
            model.trunk_outputs(self.x)["features"]
        )
        for inputs in ({"features": maps, "sample_ids": self.ids}, maps):
            got = model.predict(inputs, verbose=0)
            self.assertAllClose(got, numpy_softmax(logits), ATOL)
        self.assertAllClose(model.predict(self.x, verbose=0), want, ATOL)


@pytest.mark.parametrize("flip", [False, True])
def test_flip_setting_is_restored_after_an_export_block(flip):
    from ferzoo.deploy.common import test_time_flip_as

    model = Baseline(backbone=tiny_backbone(), num_classes=3)
    model.test_time_flip = flip
    with test_time_flip_as(model, not flip):
        assert model.test_time_flip is (not flip)
    assert model.test_time_flip is flip
    with test_time_flip_as(model, None):
        assert model.test_time_flip is flip
