import dataclasses
import json
import subprocess
import sys

from ferzoo.errors import RunMismatchError
from ferzoo.spec import FoldSpec
from ferzoo.spec import RunSpec
from ferzoo.training import resume
from tests.test_case import REPO
from tests.test_case import TestCase


def full_spec():
    return RunSpec.create(
        "scn_small_cnn_synthetic",
        data="synthetic:70",
        noise_rate=0.3,
        noise_type="pair",
        noise_seed=2,
        epochs=3,
        batch_size=16,
        learning_rate=0.01,
        seed=4,
        limit_per_class=10,
        overrides={"warmup_epochs": 0, "image_shape": (24, 24, 3)},
        classes=["a", "b"],
        val_fraction=0.2,
        image_size=24,
        recipe={"augment": {}},
        fold=FoldSpec(1, 3, 4),
    )


# Every leaf field and a value other than `full_spec()`'s.
CHANGES = {
    "preset": "baseline_small_cnn_synthetic",
    "data.source": "synthetic:35",
    "data.classes": ["b", "a"],
    "data.limit_per_class": 11,
    "data.on_error": "skip",
    "data.stream": True,
    "noise.rate": 0.2,
    "noise.type": "symmetric",
    "noise.seed": 3,
    "noise.file": "labels.txt",
    "recipe.epochs": 4,
    "recipe.batch_size": 8,
    "recipe.learning_rate": 0.1,
    "recipe.image_size": 32,
    "recipe.extra": {"augment": {"flip": True}},
    "selection.val_fraction": 0.0,
    "seed": 5,
    "overrides": {"warmup_epochs": 1},
    "distribute": "data-parallel",
    "freeze_until": "conv256_1",
    "trunk_cache": "/tmp/trunks",
    "fold.index": 2,
    "fold.folds": 4,
    "fold.seed": 0,
}


def changed(spec, dotted, value):
    """`spec` with one dotted field replaced (built without `diff`)."""
    head, _, leaf = dotted.partition(".")
    if not leaf:
        return dataclasses.replace(spec, **{head: value})
    inner = dataclasses.replace(getattr(spec, head), **{leaf: value})
    return dataclasses.replace(spec, **{head: inner})


class RunSpecTest(TestCase):
    def test_json_round_trip(self):
        spec = full_spec()
        text = spec.to_json()
        back = RunSpec.from_json(text)
        self.assertEqual(back, spec)
        self.assertEqual(back.data.classes, ("a", "b"))
        self.assertEqual(back.fold, FoldSpec(1, 3, 4))
        self.assertEqual(json.loads(text)["noise"]["rate"], 0.3)
        self.assertEqual(
            json.loads(text)["overrides"]["image_shape"], [24, 24, 3]
        )
        self.assertEqual(back.hash(), spec.hash())
        folder = self.tmp_dir()
        spec.write(folder)
        self.assertEqual(RunSpec.read(folder), spec)

    def test_every_field_is_covered(self):
        self.assertEqual(sorted(full_spec().flat()), sorted(CHANGES))

    def test_hash_changes_with_each_field(self):
        spec = full_spec()
        hashes = {spec.hash()}
        for dotted, value in CHANGES.items():
            other = changed(spec, dotted, value)
            hashes.add(other.hash())
            self.assertEqual(
                spec.diff(other),
                {dotted: (spec.flat()[dotted], other.flat()[dotted])},
            )
        self.assertEqual(len(hashes), len(CHANGES) + 1)

    def test_hash_is_the_same_in_another_process(self):
        code = (
            "from tests.spec_test import full_spec; print(full_spec().hash())"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={"PYTHONPATH": str(REPO), "PYTHONHASHSEED": "123"},
            timeout=120,
        )
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        self.assertEqual(done.stdout.strip(), full_spec().hash())

    def test_diff_names_fields_by_dotted_name(self):
        a = RunSpec.create("p", noise_rate=0.3, seed=1)
        b = RunSpec.create("p", noise_rate=0.1, seed=1, epochs=5)
        self.assertEqual(
            a.diff(b), {"noise.rate": (0.3, 0.1), "recipe.epochs": (None, 5)}
        )
        self.assertEqual(
            a.diff(b, fields=["noise"]), {"noise.rate": (0.3, 0.1)}
        )
        self.assertEqual(a.diff(a), {})


class ResumeCheckTest(TestCase):
    def recorded(self, **kwargs):
        spec = RunSpec.create("baseline_small_cnn_synthetic", **kwargs)
        return resume.resolve(spec)[0]

    def test_a_changed_field_is_named(self):
        old = self.recorded(noise_rate=0.3, batch_size=35)
        state = {"spec": old.to_dict()}
        for kwargs, name in (
            ({"noise_rate": 0.1}, "noise_rate"),
            ({"noise_seed": 1}, "noise_seed"),
            ({"seed": 2}, "seed"),
            ({"batch_size": 16}, "batch_size"),
            ({"classes": ["x", "y"]}, "classes"),
            ({"val_fraction": 0.0}, "val_fraction"),
        ):
            new = self.recorded(
                **{"noise_rate": 0.3, "batch_size": 35, **kwargs}
            )
            with self.assertRaises(RunMismatchError) as ctx:
                resume.check_same_run("out", state, new)
            self.assertEqual(list(ctx.exception.differences), [name])
        # More epochs continue the run; so does another on_error.
        more = self.recorded(
            noise_rate=0.3, batch_size=35, epochs=9, on_error="skip"
        )
        resume.check_same_run("out", state, more)

    def test_a_fold_is_named_by_dotted_name(self):
        old = self.recorded(fold=FoldSpec(0, 3, 0))
        new = self.recorded(fold=FoldSpec(1, 3, 0))
        with self.assertRaises(RunMismatchError) as ctx:
            resume.check_same_run("out", {"spec": old.to_dict()}, new)
        self.assertEqual(ctx.exception.differences, {"fold.index": (0, 1)})

    def test_an_older_state_records_the_flat_config(self):
        # The `config` of a state.json written before run specs existed.
        config = {
            "preset": "baseline_small_cnn_synthetic",
            "data": "synthetic:35",
            "noise_rate": 0.3,
            "noise_type": "symmetric",
            "noise_seed": 0,
            "noise_file": None,
            "seed": 0,
            "limit_per_class": None,
            "overrides": {},
            "classes": None,
            "val_fraction": 0.1,
            "freeze_until": None,
            "batch_size": 35,
            "learning_rate": 0.01,
        }
        same = self.recorded(
            data="synthetic:35", noise_rate=0.3, batch_size=35,
            learning_rate=0.01,
        )  # fmt: skip
        self.assertEqual(resume.run_config(same), config)
        resume.check_same_run("out", {"config": config}, same)
        other = changed(same, "noise.rate", 0.1)
        with self.assertRaisesRegex(
            RunMismatchError, "noise_rate: 0.3 there, 0.1 now"
        ):
            resume.check_same_run("out", {"config": config}, other)


class EvalReadsTheSpecTest(TestCase):
    def test_trained_data_comes_from_the_runs_spec(self):
        from ferzoo.training import run_spec
        from ferzoo.training import trained_data

        folder = self.tmp_dir()
        # metadata.json names another data set: the spec wins.
        with open(f"{folder}/metadata.json", "w") as f:
            json.dump({"dataset": {"data": "synthetic:35"}}, f)
        RunSpec.create("p", data="synthetic:70").write(folder)
        self.assertEqual(trained_data(folder), "synthetic:70")
        self.assertEqual(trained_data(f"{folder}/best.keras"), "synthetic:70")
        self.assertEqual(run_spec(folder).data.source, "synthetic:70")
