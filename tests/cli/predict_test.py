import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import ferzoo
from ferzoo.cli import predict
from tests.predict_test import NAMES
from tests.predict_test import PASTED
from tests.predict_test import iou
from tests.predict_test import make_photo
from tests.predict_test import reference_crop
from tests.predict_test import tiny_model
from tests.test_case import REPO
from tests.test_case import TestCase


def run(*args):
    return CliRunner().invoke(predict.main, [str(a) for a in args])


class PredictCLITest(TestCase):
    def test_help_and_usage_errors(self):
        result = run("--help")
        self.assertEqual(result.exit_code, 0)
        self.assertIn("Examples:", result.output)
        self.assertEqual(run().exit_code, 2)  # no PATH
        result = run("photo.jpg", "--cam")
        self.assertEqual(result.exit_code, 2)
        self.assertIn("--output-dir", result.output)

    def test_missing_default_model(self):
        empty = self.tmp_dir()
        with mock.patch.object(
            ferzoo.presets, "builtin_preset_dir", lambda: Path(empty)
        ):
            result = run("photo.jpg")
        self.assertEqual(result.exit_code, 3)
        self.assertIn("no trained model", result.output)
        self.assertIn("--model", result.output)

    @pytest.mark.large
    def test_end_to_end(self):
        tmp = self.tmp_dir()
        photo = make_photo(f"{tmp}/photo.jpg")
        photo = np.asarray(Image.open(f"{tmp}/photo.jpg"))  # as decoded
        Image.new("RGB", (90, 60), (128, 128, 128)).save(f"{tmp}/blank.png")
        Path(f"{tmp}/broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
        model = tiny_model()
        meta = {"dataset": {"name": "RAF-DB", "class_names": NAMES}}
        model.save_to_preset(f"{tmp}/preset", meta)
        out = f"{tmp}/out"
        paths = [f"{tmp}/photo.jpg", f"{tmp}/blank.png", f"{tmp}/broken.jpg"]
        result = run(
            *paths,
            "--detector",
            "haar",
            "--no-align",
            "--model",
            f"{tmp}/preset",
            "--output-dir",
            out,
            "--cam",
            "--json",
        )
        self.assertEqual(result.exit_code, predict.EXIT_UNREADABLE)
        self.assertIn("broken.jpg", result.stderr)
        report = json.loads(result.stdout)
        self.assertEqual(report["exit_code"], 5)
        self.assertEqual(report["model"]["class_names"], NAMES)
        photo_entry, blank, broken = report["images"]
        self.assertEqual(
            [blank["status"], broken["status"]], ["no_face", "error"]
        )
        self.assertEqual(report["summary"]["no_face"], [paths[1]])
        self.assertEqual(len(photo_entry["faces"]), 2)
        for face, pasted in zip(photo_entry["faces"], PASTED):
            box = tuple(face["box"].values())
            self.assertGreater(iou(box, pasted), 0.6)
            expected = model.predict(
                reference_crop(photo, box)[None], verbose=0
            )[0]
            got = [face["probabilities"][n] for n in NAMES]
            self.assertAllClose(got, expected, atol=1e-5)
            cam = np.asarray(Image.open(face["cam"]))
            self.assertEqual(cam.shape, (192, 192, 3))
        annotated = Image.open(photo_entry["annotated"])
        self.assertEqual(annotated.size, (400, 240))
        self.assertTrue(os.path.isfile(f"{out}/annotated/blank.png"))
        with open(f"{out}/predictions.csv") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(
            [r["status"] for r in rows], ["ok"] * 2 + ["no_face", "error"]
        )
        self.assertAlmostEqual(
            float(rows[0]["top_probability"]),
            photo_entry["faces"][0]["top_probability"],
            6,
        )
        with open(f"{out}/predictions.json") as f:
            self.assertEqual(json.load(f)["summary"], report["summary"])

        # The table, and the exit codes of a clean run and of no face.
        haar = ["--detector", "haar", "--no-align"]
        result = run(paths[0], *haar, "--model", f"{tmp}/preset")
        self.assertEqual(result.exit_code, 0, result.output)
        top = photo_entry["faces"][0]["top_class"]
        self.assertIn(f"{top} ", result.stdout.splitlines()[1])
        result = run(paths[0], paths[1], *haar, "--model", f"{tmp}/preset")
        self.assertEqual(result.exit_code, predict.EXIT_NO_FACE)
        self.assertIn("no face found", result.stdout)

        # --detector none on pre-cropped faces, from a run folder, in a
        # fresh process as installed (nothing registered beforehand).
        os.makedirs(f"{tmp}/run")
        model.save(f"{tmp}/run/best.keras")
        faces, _ = ferzoo.data.make_synthetic_faces(2, image_size=48)
        os.makedirs(f"{tmp}/crops")
        for i, face in enumerate(faces):
            Image.fromarray(face).save(f"{tmp}/crops/{i}.bmp")
        command = [sys.executable, "-m", "ferzoo.cli.predict", f"{tmp}/crops"]
        command += ["--detector", "none", "--model", f"{tmp}/run", "--json"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        got = [
            list(image["faces"][0]["probabilities"].values())
            for image in json.loads(done.stdout)["images"]
        ]
        x = np.stack(
            [
                reference_crop(np.stack([f] * 3, -1), (0, 0, 48, 48))
                for f in faces
            ]
        )
        self.assertAllClose(got, model.predict(x, verbose=0), atol=1e-5)

    @pytest.mark.large
    def test_cam_unsupported_and_untrained(self):
        tmp = self.tmp_dir()
        make_photo(f"{tmp}/photo.png")
        tiny_model(ferzoo.models.DualBranch).save_to_preset(f"{tmp}/dual")
        result = run(
            f"{tmp}/photo.png",
            "--detector",
            "haar",
            "--model",
            f"{tmp}/dual",
            "--cam",
            "--output-dir",
            f"{tmp}/out",
        )
        self.assertEqual(result.exit_code, 3)
        self.assertIn("does not support class activation maps", result.output)
        os.remove(f"{tmp}/dual/model.weights.h5")
        result = run(
            f"{tmp}/photo.png", "--detector", "haar", "--model", f"{tmp}/dual"
        )
        self.assertEqual(result.exit_code, 0, result.output)
        self.assertIn("no trained weights", result.stderr)
        self.assertIn("no class names", result.stderr)
        self.assertIn("class_0", result.stdout)
