import os
import pathlib
import subprocess
import sys
import tempfile

import keras
import numpy as np
import pytest

import ferzoo
from ferzoo.errors import PresetError
from ferzoo.models import SCN
from ferzoo.models import Baseline
from ferzoo.models import NoisyLabelClassifier
from tests.test_case import REPO
from tests.test_case import TestCase
from tests.test_case import tiny_batch


class PresetTest(TestCase):
    def test_bogus_names_raise_with_the_list(self):
        with self.assertRaisesRegex(PresetError, "scn_small_cnn_synthetic"):
            SCN.from_preset("not_a_preset")
        with self.assertRaisesRegex(PresetError, "not a Baseline"):
            Baseline.from_preset("scn_small_cnn_synthetic")

    def test_presets_are_listed_by_class(self):
        scn = SCN.presets()
        self.assertIn("scn_small_cnn_synthetic", scn)
        self.assertNotIn("baseline_small_cnn_synthetic", scn)
        for name, meta in ferzoo.list_presets().items():
            self.assertTrue(meta.get("description"), name)
            self.assertIn("recipe", meta, name)

    def test_overrides_and_recipe(self):
        model = SCN.from_preset(
            "scn_small_cnn_synthetic",
            num_classes=5,
            num_samples=16,
            warmup_epochs=2,
        )
        self.assertEqual(model.num_classes, 5)
        self.assertEqual(model.warmup_epochs, 2)
        self.assertEqual(model.recipe["epochs"], 12)
        backbone = ferzoo.backbones.Backbone.from_preset(
            "scn_small_cnn_synthetic"
        )
        self.assertIsInstance(backbone, ferzoo.backbones.SmallCNNBackbone)

    def test_save_to_preset_round_trip(self):
        x, y = tiny_batch(16, size=48)
        model = SCN.from_preset("scn_small_cnn_synthetic", num_samples=16)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        folder = self.tmp_dir()
        model.save_to_preset(folder, {"description": "test"})
        restored = NoisyLabelClassifier.from_preset(folder)
        self.assertIsInstance(restored, SCN)
        np.testing.assert_allclose(
            restored.predict(x["images"], verbose=0),
            model.predict(x["images"], verbose=0),
            atol=1e-6,
        )
        # A new head keeps the backbone weights, not the head's.
        new = SCN.from_preset(folder, num_classes=3)
        for a, b in zip(new.backbone.weights, model.backbone.weights):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        with self.assertRaisesRegex(PresetError, "load_weights=True"):
            SCN.from_preset("scn_small_cnn_synthetic", load_weights=True)

    @pytest.mark.large
    def test_every_builtin_preset_builds(self):
        methods = ferzoo.list_presets(model_cls=NoisyLabelClassifier)
        for name in methods:
            model = NoisyLabelClassifier.from_preset(name, load_weights=False)
            self.assertGreater(model.count_params(), 0, name)
        # ferzoo.predict's face detector and landmark net (converted).
        from ferzoo.predict import blazeface
        from ferzoo.predict import nets

        others = set(ferzoo.list_presets()) - set(methods)
        for cls in (
            nets.SSDMobileNetV1FaceDetector,
            nets.FaceLandmark68Net,
            blazeface.BlazeFaceNet,
        ):
            for name in ferzoo.list_presets(model_cls=cls):
                net = cls.from_preset(name, load_weights=False)
                self.assertGreater(net.count_params(), 0, name)
                others.discard(name)
        # The others are backbone presets (converted weights).
        for name in others:
            backbone = ferzoo.backbones.Backbone.from_preset(name)
            self.assertGreater(backbone.count_params(), 0, name)

    @pytest.mark.large
    def test_presets_are_up_to_date(self):
        proc = subprocess.run(
            [sys.executable, "scripts/make_presets.py", "--check"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])

    @pytest.mark.large
    def test_presets_ship_in_the_wheel(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("backend-independent; runs in the TensorFlow pass")
        tmp = pathlib.Path(tempfile.mkdtemp(prefix="ferzoo-wheel-"))
        run = lambda *cmd, **kw: subprocess.run(  # noqa: E731
            cmd, capture_output=True, text=True, **kw
        )
        proc = run(
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp),
            str(REPO),
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        wheel = next(tmp.glob("ferzoo-*.whl"))
        target = tmp / "site"
        proc = run(
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        code = (
            "import ferzoo; m = ferzoo.models.SCN.from_preset("
            "'scn_small_cnn_synthetic', num_classes=7); "
            "print(ferzoo.presets.builtin_preset_dir(), m.num_classes)"
        )
        env = {**os.environ, "PYTHONPATH": str(target)}
        proc = run(sys.executable, "-c", code, cwd=tmp, env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        self.assertIn(str(target / "ferzoo" / "_presets"), proc.stdout)
