"""`--tta/--no-tta` of ferzoo-predict, ferzoo-export and ferzoo-eval.

Predictions are checked against the NumPy two-pass reference of
tests/models/inference_test.py (softmax of the model's logits of each
crop and of its mirror, averaged).
"""

import json
import os
from unittest import mock

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ferzoo import training
from ferzoo.cli import evaluate
from ferzoo.cli import export
from ferzoo.cli import predict
from tests.models.inference_test import lopsided_images
from tests.models.inference_test import peaked
from tests.models.inference_test import plain_logits
from tests.predict_test import NAMES
from tests.test_case import TestCase
from tests.test_case import numpy_softmax


def invoke(command, *args):
    result = CliRunner().invoke(command.main, [str(a) for a in args])
    return result


class TestTimeFlipCLITest(TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.tmp_dir()
        crops = lopsided_images(2).round()
        self.files = []
        for i, crop in enumerate(crops):
            path = os.path.join(self.tmp, f"crop{i}.png")
            Image.fromarray(crop.astype("uint8")).save(path)
            self.files.append(path)
        self.model = peaked()
        plain = numpy_softmax(plain_logits(self.model, crops))
        mirror = numpy_softmax(plain_logits(self.model, crops[:, :, ::-1]))
        self.want = {False: plain, True: (plain + mirror) / 2}
        self.assertGreater(np.abs(self.want[True] - plain).max(), 1e-3)

    def preset(self, name, flip):
        self.model.test_time_flip = flip
        path = os.path.join(self.tmp, name)
        meta = {"dataset": {"name": "RAF-DB", "class_names": NAMES}}
        self.model.save_to_preset(path, meta)
        return path

    def predicted(self, model, *args):
        result = invoke(
            predict,
            *self.files,
            "--model",
            model,
            "--detector",
            "none",
            "--json",
            *args,
        )
        self.assertEqual(result.exit_code, 0, result.output)
        report = json.loads(result.stdout)
        by_file = {
            os.path.basename(image["file"]): [
                image["faces"][0]["probabilities"][n] for n in NAMES
            ]
            for image in report["images"]
        }
        probs = np.array([by_file[f"crop{i}.png"] for i in range(2)])
        return report["model"]["test_time_flip"], probs

    @pytest.mark.large
    def test_predict_default_is_the_models_setting_and_the_switch_wins(self):
        on = self.preset("on", True)
        self.assertIs(
            json.load(open(os.path.join(on, "config.json")))["config"][
                "test_time_flip"
            ],
            True,
        )
        for args, flip in (((), True), (("--no-tta",), False)):
            described, probs = self.predicted(on, *args)
            self.assertIs(described, flip)
            self.assertAllClose(probs, self.want[flip], atol=1e-5)
        off = self.preset("off", False)
        for args, flip in (((), False), (("--tta",), True)):
            described, probs = self.predicted(off, *args)
            self.assertIs(described, flip)
            self.assertAllClose(probs, self.want[flip], atol=1e-5)

    @pytest.mark.large
    def test_export_tta_is_in_the_saved_model_and_predict_says_so(self):
        off = self.preset("off", False)
        saved = os.path.join(self.tmp, "saved")
        result = invoke(
            export, "--model", off, "--output", saved, "--tta", "--json"
        )
        self.assertEqual(result.exit_code, 0, result.output)
        self.assertIs(json.loads(result.stdout)["test_time_flip"], True)
        described, probs = self.predicted(saved)
        self.assertIs(described, True)
        self.assertAllClose(probs, self.want[True], atol=1e-5)
        # The flip is in the graph: --no-tta cannot take it out.
        result = invoke(
            predict,
            *self.files,
            "--model",
            saved,
            "--detector",
            "none",
            "--no-tta",
            "--json",
        )
        self.assertEqual(result.exit_code, 3, result.output)
        self.assertIn("--no-tta", result.output)

    def evaluated(self, model, *args):
        result = invoke(
            evaluate,
            "--model",
            model,
            "--data",
            "synthetic:70",
            "--json",
            *args,
        )
        self.assertEqual(result.exit_code, 0, result.output)
        return json.loads(result.stdout)

    def test_eval_switch_reaches_the_model(self):
        off = self.preset("off", False)
        seen = []

        def fake_evaluate(model, data, **kwargs):
            seen.append((getattr(model, "test_time_flip", None), data))
            return {
                "data": data,
                "accuracy": 0.5,
                "macro_f1": 0.5,
                "num_samples": 1,
                "per_class_accuracy": {},
            }

        with mock.patch.object(training, "evaluate", fake_evaluate):
            for args in (("--tta",), ("--no-tta",), ()):
                self.evaluated(off, *args)
        # With a switch, the loaded model is set; without, the path goes
        # through (the model's own setting).
        self.assertEqual(
            seen,
            [
                (True, "synthetic:70"),
                (False, "synthetic:70"),
                (None, "synthetic:70"),
            ],
        )

    @pytest.mark.large
    def test_eval_with_tta_on_a_data_set(self):
        # A real run: its batches are `({"images", "sample_ids"}, labels)`.
        off = self.preset("off", False)
        reports = {}
        for flag in ("--tta", "--no-tta"):
            reports[flag] = self.evaluated(off, flag)
        self.assertIs(reports["--tta"]["test_time_flip"], True)
        self.assertIs(reports["--no-tta"]["test_time_flip"], False)
        self.assertEqual(reports["--tta"]["num_samples"], 17)
