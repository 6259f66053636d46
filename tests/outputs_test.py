import json
import os
import pathlib
import signal
import subprocess
import sys

import pytest

from ferzoo import outputs
from ferzoo.errors import OutputFolderError
from tests.test_case import REPO
from tests.test_case import TestCase


def files_of(folder):
    out = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(dirpath, name)
            out[path] = pathlib.Path(path).read_bytes()
    return out


class OutputsTest(TestCase):
    def test_new_and_empty_folders_are_claimed_and_marked(self):
        root = pathlib.Path(self.tmp_dir())
        for folder in (root, root / "a" / "b"):
            with outputs.claim(folder, "train") as held:
                self.assertEqual(held.state, "new")
                self.assertTrue((folder / outputs.LOCK).is_file())
            marker = json.loads((folder / outputs.MARKER).read_text())
            self.assertEqual(marker["kind"], "train")
            self.assertFalse((folder / outputs.LOCK).exists())
        held = outputs.claim(root, "train")
        self.assertEqual(held.state, "ours")
        held.release()

    def test_a_folder_ferzoo_did_not_write_is_refused_untouched(self):
        root = pathlib.Path(self.tmp_dir())
        (root / "logs").mkdir()
        (root / "history.csv").write_text("mine\n")
        (root / "logs" / "x").write_text("mine\n")
        before = files_of(root)
        for kind in outputs.KINDS:
            for overwrite in (False, True):
                with self.assertRaisesRegex(
                    OutputFolderError, f"{root}.*not written by ferzoo"
                ):
                    outputs.claim(root, kind, overwrite, replace=True)
        self.assertEqual(files_of(root), before)

    def test_other_kinds_and_replacing_need_the_right_marker(self):
        root = pathlib.Path(self.tmp_dir())
        outputs.write_marker(root, "train")
        (root / "best.keras").write_text("x")
        with self.assertRaisesRegex(OutputFolderError, "'train' output"):
            outputs.claim(root, "export", overwrite=True, replace=True)
        export = pathlib.Path(self.tmp_dir())
        outputs.write_marker(export, "export")
        (export / "saved_model.pb").write_text("x")
        with self.assertRaisesRegex(OutputFolderError, "--overwrite"):
            outputs.check_replaceable(export, "export")
        self.assertEqual(
            outputs.check_replaceable(export, "export", overwrite=True), "ours"
        )

    def test_a_second_claim_is_refused_while_the_first_holds_the_lock(self):
        root = self.tmp_dir()
        first = outputs.claim(root, "audit")
        with self.assertRaisesRegex(
            OutputFolderError, f"in use by pid {os.getpid()}"
        ):
            outputs.claim(root, "audit")
        first.release()
        outputs.claim(root, "audit").release()

    @pytest.mark.large
    def test_a_killed_process_releases_its_lock(self):
        root = self.tmp_dir()
        code = (
            "import os, signal, sys; from ferzoo import outputs; "
            "outputs.claim(sys.argv[1], 'train'); "
            "print('locked', flush=True); os.kill(os.getpid(), signal.SIGKILL)"
        )
        child = subprocess.run(
            [sys.executable, "-c", code, root],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(child.returncode, -signal.SIGKILL, child.stderr)
        self.assertIn("locked", child.stdout)
        outputs.claim(root, "train").release()

    def test_unwritable_places_are_refused_before_anything_else(self):
        root = pathlib.Path(self.tmp_dir())
        (root / "file.txt").write_text("x")
        with self.assertRaisesRegex(OutputFolderError, "file.txt"):
            outputs.claim(root / "file.txt" / "run", "train")
        with self.assertRaisesRegex(OutputFolderError, "is a file"):
            outputs.claim(root / "file.txt", "train")
        if os.geteuid() != 0:  # root writes anywhere
            locked = root / "locked"
            locked.mkdir(mode=0o555)
            with self.assertRaisesRegex(OutputFolderError, "not writable"):
                outputs.claim(locked, "train")

    def test_release_with_remove_takes_away_only_what_the_claim_made(self):
        root = pathlib.Path(self.tmp_dir())
        outputs.claim(root / "new" / "run", "train").release(remove=True)
        self.assertEqual(os.listdir(root), [])
        outputs.claim(root, "train").release(remove=True)
        self.assertTrue(root.is_dir())
        self.assertEqual(os.listdir(root), [])

    def test_unmarked_run_folders_of_an_older_ferzoo_are_adopted(self):
        from ferzoo.training import _is_unmarked_run

        run = pathlib.Path(self.tmp_dir())
        (run / "last.keras").write_bytes(b"x")
        state = {"epoch": 0, "records": [], "config": {}, "best": 0}
        (run / "state.json").write_text(json.dumps(state))
        held = outputs.claim(run, "train", adopt=_is_unmarked_run)
        self.assertEqual(held.state, "ours")
        held.release()
        # The user's own logs/history.csv/results.json are no run.
        user = pathlib.Path(self.tmp_dir())
        (user / "logs").mkdir()
        for name in ("history.csv", "results.json"):
            (user / name).write_text("mine")
        with self.assertRaises(OutputFolderError):
            outputs.claim(user, "train", adopt=_is_unmarked_run)
        (user / "state.json").write_text(json.dumps(state))
        (user / "last.keras").write_bytes(b"x")
        (user / "notes.txt").write_text("mine")  # not a run file
        with self.assertRaises(OutputFolderError):
            outputs.claim(user, "train", adopt=_is_unmarked_run)
