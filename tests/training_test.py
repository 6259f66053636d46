import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import ferzoo
from ferzoo import training
from ferzoo.errors import DataError
from ferzoo.errors import OutputFolderError
from ferzoo.errors import RunMismatchError
from ferzoo.errors import UsageError
from tests.data.splits_test import rafdb
from tests.test_case import REPO
from tests.test_case import TestCase
from tests.test_case import table_values
from tests.test_case import tiny_backbone


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated crash")


class InterruptAtStart(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        raise KeyboardInterrupt("simulated Ctrl-C in the first epoch")


class TrainingTest(TestCase):
    @pytest.mark.large
    def test_interrupted_run_resumes_with_its_state(self):
        out = self.tmp_dir()
        kwargs = dict(
            preset="scn_small_cnn_synthetic",
            data="synthetic:70",
            output_dir=out,
            noise_rate=0.3,
            epochs=3,
            batch_size=35,
            verbose=0,
            overrides={"warmup_epochs": 0},
        )
        with self.assertRaises(KeyboardInterrupt):
            training.train(callbacks=[Interrupt()], **kwargs)
        state = json.load(open(os.path.join(out, "state.json")))
        self.assertEqual(state["epoch"], 1)
        saved = keras.saving.load_model(os.path.join(out, "last.keras"))
        self.assertEqual(int(np.asarray(saved.epoch)), 1)
        tables_at_crash = table_values(saved)
        self.assertTrue(np.isfinite(tables_at_crash["score_table"]).all())
        results = training.train(**kwargs)
        self.assertEqual([r["epoch"] for r in results["history"]], [0, 1, 2])
        leftovers = [f for f in os.listdir(out) if f.startswith(".tmp")]
        self.assertEqual(leftovers, [])
        # The run continued from the saved model, so its learning-rate
        # schedule continued too (0.9 per epoch).
        lrs = [r["learning_rate"] for r in results["history"]]
        np.testing.assert_allclose(lrs[2] / lrs[0], 0.81, rtol=1e-4)

    @pytest.mark.large
    def test_resumed_run_follows_the_uninterrupted_one(self):
        # Same shuffle order and augmentation per epoch whether the run was
        # interrupted or not: kill after epoch 2 of 3, resume, and compare
        # with a straight run (augmentation on: flip and crop_padding).
        kwargs = dict(
            preset="scn_small_cnn_synthetic",
            data="synthetic:70",
            noise_rate=0.3,
            epochs=3,
            batch_size=16,
            verbose=0,
            overrides={"warmup_epochs": 0},
        )
        straight, resumed = self.tmp_dir(), self.tmp_dir()
        training.train(output_dir=straight, **kwargs)
        with self.assertRaises(KeyboardInterrupt):
            training.train(
                output_dir=resumed, callbacks=[Interrupt()], **kwargs
            )
        training.train(output_dir=resumed, **kwargs)
        a = keras.saving.load_model(os.path.join(straight, "last.keras"))
        b = keras.saving.load_model(os.path.join(resumed, "last.keras"))
        for va, vb in zip(a.weights, b.weights):
            np.testing.assert_allclose(
                np.asarray(va), np.asarray(vb), atol=1e-4, err_msg=va.path
            )

    @pytest.mark.large
    def test_sigkill_at_every_checkpoint_write_resumes_exactly(self):
        # A process killed (SIGKILL) at each point of the checkpoint
        # sequence, then rerun, ends with the uninterrupted run's history.
        spec, _ = rafdb(pathlib.Path(self.tmp_dir()))
        kwargs = dict(
            preset="baseline_small_cnn_synthetic",
            data=spec,
            epochs=3,
            batch_size=16,
            val_fraction=0.0,  # best.keras is rewritten every epoch
            verbose=0,
        )
        straight = training.train(output_dir=self.tmp_dir(), **kwargs)
        points = [
            "last_saved",
            "best_saved",
            "state_written",
            "history_written",
            "last_moved",
            "best_moved",
        ]
        outs = {point: self.tmp_dir() for point in points}
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        children = {
            point: subprocess.Popen(
                [
                    sys.executable,
                    str(REPO / "tests/training_kill_child.py"),
                    point,
                    "1",
                    json.dumps({**kwargs, "output_dir": out}),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            for point, out in outs.items()
        }
        for point, child in children.items():
            _, err = child.communicate(timeout=300)
            self.assertEqual(child.returncode, -9, (point, err[-2000:]))
        for point, out in outs.items():
            state = json.load(open(os.path.join(out, "state.json")))
            committed = point not in ("last_saved", "best_saved")
            self.assertEqual(state["epoch"], 1 if committed else 0, point)
            resumed = training.train(output_dir=out, **kwargs)
            self.assertEqual(
                [r["epoch"] for r in resumed["history"]], [0, 1, 2], point
            )
            for got, want in zip(resumed["history"], straight["history"]):
                self.assertEqual(sorted(got), sorted(want), point)
                for key in want:
                    np.testing.assert_allclose(
                        got[key], want[key], rtol=1e-4, atol=1e-5,
                        err_msg=f"{point}: {key}",
                    )  # fmt: skip
            with open(os.path.join(out, "history.csv")) as f:
                rows = f.read().strip().splitlines()
            self.assertEqual([r.split(",")[0] for r in rows[1:]], list("012"))
            leftovers = [f for f in os.listdir(out) if f.startswith(".")]
            self.assertEqual(leftovers, [".ferzoo-output.json"], point)

    def test_truncated_last_keras_is_refused_with_a_hint(self):
        out = pathlib.Path(self.tmp_dir())
        state = {
            "epoch": 0,
            "best": 0.5,
            "records": [],
            "config": None,
            "checkpoint": {"last": {"file": ".last-00000.keras",
                                    "sha256": "0" * 64}},
        }  # fmt: skip
        (out / "state.json").write_text(json.dumps(state))
        (out / "last.keras").write_bytes(b"PK\x03\x04 truncated")
        with self.assertRaisesRegex(DataError, "last.keras.*--no-resume"):
            training.recover_checkpoint(out, state)
        with self.assertRaisesRegex(DataError, "last.keras: not a readable"):
            training.load_checkpoint(out / "last.keras")

    def test_a_folder_ferzoo_did_not_write_is_refused_untouched(self):
        out = pathlib.Path(self.tmp_dir())
        (out / "logs").mkdir()
        for name in ("history.csv", "results.json", "logs/events"):
            (out / name).write_text(f"the user's {name}")
        for resume in (True, False):
            with self.assertRaisesRegex(OutputFolderError, "not written by"):
                training.train(
                    "baseline_small_cnn_synthetic",
                    data="synthetic:35",
                    output_dir=str(out),
                    epochs=1,
                    verbose=0,
                    resume=resume,
                )
        for name in ("history.csv", "results.json", "logs/events"):
            self.assertEqual((out / name).read_text(), f"the user's {name}")
        self.assertEqual(
            sorted(os.listdir(out)), ["history.csv", "logs", "results.json"]
        )

    def test_evaluate_matches_classes_by_name(self):
        from PIL import Image

        root = pathlib.Path(self.tmp_dir())
        counts = {"calm": 1, "happy": 2, "tense": 3}
        rng = np.random.default_rng(0)
        images, labels = [], []
        for c, (name, n) in enumerate(counts.items()):
            (root / name).mkdir()
            for i in range(n):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype="uint8")
                Image.fromarray(pixels).save(root / name / f"{i}.png")
                images.append(pixels)
                labels.append(c)
        model = ferzoo.models.Baseline(backbone=tiny_backbone(), num_classes=3)
        model_names = ["tense", "calm", "happy"]  # same set, other order
        model.recipe = {**model.recipe, "class_names": model_names}
        predicted = model.predict(np.stack(images).astype("float32"))
        names = [model_names[i] for i in predicted.argmax(-1)]
        data_names = list(counts)
        expected = np.mean([n == data_names[y] for n, y in zip(names, labels)])
        by_index = np.mean(predicted.argmax(-1) == np.array(labels))
        self.assertNotEqual(expected, by_index)  # the test can tell
        report = training.evaluate(model, f"imagefolder:{root}")
        self.assertAlmostEqual(report["accuracy"], expected)
        # Another set of classes: refused, naming both lists.
        model.recipe = {**model.recipe, "class_names": ["a", "b", "c"]}
        with self.assertRaisesRegex(
            UsageError, r"\['a', 'b', 'c'\].*\['calm', 'happy', 'tense'\]"
        ):
            training.evaluate(model, f"imagefolder:{root}")

    @pytest.mark.large
    def test_other_settings_in_a_run_folder_are_refused(self):
        out = self.tmp_dir()
        kwargs = dict(
            preset="baseline_small_cnn_synthetic",
            data="synthetic:35",
            output_dir=out,
            noise_rate=0.3,
            epochs=1,
            batch_size=35,
            verbose=0,
        )
        training.train(**kwargs)
        before = open(os.path.join(out, "results.json")).read()
        for change in (
            {"preset": "scn_small_cnn_synthetic"},
            {"noise_rate": 0.1},
            {"noise_seed": 1},
            {"seed": 1},
            {"data": "synthetic:42"},
        ):
            with self.assertRaises(RunMismatchError) as ctx:
                training.train(**{**kwargs, **change, "epochs": 2})
            field = next(iter(change))
            self.assertIn(field, ctx.exception.differences)
            self.assertEqual(len(ctx.exception.differences), 1)
            self.assertIn("--no-resume", str(ctx.exception))
        # Nothing was rewritten by the refused runs.
        self.assertEqual(open(os.path.join(out, "results.json")).read(), before)
        # resume=False starts over with the new settings.
        results = training.train(
            **{**kwargs, "noise_rate": 0.1, "resume": False}
        )
        self.assertEqual(results["noise"]["rate"], 0.1)
        self.assertEqual([r["epoch"] for r in results["history"]], [0])

    @pytest.mark.large
    def test_a_run_that_fails_before_its_first_epoch_leaves_no_folder(self):
        root = self.tmp_dir()
        out = os.path.join(root, "run")
        with self.assertRaises(ValueError):
            training.train(
                preset="baseline_small_cnn_synthetic",
                data="synthetic:35",
                output_dir=out,
                epochs=1,
                verbose=0,
                overrides={"no_such_argument": 1},
            )
        self.assertFalse(os.path.exists(out))
        with self.assertRaises(KeyboardInterrupt):
            training.train(
                preset="baseline_small_cnn_synthetic",
                data="synthetic:35",
                output_dir=out,
                epochs=1,
                verbose=0,
                callbacks=[InterruptAtStart()],
            )
        self.assertFalse(os.path.exists(out))

    @pytest.mark.large
    def test_skipped_samples_are_counted_in_the_results(self):
        from PIL import Image

        root = self.tmp_dir()
        for split in ("train", "test"):
            for c, name in enumerate(("happy", "sad")):
                folder = os.path.join(root, split, name)
                os.makedirs(folder)
                for i in range(3):
                    Image.new("L", (20, 20), 40 + 80 * c + i).save(
                        os.path.join(folder, f"{i}.png")
                    )
        with open(os.path.join(root, "train", "sad", "bad.png"), "wb") as f:
            f.write(b"not a png")
        results = training.train(
            preset="baseline_small_cnn_synthetic",
            data=f"imagefolder:{root}",
            output_dir=os.path.join(root, "run"),
            epochs=1,
            batch_size=6,
            on_error="skip",
            val_fraction=0.0,  # six images: nothing to hold out
            verbose=0,
        )
        self.assertEqual(results["skipped"]["train"]["count"], 1)
        self.assertIn("bad.png", results["skipped"]["train"]["first"][0])
        self.assertEqual(results["skipped"]["test"]["count"], 0)
        self.assertEqual(results["test"]["last5_num_epochs"], 1)
        saved = json.load(open(os.path.join(root, "run", "results.json")))
        self.assertEqual(saved["skipped"]["train"]["count"], 1)

    @pytest.mark.large
    def test_import_ferzoo_is_enough_to_load_a_checkpoint(self):
        from ferzoo.models import SCN

        path = os.path.join(self.tmp_dir(), "best.keras")
        SCN(backbone=tiny_backbone(), num_samples=4).save(path)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        for imports in ("import ferzoo, keras", "import keras, ferzoo"):
            code = (
                f"{imports}; m = keras.saving.load_model({path!r}); "
                "print(type(m).__name__)"
            )
            done = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                env=env,
                timeout=300,
            )
            self.assertEqual(done.returncode, 0, done.stderr[-2000:])
            self.assertEqual(done.stdout.strip().splitlines()[-1], "SCN")

    @pytest.mark.large
    def test_no_val_split_selects_on_val_carved_from_train(self):
        # RAF-DB has no val split: 10% of each class of the noisy training
        # split is held out, and results.json says so.
        spec, _ = rafdb(pathlib.Path(self.tmp_dir()))
        out = self.tmp_dir()
        results = training.train(
            "scn_small_cnn_synthetic",
            data=spec,
            output_dir=out,
            noise_rate=0.3,
            epochs=1,
            batch_size=35,
            verbose=0,
        )
        expected = "val carved from train, 7 samples, seed 0"
        self.assertEqual(results["selection"]["description"], expected)
        saved = json.load(open(os.path.join(out, "results.json")))
        self.assertEqual(saved["selection"]["description"], expected)
        self.assertIn("val_accuracy", results["history"][0])
        self.assertIn("best_on_val_accuracy", results["test"])
        # Per-sample tables and the noise report cover the 63 images left.
        self.assertEqual(results["noise_detection"]["num_samples"], 63)
        model = keras.saving.load_model(os.path.join(out, "last.keras"))
        self.assertEqual(model.num_samples, 63)
