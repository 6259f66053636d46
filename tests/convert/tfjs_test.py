import json

import numpy as np

from ferzoo.convert import tfjs
from tests.test_case import TestCase


def write_manifest(folder, entries, payload, split):
    """A TF.js weights manifest with its bytes in two shards, as TF.js
    writes them: one group, shards cut at a byte offset."""
    (folder / "m.bin").write_bytes(payload[:split])
    (folder / "m_2.bin").write_bytes(payload[split:])
    manifest = [{"paths": ["m.bin", "m_2.bin"], "weights": entries}]
    path = folder / "m-weights_manifest.json"
    path.write_text(json.dumps(manifest))
    return path


class ReadTFJSWeightsTest(TestCase):
    def setUp(self):
        super().setUp()
        import pathlib

        self.folder = pathlib.Path(self.tmp_dir())
        self.floats = np.array([[1.5, -2.0, 3.25], [0, 7, -0.5]], "<f4")
        self.q = np.array([0, 1, 128, 255], np.uint8)
        self.entries = [
            {"name": "a/filters", "shape": [2, 3], "dtype": "float32"},
            {"name": "b/bias", "shape": [4], "dtype": "float32",
             "quantization": {"dtype": "uint8", "scale": 0.01, "min": -1.0}},
            {"name": "c", "shape": [], "dtype": "float32"},
        ]  # fmt: skip
        self.payload = (
            self.floats.tobytes() + self.q.tobytes() + np.float32(9.0).tobytes()
        )

    def test_reads_float_and_uint8_across_shards(self):
        path = write_manifest(self.folder, self.entries, self.payload, 10)
        out = tfjs.read_tfjs_weights(path)
        self.assertEqual(list(out), ["a/filters", "b/bias", "c"])
        np.testing.assert_array_equal(out["a/filters"], self.floats)
        # value = q * scale + min, by hand.
        np.testing.assert_allclose(
            out["b/bias"], [-1.0, -0.99, 0.28, 1.55], rtol=0, atol=1e-6
        )
        self.assertEqual(out["b/bias"].dtype, np.float32)
        self.assertEqual(out["c"].shape, ())
        self.assertEqual(float(out["c"]), 9.0)

    def test_errors_name_the_file_and_tensor(self):
        path = write_manifest(self.folder, self.entries, self.payload[:-2], 8)
        with self.assertRaisesRegex(ValueError, "m-weights_manifest.*'c'"):
            tfjs.read_tfjs_weights(path)
        (self.folder / "m_2.bin").unlink()
        with self.assertRaisesRegex(ValueError, "shard 'm_2.bin'"):
            tfjs.read_tfjs_weights(path)
        bad = [dict(self.entries[0], dtype="complex64")]
        path = write_manifest(self.folder, bad, self.payload, 4)
        with self.assertRaisesRegex(ValueError, "'a/filters'.*complex64"):
            tfjs.read_tfjs_weights(path)

    def test_fold_lists_missing_and_unexpected_names(self):
        tensors = {"fc": np.zeros((256, 128)), "extra": np.zeros(1)}
        with self.assertRaisesRegex(ValueError, "conv32_down/conv/filters"):
            tfjs.fold_dlib_resnet_weights(tensors)
        with self.assertRaisesRegex(ValueError, "Unexpected: \\['extra'\\]"):
            tfjs.fold_dlib_resnet_weights(tensors)
