"""DacFER against outputs recorded from EAC's code (the nearest public
code: Erasing-Attention-Consistency).

`tests/fixtures/official/eac.npz` (`scripts/record_official_fixtures.py`):
their CAM forward (maps from `fc.weight.data`) on a tiny trunk for x and
flip(x), `CE + 5 ACLoss` (their `grid_sample` flip and `mse_loss`), the
gradients and one step of their `Adam(lr=1e-4, weight_decay=1e-4)`.
DacFER without its channel attention (`use_channel_attention=False`; EAC
has none) and `consistency_weight=5` (EAC's `lam`) is the same loss: no
departure is applied. EAC erases patches of its first view; that is data
augmentation, outside the loss.
"""

import numpy as np
from keras import ops

from ferzoo.models import DacFER
from ferzoo.optimizers import AdamL2
from tests.models.official import ConvBackbone
from tests.models.official import load
from tests.models.official import set_conv
from tests.models.official import set_dense
from tests.models.official import torch_named
from tests.models.official import torch_variables
from tests.test_case import TestCase
from tests.test_case import loss_gradients


class EACOfficialTest(TestCase):
    def setUp(self):
        super().setUp()
        self.f = load("eac")
        n = len(self.f["labels"])
        self.x = {
            "images": self.f["images"],
            "sample_ids": np.arange(n, dtype="int32"),
        }
        self.y = self.f["labels"]

    def model(self):
        f = self.f
        model = DacFER(
            backbone=ConvBackbone(),
            num_samples=len(f["labels"]),
            consistency_weight=float(f["lam"]),
            use_channel_attention=False,
        )
        w = {k[8:]: v for k, v in f.items() if k.startswith("weights/")}
        set_conv(model.backbone, w, "features.0.")
        set_dense(model.classifier, w, "fc.")
        return model

    def test_maps_loss_and_gradients(self):
        f = self.f
        model = self.model()
        out = model(self.x, training=True)
        self.assertAllClose(out["logits"], f["logits"], atol=1e-4)
        # Their maps are NCHW; the flip view's are not mirrored back.
        maps = np.transpose(f["maps"], (0, 2, 3, 1))
        back = np.transpose(f["maps_flip"], (0, 2, 3, 1))[:, :, ::-1]
        self.assertAllClose(out["cam"], maps, atol=1e-4, rtol=1e-5)
        self.assertAllClose(out["cam_flipped"], back, atol=1e-4, rtol=1e-5)
        loss, grads = loss_gradients(model, self.x, self.y)
        model.compute_loss(self.x, self.y, out, training=True)
        terms = {m.name: float(m.result()) for m in model.loss_trackers}
        self.assertAllClose(terms["loss_ce"], f["loss_ce"], atol=1e-4)
        self.assertAllClose(
            terms["loss_consistency"], f["loss_flip"], atol=1e-4, rtol=1e-5
        )
        self.assertGreater(float(f["loss_flip"]), 0.1)
        self.assertAllClose(loss, f["loss"], atol=1e-4, rtol=1e-5)
        paths = {n: v.path for n, v in torch_variables(model).items()}
        got = torch_named(grads, lambda g: {n: g[p] for n, p in paths.items()})
        for name, value in got.items():
            self.assertAllClose(
                value, f[f"grads/{name}"], atol=1e-4, rtol=1e-4, msg=name
            )

    def test_adam_step(self):
        f = self.f
        model = self.model()
        model.compile(
            optimizer=AdamL2(
                float(f["lr"]), l2=float(f["weight_decay"]), epsilon=1e-8
            )
        )
        model.train_on_batch(self.x, self.y)
        for name, value in torch_named(model, torch_variables).items():
            self.assertAllClose(
                value, f[f"after/{name}"], atol=2e-5, rtol=0, msg=name
            )
        moved = np.abs(f["after/fc.weight"] - f["weights/fc.weight"])
        self.assertGreater(moved.min(), 5e-5)  # the step is resolved
        self.assertEqual(ops.convert_to_numpy(model.epoch), 0)
