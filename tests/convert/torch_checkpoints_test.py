import json
import pathlib

import keras
import numpy as np
import pytest
from absl.testing import parameterized
from click.testing import CliRunner

from ferzoo import convert
from ferzoo.backbones import Backbone
from ferzoo.backbones import ResNetBackbone
from ferzoo.cli import convert as convert_cli
from tests.test_case import TestCase

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"

# Fixture name, detected layout, where the state dict sits, number of head
# keys dropped and the architecture, as scripts/make_torch_fixtures.py
# builds it with torchvision, timm and POSTER's own module definitions.
RESNET = {"stackwise_num_filters": [4, 8, 16, 32], "stem_filters": 4}
BOTTLENECK = {
    **RESNET,
    "stackwise_num_blocks": [2, 1, 1, 1],
    "block_type": "bottleneck_block",
}
CASES = (
    ("resnet18_msceleb", "resnet", "state_dict", 2,
     {**RESNET, "stackwise_num_blocks": [2, 2, 2, 2],
      "block_type": "basic_block", "use_squeeze_excite": False}),
    ("resnet50", "resnet", "", 2,
     {**BOTTLENECK, "use_squeeze_excite": False}),
    # timm's `stem_width` only sets deep stems: the 7x7 stem keeps 64.
    ("seresnet50_timm", "resnet", "", 2,
     {**BOTTLENECK, "use_squeeze_excite": True, "stem_filters": 64}),
    ("seresnet50_cadene", "cadene_senet", "", 2,
     {**BOTTLENECK, "use_squeeze_excite": True, "caffe_style": True}),
    ("ir50", "iresnet", "", 12,
     {"stackwise_num_filters": [8, 16, 24, 32],
      "stackwise_num_blocks": [2, 2, 1, 1],
      "use_squeeze_excite": False, "stem_filters": 8}),
    ("ir_se50", "iresnet", "", 12,
     {"stackwise_num_filters": [16, 32], "stackwise_num_blocks": [2, 1],
      "use_squeeze_excite": True, "stem_filters": 16}),
    # POSTER's MobileFaceNet with every width divided by 8.
    ("mobilefacenet", "mobilefacenet", "state_dict", 12,
     {"stackwise_expansion": [2, 4, 2, 4, 2],
      "stackwise_num_filters": [8, 16, 16, 16, 16],
      "stackwise_num_blocks": [5, 1, 6, 1, 2],
      "stackwise_strides": [2, 2, 1, 2, 1],
      "stem_filters": 8, "output_filters": 64}),
)  # fmt: skip


def fixture(name):
    """`(state dict, images, torch features as NHWC)` of a fixture."""
    nested = convert.load_checkpoint(FIXTURES / f"torch_{name}.npz")
    state_dict, _ = convert.find_state_dict(nested)
    with np.load(FIXTURES / f"torch_{name}_io.npz") as io:
        features = io["features"].transpose(0, 2, 3, 1)
        return state_dict, io["images"], features


def features_of(backbone, images):
    return keras.ops.convert_to_numpy(backbone(images))


class TorchCheckpointTest(TestCase):
    @parameterized.named_parameters(*[(c[0], *c) for c in CASES])
    def test_reproduces_torch_features(
        self, name, layout, at, num_dropped, config
    ):
        nested = convert.load_checkpoint(FIXTURES / f"torch_{name}.npz")
        state_dict, found_at = convert.find_state_dict(nested)
        self.assertEqual(found_at, at)
        _, images, expected = fixture(name)
        backbone, info = convert.convert_state_dict(
            state_dict, image_shape=images.shape[1:]
        )
        self.assertEqual(info["layout"], layout)
        self.assertLen(info["dropped"], num_dropped)
        if layout == "resnet":  # The classifier, e.g. MS-Celeb's 12,666-way.
            self.assertEqual(info["dropped"], ["fc.bias", "fc.weight"])
        self.assertEqual(
            {k: info["config"][k] for k in config}, config, "config"
        )
        actual = features_of(backbone, images)
        self.assertEqual(actual.shape, expected.shape)
        self.assertLessEqual(np.abs(actual - expected).max(), 1e-4)

    @pytest.mark.large
    def test_cadene_layout_needs_caffe_style(self):
        # The fixture tells Caffe's strides and pooling from torchvision's.
        state_dict, images, expected = fixture("seresnet50_cadene")
        backbone, info = convert.convert_state_dict(
            state_dict, image_shape=images.shape[1:]
        )
        self.assertTrue(info["config"]["caffe_style"])
        plain = ResNetBackbone(**{**info["config"], "caffe_style": False})
        plain.set_weights(backbone.get_weights())
        self.assertGreater(
            np.abs(features_of(plain, images) - expected).max(), 1e-2
        )

    def test_msceleb_checkpoint_nesting(self):
        nested = convert.load_checkpoint(
            FIXTURES / "torch_resnet18_msceleb.npz"
        )
        self.assertEqual(int(nested["epoch"]), 40)
        self.assertIn("module.fc.weight", nested["state_dict"])
        self.assertEqual(
            nested["state_dict"]["module.fc.weight"].shape[0], 12666
        )
        state_dict, _ = convert.find_state_dict(nested, key="state_dict")
        self.assertIn("conv1.weight", state_dict)
        self.assertFalse(any(k.startswith("module.") for k in state_dict))
        with self.assertRaisesRegex(
            convert.ConversionError, "not tensors: arch, state_dict"
        ):
            convert.find_state_dict(nested, key="")
        with self.assertRaisesRegex(convert.ConversionError, "'weights'"):
            convert.find_state_dict(nested, key="weights")

    def test_unknown_and_missing_keys_are_listed(self):
        state_dict, _, _ = fixture("resnet18_msceleb")
        state_dict = dict(state_dict)
        del state_dict["layer2.1.bn1.running_var"]
        state_dict["layer2.1.attention.weight"] = np.zeros(3, "float32")
        with self.assertRaises(convert.ConversionError) as e:
            convert.convert_state_dict(state_dict, source="r18.pth")
        message = str(e.exception)
        self.assertIn("r18.pth", message)
        self.assertIn("missing keys (1): layer2.1.bn1.running_var", message)
        self.assertIn("unknown keys (1): layer2.1.attention.weight", message)

    def test_shape_mismatch_names_the_layer(self):
        state_dict, _, _ = fixture("ir50")
        state_dict = dict(state_dict)
        state_dict["body.1.res_layer.3.weight"] = np.zeros(
            (8, 8, 5, 5), "float32"
        )
        with self.assertRaisesRegex(
            convert.ConversionError,
            r"layer `body_1_res_conv2` \(torch `body.1.res_layer.3.weight`",
        ):
            convert.convert_state_dict(state_dict)

    def test_unknown_layout(self):
        with self.assertRaisesRegex(convert.ConversionError, "features.0"):
            convert.detect_layout({"features.0.weight": np.zeros(3)})


@pytest.mark.large
class ConvertCommandTest(TestCase):
    def invoke(self, args):
        return CliRunner().invoke(convert_cli.main, args)

    @parameterized.named_parameters(*[(c[0], c[0]) for c in CASES])
    def test_fixture_to_preset(self, name):
        _, images, expected = fixture(name)
        out = pathlib.Path(self.tmp_dir()) / name
        result = self.invoke(
            [
                "torch",
                str(FIXTURES / f"torch_{name}.npz"),
                "--output",
                str(out),
                "--image-size",
                str(images.shape[1]),
                "--training-data",
                "none (fixture)",
                "--json",
            ]
        )
        self.assertEqual(result.exit_code, 0, result.output)
        backbone = Backbone.from_preset(out)
        self.assertLessEqual(
            np.abs(features_of(backbone, images) - expected).max(), 1e-4
        )
        meta = json.loads((out / "metadata.json").read_text())
        provenance = meta["provenance"]
        self.assertEqual(provenance["converted_from"], f"torch_{name}.npz")
        self.assertLen(provenance["source_sha256"], 64)
        self.assertNotEmpty(provenance["dropped_keys"])
        self.assertEqual(meta["training_data"], "none (fixture)")

    def test_errors_exit_3(self):
        state_dict, _, _ = fixture("resnet50")
        path = pathlib.Path(self.tmp_dir()) / "bad.npz"
        np.savez(path, **{**state_dict, "layer9.weight": np.zeros(2)})
        out = pathlib.Path(self.tmp_dir()) / "preset"
        result = self.invoke(["torch", str(path), "--output", str(out)])
        self.assertEqual(result.exit_code, 3, result.output)
        self.assertIn("bad.npz", result.output)
        self.assertIn("layer9.weight", result.output)
        good = ["torch", str(FIXTURES / "torch_resnet50.npz")]
        self.assertEqual(
            self.invoke([*good, "--output", str(out)]).exit_code, 0
        )
        result = self.invoke([*good, "--output", str(out)])
        self.assertEqual(result.exit_code, 2)  # an output folder refusal
        self.assertIn("--overwrite", result.output)
        result = self.invoke([*good, "--output", str(out), "--overwrite"])
        self.assertEqual(result.exit_code, 0, result.output)

    def test_help(self):
        for args in ([], ["torch"]):
            result = self.invoke([*args, "--help"])
            self.assertEqual(result.exit_code, 0, result.output)
        self.assertIn("Examples:", result.output)

    def test_pth_file(self):
        # The real file format: torch.save of the nested checkpoint.
        torch = pytest.importorskip("torch")
        nested = convert.load_checkpoint(FIXTURES / "torch_mobilefacenet.npz")
        checkpoint = {
            "epoch": 100,
            "state_dict": {
                k: torch.from_numpy(v) for k, v in nested["state_dict"].items()
            },
        }
        path = pathlib.Path(self.tmp_dir()) / "model_best.pth.tar"
        torch.save(checkpoint, path)
        _, images, expected = fixture("mobilefacenet")
        out = pathlib.Path(self.tmp_dir()) / "mfn"
        result = self.invoke(
            ["torch", str(path), "--output", str(out), "--image-size", "48"]
        )
        self.assertEqual(result.exit_code, 0, result.output)
        backbone = Backbone.from_preset(out)
        self.assertLessEqual(
            np.abs(features_of(backbone, images) - expected).max(), 1e-4
        )
