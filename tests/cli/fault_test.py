"""The fault suite: what a careless or hostile user does, through the
commands' own entry points (`main`, what the console scripts call).

Each trial runs one command in a fresh folder and checks its exit code,
that the message names the file or field at fault, and that every file
present before (the trial's folder and the shared training run) is
byte-identical after. The exit codes seen per command must be exactly
the ones `docs/cli.md`'s exit-code table lists.
"""

import os
import re
import shutil
import tempfile
from unittest import mock

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ferzoo import outputs
from ferzoo.cli import audit
from ferzoo.cli import convert
from ferzoo.cli import evaluate
from ferzoo.cli import export
from ferzoo.cli import predict
from ferzoo.cli import train
from tests.test_case import REPO
from tests.test_case import TestCase

COMMANDS = {
    "ferzoo-train": train,
    "ferzoo-eval": evaluate,
    "ferzoo-export": export,
    "ferzoo-predict": predict,
    "ferzoo-audit": audit,
    "ferzoo-convert": convert,
}
TINY = ["--preset", "baseline_small_cnn_synthetic", "--batch-size", "35"]
FIXTURE_NPZ = REPO / "tests" / "fixtures" / "torch_resnet18_msceleb.npz"


def snapshot(*folders):
    """`{path: bytes}` of every file under `folders`."""
    files = {}
    for folder in folders:
        for dirpath, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as f:
                    files[path] = f.read()
    return files


def documented_exit_codes():
    """`{command: {codes}}` from docs/cli.md's exit-code table."""
    text = (REPO / "docs" / "cli.md").read_text()
    section = text.split("## Exit codes", 1)[1]
    table = {}
    for command, codes in re.findall(
        r"^\| `(ferzoo-[a-z]+)` \| ([0-9, ]+) \|", section, re.M
    ):
        table[command] = {int(c) for c in codes.split(",")}
    return table


def image(path, value=128, size=48):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.full((size, size), value, "uint8")).save(path)


def user_files(root):
    """What a user's folder may hold: a results file, logs, notes."""
    os.makedirs(os.path.join(root, "logs"))
    for name, text in (
        ("history.csv", "my,own\n1,2\n"),
        ("results.json", '{"mine": true}\n'),
        ("logs/notes.txt", "keep\n"),
    ):
        with open(os.path.join(root, name), "w") as f:
            f.write(text)


def ferzoo_folder(root, kind):
    os.makedirs(root)
    outputs.write_marker(root, kind)


class FaultSuiteTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.shared = tempfile.mkdtemp(prefix="ferzoo-faults-")
        cls.run_dir = os.path.join(cls.shared, "run")
        result = CliRunner().invoke(
            train.main,
            [*TINY, "--data", "synthetic:35", "--epochs", "1",
             "--output-dir", cls.run_dir],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        cls.seen = {name: {0} if name == "ferzoo-train" else set()
                    for name in COMMANDS}  # fmt: skip

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.shared, ignore_errors=True)
        super().tearDownClass()

    def trial(self, command, args, code, needles=(), setup=None, patch=None):
        """Run `command` with `args` (`{root}`, `{run}` filled in) in a
        fresh folder; check the code, the message and the old files."""
        root = self.tmp_dir()
        fill = {"root": root, "run": self.run_dir, "pid": os.getpid()}
        context = setup(root) if setup else None
        args = [str(a).format(**fill) for a in args]
        before = snapshot(root, self.run_dir)
        with patch or mock.patch.dict(os.environ, {}):
            result = CliRunner().invoke(COMMANDS[command].main, args)
        if context is not None:
            context.release()
        what = f"{command} {' '.join(args)}\n{result.output[-3000:]}"
        self.assertEqual(result.exit_code, code, what)
        for needle in needles:
            self.assertIn(needle.format(**fill), result.output, what)
        if code == 1:  # unexpected: the exception (traceback) is not eaten
            self.assertIsInstance(result.exception, RuntimeError, what)
        after = snapshot(root, self.run_dir)
        for path, data in before.items():
            self.assertEqual(after.get(path), data, f"{path} changed: {what}")
        self.seen[command].add(code)
        return root, result

    def unexpected_and_interrupted(self, command, target, args):
        failures = [(RuntimeError("boom"), 1), (KeyboardInterrupt, 130)]
        for error, code in failures:
            self.trial(
                command,
                args,
                code,
                patch=mock.patch(target, side_effect=error),
            )

    @pytest.mark.large
    def test_fault_suite(self):
        self.train_trials()
        self.eval_trials()
        self.export_trials()
        self.predict_trials()
        self.audit_trials()
        self.convert_trials()
        self.assertEqual(
            {k: sorted(v) for k, v in self.seen.items()},
            {k: sorted(v) for k, v in documented_exit_codes().items()},
        )

    def train_trials(self):
        out = ["--output-dir", "{root}/out"]
        for data in ("bogus:{root}", "synthetic:-5", "{root}"):
            self.trial("ferzoo-train", [*TINY, "--data", data, *out], 2,
                       ["--data"])  # fmt: skip
        for option in ("--noise-rate", "--val-fraction", "--learning-rate"):
            self.trial("ferzoo-train", [*TINY, option, "nan", *out], 2,
                       [option])  # fmt: skip

        def bad_csv(root):
            os.makedirs(f"{root}/fer")
            with open(f"{root}/fer/fer2013.csv", "wb") as f:
                f.write(b"emotion,pixels,Usage\n0,1 2 3 4,Training\n")
                f.write(b"1,\xe9\xff 2 3 4,Training\n")

        self.trial("ferzoo-train", [*TINY, "--data", "fer2013:{root}/fer",
                   *out], 3, ["fer2013.csv", "line 3", "UTF-8"],
                   setup=bad_csv)  # fmt: skip

        def binary_noise(root):
            with open(f"{root}/noise.bin", "wb") as f:
                f.write(bytes(range(256)))

        self.trial("ferzoo-train", [*TINY, "--data", "synthetic:35",
                   "--noise-file", "{root}/noise.bin", *out], 3,
                   ["noise.bin", "line 1"], setup=binary_noise)  # fmt: skip

        def hostile_noise(root):
            with open(f"{root}/noise.txt", "w") as f:
                f.write("synthetic_train_00000.png 1\n../../etc/passwd 2\n")

        self.trial("ferzoo-train", [*TINY, "--data", "synthetic:35",
                   "--noise-file", "{root}/noise.txt", *out], 3,
                   ["noise.txt", "line 2", "../../etc/passwd",
                    "--skip-bad-samples"], setup=hostile_noise)  # fmt: skip
        # A folder ferzoo did not write: refused, nothing deleted.
        for extra in ([], ["--no-resume"]):
            self.trial("ferzoo-train", [*TINY, "--data", "synthetic:35",
                       "--output-dir", "{root}", *extra], 2,
                       ["{root}", "not written by ferzoo"],
                       setup=user_files)  # fmt: skip

        def a_file(root):
            open(f"{root}/file.txt", "w").close()

        self.trial("ferzoo-train", [*TINY, "--output-dir",
                   "{root}/file.txt/run"], 2, ["file.txt"],
                   setup=a_file)  # fmt: skip

        def in_use(root):
            ferzoo_folder(f"{root}/out", "train")
            return outputs.FolderLock(f"{root}/out").acquire()

        self.trial("ferzoo-train", [*TINY, *out], 2,
                   ["{root}/out", "in use by pid {pid}"],
                   setup=in_use)  # fmt: skip

        def truncated(root):
            shutil.copytree(self.run_dir, f"{root}/out")
            path = f"{root}/out/last.keras"
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)

        self.trial("ferzoo-train", [*TINY, "--data", "synthetic:35",
                   "--epochs", "2", *out], 3,
                   ["last.keras", "--no-resume"], setup=truncated)  # fmt: skip
        # Diverges in its first epoch: exit 4 and no folder left behind.
        root, _ = self.trial(
            "ferzoo-train",
            [*TINY, "--data", "synthetic:35", "--batch-size", "7",
             "--epochs", "1", "--learning-rate", "1e38", *out],
            4,
            ["--learning-rate"],
        )  # fmt: skip
        self.assertEqual(os.listdir(root), [])
        self.unexpected_and_interrupted(
            "ferzoo-train", "ferzoo.training.train", [*TINY, *out]
        )

    def eval_trials(self):
        self.trial("ferzoo-eval", ["--model", "{run}"], 0)

        def corrupt(root):
            with open(f"{root}/bad.keras", "wb") as f:
                f.write(b"PK\x03\x04 not a keras archive")

        self.trial("ferzoo-eval", ["--model", "{root}/bad.keras", "--data",
                   "synthetic:35"], 3, ["bad.keras"],
                   setup=corrupt)  # fmt: skip

        def three_classes(root):
            for name in ("calm", "happy", "tense"):
                image(f"{root}/faces/{name}/a.png")

        self.trial("ferzoo-eval", ["--model", "{run}", "--data",
                   "imagefolder:{root}/faces"], 2,
                   ["['calm', 'happy', 'tense']", "'disgust'"],
                   setup=three_classes)  # fmt: skip
        self.trial("ferzoo-eval", ["--model", "{run}", "--data", "nope:x"], 2,
                   ["--data"])  # fmt: skip
        self.trial("ferzoo-eval", ["--model", "{run}", "--output-dir",
                   "{root}"], 2, ["{root}", "not written by ferzoo"],
                   setup=user_files)  # fmt: skip
        self.unexpected_and_interrupted(
            "ferzoo-eval", "ferzoo.training.evaluate", ["--model", "{run}"]
        )

    def export_trials(self):
        self.trial("ferzoo-export", ["--model", "{run}/best.keras",
                   "--output", "{root}/saved"], 0)  # fmt: skip
        # `--output .` (a user's folder) and the run itself are refused.
        self.trial("ferzoo-export", ["--model", "{run}/best.keras",
                   "--output", "{root}"], 2,
                   ["{root}", "not written by ferzoo"],
                   setup=user_files)  # fmt: skip
        for flag in ([], ["--overwrite"]):
            self.trial("ferzoo-export", ["--model", "{run}/best.keras",
                       "--output", "{run}", *flag], 2,
                       ["{run}", "'train' output"])  # fmt: skip

        def corrupt(root):
            with open(f"{root}/bad.keras", "wb") as f:
                f.write(b"garbage")

        self.trial("ferzoo-export", ["--model", "{root}/bad.keras",
                   "--output", "{root}/saved"], 3, ["bad.keras"],
                   setup=corrupt)  # fmt: skip
        self.unexpected_and_interrupted(
            "ferzoo-export",
            "ferzoo.training.load_any",
            ["--model", "{run}", "--output", "{root}/saved"],
        )

    def predict_trials(self):
        def faces(root):
            image(f"{root}/in/a.png", 120)

        args = ["{root}/in", "--model", "{run}", "--detector", "none"]
        self.trial("ferzoo-predict", args, 0, setup=faces)

        def with_corrupt(root):
            faces(root)
            with open(f"{root}/in/b.png", "wb") as f:
                f.write(b"\x89PNG broken")

        self.trial("ferzoo-predict", args, 5, ["b.png"], setup=with_corrupt)
        self.trial("ferzoo-predict", ["{root}/in", "--model", "{run}"], 6,
                   ["no face"], setup=faces)  # fmt: skip
        self.trial("ferzoo-predict", ["{root}/in", "--model",
                   "dual_branch_small_cnn_synthetic", "--detector", "none",
                   "--cam", "--output-dir", "{root}/out"], 3,
                   ["does not support class activation maps"],
                   setup=faces)  # fmt: skip

        def user_out(root):
            faces(root)
            os.makedirs(f"{root}/out")
            user_files(f"{root}/out")

        self.trial("ferzoo-predict", [*args, "--output-dir", "{root}/out"], 2,
                   ["{root}/out", "not written by ferzoo"],
                   setup=user_out)  # fmt: skip
        self.unexpected_and_interrupted(
            "ferzoo-predict", "ferzoo.predict.load_predictor", args
        )

    def audit_trials(self):
        out = ["--output-dir", "{root}/out"]
        self.trial("ferzoo-audit", ["--from-run", "{run}", "--top", "4",
                   *out], 0)  # fmt: skip
        self.trial("ferzoo-audit", ["--from-run", "{run}", "--output-dir",
                   "{root}"], 2, ["{root}", "not written by ferzoo"],
                   setup=user_files)  # fmt: skip

        def own_audit_with_user_pictures(root):
            ferzoo_folder(f"{root}/out", "audit")
            image(f"{root}/out/sheets/mine.png")
            image(f"{root}/out/thumbs/holiday.png")

        # An earlier audit's folder: rewritten, but the files a user put
        # into its sheets/ and thumbs/ are kept (snapshot).
        root, _ = self.trial("ferzoo-audit", ["--from-run", "{run}", "--top",
                             "4", *out], 0,
                             setup=own_audit_with_user_pictures)  # fmt: skip
        self.assertTrue(os.path.isfile(f"{root}/out/sheets/sheet_001.png"))

        def in_use(root):
            ferzoo_folder(f"{root}/out", "audit")
            return outputs.FolderLock(f"{root}/out").acquire()

        self.trial("ferzoo-audit", ["--from-run", "{run}", *out], 2,
                   ["in use by pid {pid}"], setup=in_use)  # fmt: skip
        self.trial("ferzoo-audit", ["--data", "bogus", *out], 2, ["--data"])
        self.trial("ferzoo-audit", ["--data", "imagefolder:{root}/none",
                   *out], 3, ["{root}/none"])  # fmt: skip
        self.trial(
            "ferzoo-audit",
            [*TINY, "--data", "synthetic:35", "--folds", "2", "--epochs",
             "1", "--batch-size", "7", "--learning-rate", "1e38", *out],
            4,
            ["learning rate"],
        )  # fmt: skip
        self.unexpected_and_interrupted(
            "ferzoo-audit", "ferzoo.audit.audit", ["--from-run", "{run}", *out]
        )

    def convert_trials(self):
        self.trial("ferzoo-convert", ["torch", str(FIXTURE_NPZ), "--output",
                   "{root}/preset"], 0)  # fmt: skip

        def pickled(root):
            np.savez(f"{root}/obj.npz", w=np.array([{"x": 1}], dtype=object))

        self.trial("ferzoo-convert", ["torch", "{root}/obj.npz", "--output",
                   "{root}/preset"], 3, ["obj.npz"],
                   setup=pickled)  # fmt: skip
        self.trial("ferzoo-convert", ["torch", str(FIXTURE_NPZ), "--output",
                   "{root}", "--overwrite"], 2,
                   ["{root}", "not written by ferzoo"],
                   setup=user_files)  # fmt: skip
        self.unexpected_and_interrupted(
            "ferzoo-convert",
            "ferzoo.convert.convert_checkpoint",
            ["torch", str(FIXTURE_NPZ), "--output", "{root}/preset"],
        )
