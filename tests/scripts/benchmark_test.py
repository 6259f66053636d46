"""The benchmark harness end to end on a tiny synthetic grid (seconds)."""

import importlib.util
import json

from click.testing import CliRunner

from tests.test_case import REPO
from tests.test_case import TestCase


def load_script():
    path = REPO / "scripts" / "benchmark.py"
    spec = importlib.util.spec_from_file_location("ferzoo_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BenchmarkScriptTest(TestCase):
    def test_tiny_grid_writes_cells_report_and_plots(self):
        benchmark = load_script()
        out, cache = self.tmp_dir(), self.tmp_dir()
        args = [
            "--profile", "tiny", "--data", "synthetic:70",
            "--out-dir", out, "--cache-dir", cache,
            "--cell", "baseline:0", "--cell", "baseline:0.3",
            "--cell", "scn:0.3",
        ]  # fmt: skip
        result = CliRunner().invoke(
            benchmark.main, args, catch_exceptions=False
        )
        self.assertEqual(result.exit_code, 0, result.output)
        self.assertNotIn("FAILED", result.output)
        assets = f"{out}/benchmarks"
        results = json.load(open(f"{assets}/results-tiny.json"))
        cells = {(c["method"], c["noise_rate"]) for c in results["cells"]}
        self.assertEqual(
            cells, {("baseline", 0.0), ("baseline", 0.3), ("scn", 0.3)}
        )
        for cell in results["cells"]:
            self.assertEqual(cell["epochs"], 2)
            self.assertEqual(len(cell["test_accuracy_per_epoch"]), 2)
            self.assertIn("best_on_val_accuracy", cell["test"])
            self.assertIn("last5_mean_macro_f1", cell["test"])
            if cell["noise_rate"] > 0:
                detection = cell["noise_detection"]
                self.assertEqual(detection["num_flipped"], 21)
                self.assertIn("roc_curve", detection)
                if cell["method"] == "scn":
                    self.assertIn("relabel_precision", detection)
        page = open(f"{out}/benchmarks.md").read()
        # Every method of ferzoo.models has a row, run or not.
        for name in benchmark.method_classes().values():
            self.assertIn(f"| {name.__name__} |", page)
        self.assertIn("## `gpu` profile", page)
        self.assertIn("not run", page.lower())
        self.assertIn("### Against the targets", page)
        scn = next(c for c in results["cells"] if c["method"] == "scn")
        if scn["noise_detection"]["roc_auc"] <= 0.9:
            # SCN's alpha does not see the label: explained as such.
            self.assertIn("SCN: the score is a function of the image", page)
        for png in ("tiny-accuracy-vs-noise.png", "tiny-roc-noise30.png"):
            with open(f"{assets}/{png}", "rb") as f:
                self.assertEqual(f.read(4), b"\x89PNG")

        # A rerun skips the finished cells.
        result = CliRunner().invoke(
            benchmark.main, args, catch_exceptions=False
        )
        self.assertEqual(result.output.count(": cached"), 3, result.output)

    def test_speed_section_ratios_to_the_faster_torch_loop(self):
        benchmark = load_script()
        rows = [
            {"name": "keras-tensorflow fp32", "images_per_second": 30.0},
            {"name": "keras-jax (XLA) fp32", "images_per_second": 5.0},
            {"name": "torch fp32", "images_per_second": 10.0},
            {"name": "torch fp32 channels-last", "images_per_second": 20.0},
            {"name": "torch bf16", "images_per_second": 40.0},
        ]
        speed = {
            "rows": rows,
            "machine": {"platform": "p", "processor": "c", "cpu_count": 2},
            "command": "python scripts/benchmark.py --speed",
            "date": "d",
            "model": "m",
            "image_size": 112,
            "batch_size": 32,
            "warmup_steps": 3,
            "steps": 10,
        }
        page = "\n".join(benchmark.speed_section(speed))
        # bf16 is not an fp32 reference; channels-last is the faster one.
        self.assertIn("| keras-tensorflow fp32 | 30.0 | 1.50 |", page)
        self.assertIn("| torch fp32 | 10.0 | 0.50 |", page)
        self.assertIn("runs at 1.50x the faster PyTorch fp32 loop (met)", page)
        self.assertIn("The XLA rows", page)  # slower than plain TF here
        rows[0]["images_per_second"] = 15.0
        rows[1]["images_per_second"] = 16.0
        page = "\n".join(benchmark.speed_section(speed))
        self.assertIn("(missed by 20%)", page)
        self.assertNotIn("The XLA rows", page)

    def test_help(self):
        benchmark = load_script()
        result = CliRunner().invoke(benchmark.main, ["--help"])
        self.assertEqual(result.exit_code, 0)
        self.assertIn("--speed", result.output)
