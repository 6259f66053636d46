import keras
import numpy as np

from ferzoo.models.noisy_label_classifier import make_optimizer
from ferzoo.optimizers import AdamL2
from tests.test_case import TestCase


def torch_adam_steps(w, grads, lr, wd, b1=0.9, b2=0.999, eps=1e-12):
    """`torch.optim.Adam(weight_decay=wd)` written out in NumPy."""
    w = np.array(w, "float64")
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = g + wd * w  # L2: added to the gradient
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w


class AdamL2Test(TestCase):
    def test_steps_match_pytorch_adam_with_weight_decay(self):
        rng = np.random.default_rng(0)
        w0 = rng.normal(size=(3, 4)).astype("float32")
        grads = [0.01 * rng.normal(size=(3, 4)).astype("float32")] * 2
        grads.append(np.zeros((3, 4), "float32"))
        var = keras.Variable(w0)
        opt = AdamL2(learning_rate=0.05, l2=0.3, epsilon=1e-12)
        for g in grads:
            opt.apply([g], [var])
        want = torch_adam_steps(w0, grads, 0.05, 0.3)
        self.assertAllClose(var.numpy(), want, atol=1e-5, rtol=1e-5)
        # Not decoupled decay: AdamW's result differs.
        var = keras.Variable(w0)
        adamw = keras.optimizers.AdamW(0.05, weight_decay=0.3, epsilon=1e-12)
        for g in grads:
            adamw.apply([g], [var])
        self.assertGreater(np.abs(var.numpy() - want).max(), 1e-3)

    def test_recipes(self):
        opt, _ = make_optimizer({"optimizer": "adam", "weight_decay": 1e-4})
        self.assertIsInstance(opt, AdamL2)
        self.assertEqual(opt.l2, 1e-4)
        self.assertIsNone(opt.weight_decay)
        opt, _ = make_optimizer({"optimizer": "adamw", "weight_decay": 1e-4})
        self.assertIsInstance(opt, keras.optimizers.AdamW)
        revived = keras.optimizers.deserialize(
            keras.optimizers.serialize(AdamL2(1e-3, l2=0.5))
        )
        self.assertIsInstance(revived, AdamL2)
        self.assertEqual(revived.l2, 0.5)
        with self.assertRaisesRegex(ValueError, "l2"):
            AdamL2(weight_decay=0.1)
