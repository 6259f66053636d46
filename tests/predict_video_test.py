import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ferzoo
from ferzoo.predict import video
from tests.predict_test import NAMES
from tests.predict_test import PASTED
from tests.predict_test import iou
from tests.predict_test import photo_parts
from tests.predict_test import tiny_model
from tests.test_case import REPO
from tests.test_case import TestCase


def write_clip(path, num_frames, size=(400, 240), fps=10.0, step=4):
    """An mp4 of make_photo's two synthetic faces moving right by `step`
    pixels a frame over a noisy gradient (no faces if they do not fit)."""
    import cv2

    faces, base, rng = photo_parts(size)
    width, height = size
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height)
    )
    for t in range(num_frames):
        frame = base + rng.normal(0, 6, (height, width, 3))
        for face, (x, y, w, h) in zip(faces, PASTED):
            x += step * t
            if x + w <= width and y + h <= height:
                frame[y : y + h, x : x + w] = face[..., None]
        writer.write(np.clip(frame, 0, 255).astype("uint8")[..., ::-1])
    writer.release()


class TrackerTest(TestCase):
    def test_ids_follow_overlap(self):
        tracker = video.Tracker(min_iou=0.3)
        self.assertEqual(tracker.update([(0, 0, 10, 10), (50, 0, 10, 10)]),
                         [1, 2])  # fmt: skip
        # Listed in the other order, moved a little: the ids follow the
        # boxes, not the order.
        self.assertEqual(tracker.update([(52, 1, 10, 10), (2, 0, 10, 10)]),
                         [2, 1])  # fmt: skip
        # A box that overlaps nothing (IoU < 0.3) is a new face; a face
        # gone for one sampled frame does not keep its id.
        self.assertEqual(tracker.update([(9, 0, 10, 10)]), [3])
        self.assertEqual(tracker.update([(52, 1, 10, 10)]), [4])
        # Two boxes over one old box: the better overlap keeps the id.
        self.assertEqual(tracker.update([(56, 1, 10, 10), (52, 2, 10, 10)]),
                         [5, 4])  # fmt: skip


class PredictVideoTest(TestCase):
    def test_rows_ids_times_and_outputs(self):
        import cv2

        tmp = self.tmp_dir()
        write_clip(f"{tmp}/clip.mp4", 12)
        predictor = ferzoo.predict.load_predictor(
            tiny_model(), class_names=NAMES
        )
        summary = video.run_videos(
            [f"{tmp}/clip.mp4", f"{tmp}/missing.mp4"],
            predictor,
            detector="haar",
            align=False,
            every=3,
            output_dir=f"{tmp}/out",
        )
        clip, missing = summary["sources"]
        self.assertIn("no such file", missing["error"])
        self.assertEqual(clip["frames"], 4)  # frames 0, 3, 6, 9
        self.assertEqual(clip["rows"], 8)
        self.assertEqual(clip["faces"], 2)  # ids kept across frames
        with open(f"{tmp}/out/predictions.jsonl") as f:
            rows = [json.loads(line) for line in f]
        with open(f"{tmp}/out/predictions.csv") as f:
            table = list(csv.DictReader(f))
        self.assertEqual(len(rows), 8)
        self.assertEqual(len(table), 8)
        for row, line in zip(rows, table):
            self.assertEqual(row["frame"] % 3, 0)
            self.assertAlmostEqual(row["time"], row["frame"] / 10, places=3)
            self.assertEqual(int(line["face_id"]), row["face_id"])
            self.assertAlmostEqual(sum(row["probabilities"].values()), 1, 4)
            # Face 1 is the left face, wherever it has moved.
            x, y = PASTED[row["face_id"] - 1][:2]
            moved = (x + 4 * row["frame"], y, 96, 96)
            box = tuple(row["box"].values())
            self.assertGreater(iou(box, moved), 0.5)
        capture = cv2.VideoCapture(summary["annotated"][0])
        self.assertEqual(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 4)
        self.assertAlmostEqual(capture.get(cv2.CAP_PROP_FPS), 10 / 3, 2)
        capture.release()
        # Rows stream: the first comes after one sampled frame is read.
        first = next(
            video.predict_video(
                f"{tmp}/clip.mp4", predictor, "haar", False, every=3
            )
        )
        self.assertEqual(first.frame, 0)

    @pytest.mark.large
    def test_memory_stays_flat_over_a_long_clip(self):
        # Peak RSS of the CLI on a 2-minute clip against a 10-second one
        # (tiny frames, every 10th frame classified).
        tmp = self.tmp_dir()
        model = tiny_model()
        model.save_to_preset(f"{tmp}/preset", {"dataset": {
            "name": "RAF-DB", "class_names": NAMES}})  # fmt: skip
        peaks = {}
        for seconds in (10, 120):
            path = f"{tmp}/clip{seconds}.mp4"
            write_clip(path, seconds * 10, size=(64, 48), step=0)
            script = (
                "import resource, runpy, sys\n"
                f"sys.argv = ['ferzoo-predict', {path!r}, '--model', "
                f"{tmp + '/preset'!r}, '--detector', 'none', '--every', "
                f"'10', '--output-dir', {tmp + '/out' + str(seconds)!r}]\n"
                "try:\n"
                "    runpy.run_module('ferzoo.cli.predict', "
                "run_name='__main__')\n"
                "except SystemExit as e:\n"
                "    assert not e.code, e.code\n"
                "print('PEAK', resource.getrusage("
                "resource.RUSAGE_SELF).ru_maxrss)\n"
            )
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            done = subprocess.run([sys.executable, "-c", script],
                                  capture_output=True, text=True,
                                  env=env)  # fmt: skip
            self.assertEqual(done.returncode, 0, done.stderr[-2000:])
            peaks[seconds] = int(done.stdout.split("PEAK")[-1]) / 1024  # MB
            with open(f"{tmp}/out{seconds}/predictions.jsonl") as f:
                self.assertEqual(len(f.readlines()), seconds)
        print("peak RSS (MB):", peaks)
        self.assertLess(peaks[120] - peaks[10], 100, peaks)


class PredictVideoCLITest(TestCase):
    def test_video_rows_exit_codes_and_usage(self):
        from click.testing import CliRunner

        from ferzoo.cli import predict

        tmp = self.tmp_dir()
        write_clip(f"{tmp}/clip.avi", 6, size=(64, 48), step=0)
        tiny_model().save_to_preset(
            f"{tmp}/preset", {"dataset": {"name": "x", "class_names": NAMES}}
        )

        def run(*args):
            return CliRunner().invoke(predict.main, [str(a) for a in args])

        common = ["--model", f"{tmp}/preset", "--detector", "none"]
        result = run(f"{tmp}/clip.avi", *common, "--every", "4", "--json")
        self.assertEqual(result.exit_code, 0, result.output)
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual([r["frame"] for r in rows], [0, 4])
        self.assertEqual({r["face_id"] for r in rows}, {1})
        self.assertIn("2 sampled frame(s)", result.stderr)
        result = run(f"{tmp}/gone.mp4", *common)
        self.assertEqual(result.exit_code, predict.EXIT_UNREADABLE)
        self.assertIn("no such file", result.stderr)
        result = run(f"{tmp}/clip.avi", f"{tmp}/photo.jpg", *common)
        self.assertEqual(result.exit_code, 2)
        self.assertIn("separate runs", result.output)
        self.assertEqual(run(f"{tmp}/clip.avi", "--cam").exit_code, 2)
