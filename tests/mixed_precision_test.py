"""Training under a mixed dtype policy (`dtype_policy="mixed_bfloat16"`).

Every method trains in bfloat16 with float32 variables, losses and
per-sample tables; the frozen trunk of the cached mode computes in
float32 (its cache is shared with float32 runs); a float32 run's spec
and config are the ones they were before the option existed.
"""

import json
import pathlib

import keras
import numpy as np
import pytest
from absl.testing import parameterized

from ferzoo import layers
from ferzoo import models
from ferzoo.backbones import SmallCNNBackbone
from ferzoo.data import make_dataset
from ferzoo.data import trunk_cache as trunk
from ferzoo.data.datasets import DatasetInfo
from ferzoo.errors import RunMismatchError
from ferzoo.spec import RunSpec
from ferzoo.training import resume
from ferzoo.training import train
from tests.test_case import TestCase
from tests.test_case import tiny_batch
from tests.test_case import tiny_dwmca

SIZE = 16
METHODS = {
    "baseline": (models.Baseline, {}),
    "scn": (models.SCN, {"relabel_margin": 0.0}),
    "dacfer": (models.DacFER, {"attention_reduction": 4}),
    "afcn": (models.AFCN, {"relabel_margin": 0.0}),
    "dual_branch": (models.DualBranch, {"branch_filters": 8}),
    "dwmca": (models.DWMCA, {}),
}


def _backbone(dtype, size=SIZE):
    return SmallCNNBackbone(
        image_shape=(size, size, 3),
        stackwise_num_filters=[8, 16],
        num_convs_per_stage=1,
        dtype=dtype,
    )


def _method(name, dtype, **kwargs):
    cls, own = METHODS[name]
    if cls is models.DWMCA:
        return tiny_dwmca(
            _backbone(dtype), _backbone(dtype), 16, warmup_epochs=2, **kwargs
        )
    return cls(
        _backbone(dtype),
        num_classes=7,
        num_samples=16,
        warmup_epochs=2,
        **own,
        **kwargs,
    )


def _dtypes(variables):
    return {keras.backend.standardize_dtype(v.dtype) for v in variables}


class MixedPrecisionMethodTest(TestCase):
    @parameterized.named_parameters(("scn", "scn"), ("afcn", "afcn"))
    def test_alpha_sigmoid_is_float32(self, name):
        # The FC computes in bfloat16; alpha = sigmoid(z) must not be
        # rounded to bfloat16 (steps of 1/256 near 1, which tie the
        # per-sample scores). Reference: float64 sigmoid of the FC's z.
        keras.utils.set_random_seed(0)
        model = _method(name, "mixed_bfloat16")
        pooled = np.random.default_rng(0).normal(0, 1, (64, 16))
        pooled = pooled.astype("float32")
        model.importance.kernel.assign(np.full((16, 1), 0.4, "float32"))
        z = keras.ops.convert_to_numpy(
            keras.ops.cast(model.importance(pooled), "float32")
        ).astype("float64")[:, 0]
        out = model.importance_outputs(pooled, training=False)
        alpha = keras.ops.convert_to_numpy(out["importance"])
        self.assertEqual(alpha.dtype, np.float32)
        np.testing.assert_allclose(alpha, 1 / (1 + np.exp(-z)), atol=1e-6)

    @parameterized.named_parameters(*[(n, n) for n in METHODS])
    def test_trains_in_bfloat16_with_float32_state(self, name):
        x, y = tiny_batch(16, size=SIZE)
        keras.utils.set_random_seed(0)
        model = _method(name, "mixed_bfloat16")
        kernel = model.classifier.kernel  # AFCN's starts at zero
        kernel.assign(np.random.default_rng(0).normal(0, 0.3, kernel.shape))
        reference = _method(name, "float32")
        reference.set_weights(model.get_weights())
        # The policy reaches the backbone and the heads: they compute in
        # bfloat16 (a silently ignored policy computes in float32).
        conv = model.backbone.get_layer("stage2_conv1_conv")
        self.assertEqual(conv.compute_dtype, "bfloat16")
        self.assertEqual(model.classifier.compute_dtype, "bfloat16")
        features = model.backbone(x["images"])
        self.assertEqual(
            keras.backend.standardize_dtype(features.dtype), "bfloat16"
        )
        # Probabilities in float32, close to the float32 model's.
        probs = model.predict(x["images"], verbose=0)
        self.assertEqual(probs.dtype, np.float32)
        expected = reference.predict(x["images"], verbose=0)
        self.assertAllClose(probs, expected, atol=0.03, rtol=0)
        self.assertFalse(np.array_equal(probs, expected))  # not float32
        # Two epochs, the second past the warm-up: finite losses.
        history = model.fit(x, y, batch_size=8, epochs=2, verbose=0).history
        for term in ("loss", *(f"loss_{t}" for t in model.loss_terms)):
            self.assertTrue(np.isfinite(history[term]).all(), (term, history))
        # Variables (weights, tables, optimizer) stay float32 (or int).
        self.assertLessEqual(_dtypes(model.weights), {"float32", "int32"})
        self.assertLessEqual(
            _dtypes(model.optimizer.variables), {"float32", "int32", "int64"}
        )
        tables = [
            layer
            for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, layers.SampleTable)
        ]
        self.assertNotEmpty(tables)
        self.assertLessEqual(
            _dtypes(t.table for t in tables), {"float32", "int32"}
        )
        self.assertTrue(np.isfinite(model.clean_scores()).all())
        probs = model.predict(x["images"], verbose=0)
        self.assertEqual(probs.dtype, np.float32)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


class MixedPrecisionTrunkTest(TestCase):
    def test_trunk_computes_in_float32_and_shares_the_cache(self):
        rng = np.random.default_rng(0)
        n = 8
        images = rng.uniform(0, 255, (n, SIZE, SIZE, 3)).astype("float32")
        labels = rng.integers(0, 7, n).astype("int32")
        info = DatasetInfo(
            ["c"] * 7, labels, sources=[f"s{i}" for i in range(n)], data="t"
        )
        built = {}
        for policy in ("float32", "mixed_bfloat16"):
            keras.utils.set_random_seed(0)
            model = _method("baseline", policy, freeze_until="stage1_pool")
            if policy == "float32":
                weights = model.get_weights()
            model.set_weights(weights)
            split = model.trunk_split
            self.assertEqual(
                {layer.compute_dtype for layer in split.trunk.layers},
                {"float32"},
            )
            root = pathlib.Path(self.tmp_dir())
            cache = trunk.TrunkCache(root, model, info, SIZE)
            cache.build(make_dataset(images, labels, 4), verbose=False)
            built[policy] = (cache.folder.name, np.asarray(cache.load()))
            # The tail computes in the policy's dtype on the cached maps.
            out = model.backbone_map(built[policy][1][:, 0])
            self.assertEqual(
                keras.backend.standardize_dtype(out.dtype),
                "bfloat16" if policy != "float32" else "float32",
            )
        # One key, the same float16 maps: a trunk computed in bfloat16
        # would round them (8 bits of mantissa against float16's 11).
        self.assertEqual(built["float32"][0], built["mixed_bfloat16"][0])
        np.testing.assert_array_equal(
            built["float32"][1], built["mixed_bfloat16"][1]
        )

    @pytest.mark.large  # dlib's ResNet: ~15 s
    def test_dwmca_caches_the_same_maps_under_either_policy(self):
        # DWMCA's cache also holds pooled earlier scales and its frozen
        # landmark backbone's maps.
        from ferzoo.backbones import DlibResNetBackbone

        size, n = 64, 4
        rng = np.random.default_rng(1)
        images = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
        maps = {}
        for policy in ("float32", "mixed_bfloat16"):
            keras.utils.set_random_seed(0)
            model = tiny_dwmca(
                DlibResNetBackbone(
                    (size, size, 3), include_last_block=False, dtype=policy
                ),
                _backbone(policy),
                n,
                freeze_until="conv256_1",
                freeze_landmark_backbone=True,
            )
            if policy == "float32":
                weights = model.get_weights()
            model.set_weights(weights)
            out = model.trunk_outputs(images)
            maps[policy] = {k: np.asarray(v) for k, v in out.items()}
        self.assertEqual(set(maps["float32"]), set(maps["mixed_bfloat16"]))
        for key, value in maps["float32"].items():
            self.assertEqual(value.dtype, np.float32, key)
            np.testing.assert_array_equal(
                value, maps["mixed_bfloat16"][key], key
            )


class DtypePolicySpecTest(TestCase):
    def test_a_float32_spec_is_unchanged(self):
        spec = RunSpec.create("baseline_small_cnn_synthetic", noise_rate=0.3)
        # Recorded before the field existed (ferzoo at 15347c7).
        self.assertEqual(spec.hash(), "03d9d6100780c0a8")
        self.assertNotIn("dtype_policy", spec.to_dict()["recipe"])
        explicit = spec.replace(recipe=RunSpec.create(
            "p", dtype_policy="float32").recipe)  # fmt: skip
        resolved, recipe = resume.resolve(explicit)
        self.assertNotIn("dtype_policy", recipe)
        self.assertNotIn("dtype_policy", resolved.to_dict()["recipe"])
        self.assertNotIn("dtype_policy", resume.run_config(resolved))

    def test_mixed_policy_is_recorded(self):
        spec = RunSpec.create(
            "baseline_small_cnn_synthetic", dtype_policy="mixed_bfloat16"
        )
        self.assertEqual(RunSpec.from_json(spec.to_json()), spec)
        resolved, recipe = resume.resolve(spec)
        self.assertEqual(recipe["dtype_policy"], "mixed_bfloat16")
        self.assertEqual(resolved.recipe.dtype_policy, "mixed_bfloat16")
        config = resume.run_config(resolved)
        self.assertEqual(config["dtype_policy"], "mixed_bfloat16")
        self.assertEqual(resume.from_run_config(config).recipe.dtype_policy,
                         "mixed_bfloat16")  # fmt: skip
        # A recipe key (a preset's or a benchmark profile's) counts too.
        extra = RunSpec.create(
            "baseline_small_cnn_synthetic",
            recipe={"dtype_policy": "mixed_bfloat16"},
        )
        resolved_extra, recipe_extra = resume.resolve(extra)
        self.assertEqual(recipe_extra, recipe)
        self.assertEqual(resolved_extra.recipe.dtype_policy, "mixed_bfloat16")

    def test_unknown_policy_is_refused(self):
        with self.assertRaisesRegex(ValueError, "mixed_bfloat16"):
            RunSpec.create("p", dtype_policy="float16")
        spec = RunSpec.create(
            "baseline_small_cnn_synthetic", recipe={"dtype_policy": "bf16"}
        )
        with self.assertRaisesRegex(ValueError, "bf16"):
            resume.resolve(spec)


class MixedPrecisionTrainingTest(TestCase):
    @pytest.mark.large  # three short trainings: ~15 s
    def test_train_on_cached_maps_in_bfloat16(self):
        cache = self.tmp_dir()
        common = dict(
            data="synthetic:70",
            batch_size=35,
            epochs=1,
            noise_rate=0.3,
            freeze_until="stage1_pool",
            trunk_cache=cache,
            verbose=0,
        )
        mixed = pathlib.Path(self.tmp_dir())
        results = train(
            "baseline_small_cnn_synthetic",
            output_dir=str(mixed),
            dtype_policy="mixed_bfloat16",
            **common,
        )
        self.assertTrue(np.isfinite(results["test"]["final"]["accuracy"]))
        spec = json.loads((mixed / "spec.json").read_text())
        self.assertEqual(spec["recipe"]["dtype_policy"], "mixed_bfloat16")
        model = keras.saving.load_model(mixed / "last.keras")
        tail = model.backbone.get_layer("stage2_conv1_conv")
        head = model.backbone.get_layer("stage1_conv1_conv")
        self.assertEqual(tail.compute_dtype, "bfloat16")
        self.assertEqual(head.compute_dtype, "float32")  # the trunk
        self.assertLessEqual(_dtypes(model.weights), {"float32", "int32"})
        x, _ = tiny_batch(4, size=48)
        probs = model.predict(x["images"], verbose=0)
        self.assertEqual(probs.dtype, np.float32)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
        # The same run in float32: its files carry no policy, and it
        # reuses the trunk cache (train, val, test: three folders).
        plain = pathlib.Path(self.tmp_dir())
        train("baseline_small_cnn_synthetic", output_dir=str(plain), **common)
        spec = json.loads((plain / "spec.json").read_text())
        self.assertNotIn("dtype_policy", spec["recipe"])
        state = json.loads((plain / "state.json").read_text())
        self.assertNotIn("dtype_policy", state["config"])
        meta = json.loads((plain / "metadata.json").read_text())
        self.assertNotIn("dtype_policy", meta["recipe"])
        config = json.loads((plain / "config.json").read_text())
        self.assertEqual(
            config["config"]["backbone"]["config"]["dtype"]["config"],
            {"name": "float32"},
        )
        self.assertEqual(len(list(pathlib.Path(cache).glob("*/maps.npy"))), 3)
        # Resuming the bfloat16 run in float32 is another run.
        with self.assertRaisesRegex(RunMismatchError, "dtype_policy"):
            train("baseline_small_cnn_synthetic", output_dir=str(mixed),
                  **common)  # fmt: skip


class DtypePolicyOptionTest(TestCase):
    def test_cli_option_takes_the_policies_only(self):
        from click.testing import CliRunner

        from ferzoo.cli import train as train_cli

        result = CliRunner().invoke(train_cli.main, ["--help"])
        self.assertIn("--dtype-policy [float32|mixed_bfloat16]", result.output)
        result = CliRunner().invoke(
            train_cli.main,
            ["--preset", "baseline_small_cnn_synthetic", "--dtype-policy",
             "float16", "--output-dir", self.tmp_dir()],
        )  # fmt: skip
        self.assertEqual(result.exit_code, 2, result.output)
        self.assertIn("float16", result.output)
