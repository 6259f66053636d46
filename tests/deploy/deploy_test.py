"""ONNX, LiteRT and TF.js exports: layout, metadata and runtime parity.

Parity is against the SavedModel's `serve` (TensorFlow's own antialiased
resize, `ScaleAndTranslate`), each export run in its own runtime:
onnxruntime, ai-edge-litert's interpreter, TF.js (wasm) in node. The
model's classifier is scaled up so that its probabilities are far from
uniform: a wrong weight, resize or softmax moves them by far more than
the 1e-4 bound.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ferzoo
from ferzoo import deploy
from ferzoo.convert import tfjs as tfjs_reader
from ferzoo.deploy import runtimes
from ferzoo.errors import PresetError
from ferzoo.predict import load_predictor
from tests.test_case import REPO
from tests.test_case import tiny_backbone

NAMES = ["angry", "happy", "sad"]
SIZE = 32
# Model size, a shrink (non-integer factors) and an enlargement.
SHAPES = [(2, SIZE, SIZE, 3), (1, 45, 61, 3), (1, 20, 24, 3)]
ATOL = 1e-4

sys.path.insert(0, str(REPO / "scripts"))
import demo_setup  # noqa: E402


def has(module):
    return importlib.util.find_spec(module) is not None


needs_onnx = pytest.mark.skipif(
    not (has("onnxruntime") and has("tf2onnx")),
    reason="needs the deploy-test extra (onnxruntime, tf2onnx)",
)
needs_litert = pytest.mark.skipif(
    not has("ai_edge_litert"),
    reason="needs the deploy-test extra (ai-edge-litert)",
)


def peaked_model():
    import keras

    keras.utils.set_random_seed(0)
    model = ferzoo.models.Baseline(backbone=tiny_backbone(SIZE), num_classes=3)
    kernel, bias = model.classifier.get_weights()
    model.classifier.set_weights([kernel * 4.0, bias])
    return model


def images(seed=0):
    """Noise images of different brightness (different outputs)."""
    rng = np.random.default_rng(seed)
    out = []
    for shape in SHAPES:
        level = rng.uniform(0.1, 1.0, (shape[0], 1, 1, 1))
        out.append((255 * level * rng.uniform(0, 1, shape)).astype("uint8"))
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The model, its SavedModel's `serve` outputs and its exports."""
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        # Every backend exports through the same TensorFlow trace (a child
        # process off TensorFlow); the two tests below that run on every
        # backend check that the weights reach it (CLI, model.export).
        pytest.skip(
            "the runtime parity of the TensorFlow trace runs under "
            "KERAS_BACKEND=tensorflow (a child process on other backends)"
        )

    root = tmp_path_factory.mktemp("deploy")
    model = peaked_model()
    saved = ferzoo.export.export(
        model, root / "saved", "savedmodel", class_names=NAMES
    )
    loaded = tf.saved_model.load(str(saved))
    batches = images()
    expected = [loaded.serve(tf.constant(b)).numpy() for b in batches]
    # Far from uniform, and different images give different outputs.
    assert expected[0].max(axis=1).min() > 0.5
    assert np.abs(expected[0][0] - expected[0][1]).max() > 0.02
    # Every format at once: on JAX, one child process on TensorFlow.
    formats = [
        fmt
        for fmt, ready in [
            ("onnx", has("onnxruntime") and has("tf2onnx")),
            ("litert", has("ai_edge_litert")),
            ("tfjs", demo_setup.node_available()),
        ]
        if ready
    ]
    # Predict's face nets beside the LiteRT export only (the CLI test
    # below writes them beside an ONNX one): converting them takes seconds.
    exports = {}
    for with_nets in (False, True):
        chosen = [f for f in formats if (f == "litert") == with_nets]
        paths = deploy.export_formats(
            model,
            {f: root / f for f in chosen},
            (SIZE, SIZE),
            NAMES,
            True,
            face_nets=with_nets,
        )
        exports.update(zip(chosen, paths))
    return {"batches": batches, "expected": expected, "export": exports.get}


def photo():
    import matplotlib.cbook

    return matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


def light_predict(path, runtime, grayscale, extra=""):
    """`ferzoo.predict` of the photo on an export's runtime (default
    detector and alignment) in a fresh process, which must import none of
    TensorFlow, Keras and JAX; `extra` is more code run before the check,
    setting entries of the dict `out`."""
    code = (
        "import json, sys, ferzoo\n"
        f"r = ferzoo.predict({str(photo())!r}, model={str(path)!r},"
        f" runtime={runtime!r}, grayscale={grayscale!r})\n"
        "out = {'faces': r[0].to_json()['faces']}\n"
        f"{extra}"
        "out['heavy'] = [m for m in ('tensorflow', 'keras', 'jax') "
        "if m in sys.modules]\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    return out


def check_same_faces(light, model, grayscale):
    """The light pipeline's faces against the Keras pipeline's on the
    photo: same boxes (within a pixel), detector scores, eye-line angles
    and probabilities."""
    # Exports hold the SSD, not BlazeFace: the default detector
    # ("ssd-blazeface") runs as "ssd" on them.
    (expected,) = ferzoo.predict(
        photo(), model=model, grayscale=grayscale, detector="ssd"
    )
    expected = expected.to_json()["faces"]
    assert len(expected) == 1  # Grace Hopper
    assert len(light) == len(expected)
    for got, want in zip(light, expected):
        for key in ("box", "crop_box"):
            np.testing.assert_allclose(
                list(got[key].values()), list(want[key].values()), atol=1
            )
        np.testing.assert_allclose(
            got["detection_score"], want["detection_score"], atol=2e-3
        )
        np.testing.assert_allclose(got["angle"], want["angle"], atol=0.1)
        np.testing.assert_allclose(
            list(got["probabilities"].values()),
            list(want["probabilities"].values()),
            atol=2e-3,
        )


def check_metadata(meta, fmt):
    assert meta["class_names"] == NAMES
    assert meta["image_size"] == [SIZE, SIZE]
    assert meta["grayscale"] is True
    assert meta["format"] == fmt


@pytest.mark.large
@needs_onnx
def test_onnx_matches_serve_in_onnxruntime(setup):
    import onnxruntime

    path = setup["export"]("onnx")
    session = onnxruntime.InferenceSession(
        str(path), providers=["CPUExecutionProvider"]
    )
    (source,) = session.get_inputs()
    assert source.type == "tensor(uint8)"
    assert source.shape[3] == 3 and all(
        isinstance(d, str) for d in source.shape[:3]
    )  # dynamic batch, height and width
    props = session.get_modelmeta().custom_metadata_map
    assert json.loads(props["class_names"]) == NAMES
    check_metadata(json.loads(props["ferzoo"]), "onnx")
    for batch, expected in zip(setup["batches"], setup["expected"]):
        (out,) = session.run(None, {source.name: batch})
        np.testing.assert_allclose(out, expected, atol=ATOL)


@pytest.mark.large
@needs_litert
def test_litert_matches_serve_in_the_litert_interpreter(setup):
    from ai_edge_litert.interpreter import Interpreter

    path = setup["export"]("litert")
    assert (path.parent / "labels.txt").read_text().split() == NAMES
    meta = json.loads(runtimes.litert_metadata(path)["ferzoo"])
    check_metadata(meta, "litert")
    interpreter = Interpreter(model_path=str(path))
    (source,) = interpreter.get_input_details()
    (target,) = interpreter.get_output_details()
    assert source["dtype"] == np.uint8
    assert list(source["shape_signature"]) == [-1, -1, -1, 3]
    for batch, expected in zip(setup["batches"], setup["expected"]):
        interpreter.resize_tensor_input(source["index"], batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        out = interpreter.get_tensor(target["index"])
        np.testing.assert_allclose(out, expected, atol=ATOL)


@pytest.mark.large
@needs_litert
def test_litert_runs_the_default_detector_and_alignment_without_tf(setup):
    # Predict's face nets come with the export, so the whole pipeline
    # (SSD detector, landmark alignment, classifier) runs on LiteRT and
    # finds what the Keras nets find.
    path = setup["export"]("litert")
    meta = json.loads(runtimes.litert_metadata(path)["ferzoo"])
    assert meta["face_nets"] == {
        "detector": "detector.tflite",
        "landmarks": "landmarks.tflite",
    }
    for name in meta["face_nets"].values():
        assert (path.parent / name).stat().st_size > 1e6
    light = light_predict(path.parent, "litert", True)
    check_same_faces(light["faces"], peaked_model(), True)


@pytest.mark.large
@needs_litert
def test_keras_export_api_writes_ferzoo_formats(tmp_path):
    # Keras' own `model.export(format="litert")` of a method with a
    # `sample_ids` input gave logits at a fixed size and no class names.
    import keras

    keras.utils.set_random_seed(0)
    model = ferzoo.models.SCN(
        backbone=tiny_backbone(SIZE), num_classes=3, num_samples=4
    )
    path = model.export(
        tmp_path / "lite", format="litert", class_names=NAMES, face_nets=False
    )
    assert "face_nets" not in runtimes.load_exported(path).metadata
    exported = runtimes.load_exported(path.parent)
    assert exported.class_names == NAMES
    x = images(3)[0]
    np.testing.assert_allclose(
        exported(x), model.predict(x.astype("float32"), verbose=0), atol=ATOL
    )


@pytest.mark.large
@pytest.mark.skipif(not demo_setup.node_available(), reason="node is absent")
def test_tfjs_matches_serve_in_node(setup, tmp_path):
    path = setup["export"]("tfjs")
    modules = demo_setup.install_npm()
    for i, (batch, expected) in enumerate(
        zip(setup["batches"], setup["expected"])
    ):
        out = run_in_node(path.parent, batch, tmp_path / f"x{i}.npy", modules)
        check_metadata(out["metadata"]["ferzoo"], "tfjs")
        np.testing.assert_allclose(
            np.array(out["probabilities"]), expected, atol=ATOL
        )


def run_in_node(folder, batch, npy, modules):
    """A TF.js export's output on `batch`, run in node (wasm backend)."""
    np.save(npy, batch)
    proc = subprocess.run(
        [
            "node",
            str(REPO / "scripts" / "tfjs_predict.mjs"),
            "--model",
            str(folder),
            "--images",
            str(npy),
            "--node-modules",
            str(modules),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == "wasm"
    return out


@pytest.mark.large
@needs_onnx
def test_cli_export_and_predict_on_onnxruntime_without_tensorflow(tmp_path):
    from click.testing import CliRunner

    from ferzoo.cli.export import main as export_main

    model = peaked_model()
    model.save(tmp_path / "model.keras")
    # Class names come from the run's metadata.json beside the checkpoint.
    meta = {"dataset": {"class_names": NAMES}}
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    out = tmp_path / "onnx"
    result = CliRunner().invoke(
        export_main,
        [
            "--model",
            str(tmp_path / "model.keras"),
            "--format",
            "onnx",
            "--output",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["path"] == str(out / "model.onnx")
    faces, _ = ferzoo.data.make_synthetic_faces(3, image_size=48)
    np.save(tmp_path / "faces.npy", faces)
    keras_faces = ferzoo.predict(
        list(faces), model=model, detector="none", grayscale=False
    )
    props = onnx_metadata(out / "model.onnx")
    assert props["face_nets"] == {
        "detector": "detector.onnx",
        "landmarks": "landmarks.onnx",
    }
    # A fresh process: the light path must not import TensorFlow or Keras,
    # on crops as they are and with the default detector and alignment
    # (the face nets written beside the model).
    extra = (
        "import numpy as np\n"
        f"faces = np.load({str(tmp_path / 'faces.npy')!r})\n"
        f"c = ferzoo.predict(list(faces), model={str(out)!r},"
        " detector='none', runtime='onnx')\n"
        "out['names'] = c[0].faces[0].class_names\n"
        "out['p'] = [x.faces[0].probabilities.tolist() for x in c]\n"
    )
    light = light_predict(out, "onnx", False, extra)
    assert light["names"] == NAMES
    expected = [r.faces[0].probabilities for r in keras_faces]
    np.testing.assert_allclose(light["p"], expected, atol=ATOL)
    check_same_faces(light["faces"], model, False)


def onnx_metadata(path):
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return json.loads(props["ferzoo"])


def test_resize_matches_tensorflow_antialiased_resize():
    import tensorflow as tf

    from ferzoo.deploy import graph

    rng = np.random.default_rng(1)
    for shape, size in [
        ((2, 37, 53, 3), (16, 16)),  # shrink by 2.3 and 3.3
        ((1, 9, 12, 3), (20, 31)),  # enlarge
        ((1, 16, 16, 3), (16, 16)),  # same size: the identity
    ]:
        x = rng.uniform(0, 255, shape).astype("float32")
        got = graph.resize_images(tf.constant(x), *size).numpy()
        want = tf.image.resize(x, size, "bilinear", antialias=True).numpy()
        np.testing.assert_allclose(got, want, atol=2e-3)
        if shape[1:3] == size:
            np.testing.assert_array_equal(got, x)


def test_tfjs_writer_moves_constants_into_shards(tmp_path):
    import tensorflow as tf

    from ferzoo.deploy import tfjs

    kernel = np.random.default_rng(2).normal(size=(3, 4)).astype("float32")

    @tf.function(
        input_signature=[tf.TensorSpec((None, None, None, 3), tf.int32)]
    )
    def function(images):
        x = tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2])
        return {"probabilities": tf.nn.softmax(tf.matmul(x, kernel))}

    meta = deploy.deploy_metadata("tfjs", list("abcd"), (8, 8), False)
    path = tfjs.write_graph_model(function, tmp_path, meta, shard_bytes=20)
    model = json.loads(path.read_text())
    assert model["format"] == "graph-model"
    assert model["userDefinedMetadata"]["ferzoo"]["class_names"] == list("abcd")
    assert model["signature"]["inputs"]["images"]["dtype"] == "DT_INT32"
    # 48 bytes of kernel in 20-byte shards, read back as TF.js would.
    assert len(model["weightsManifest"][0]["paths"]) >= 3
    weights = tfjs_reader.read_tfjs_weights(path)
    assert any(np.array_equal(w, kernel) for w in weights.values())
    for node in model["modelTopology"]["node"]:
        if node["op"] == "Const":
            tensor = node["attr"]["value"]["tensor"]
            assert "tensorContent" not in tensor and "floatVal" not in tensor


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(PresetError, match="no exported model"):
        runtimes.load_exported(tmp_path)
    with pytest.raises(ValueError, match="runtime"):
        runtimes.load_exported(tmp_path, runtime="tensorrt")
    with pytest.raises(ValueError, match="format"):
        ferzoo.export.export(peaked_model(), tmp_path, format="coreml")
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(PresetError, match="for the onnx runtime, not litert"):
        load_predictor(tmp_path, runtime="litert")


@pytest.mark.large
@pytest.mark.skipif(
    not (has("onnxruntime") and has("tf2onnx") and has("ai_edge_litert")),
    reason="needs the deploy-test extra",
)
def test_exports_carry_the_test_time_flip(tmp_path):
    # On every backend: off TensorFlow the flip reaches the child process
    # through the metadata.
    from tests.models.inference_test import lopsided_images
    from tests.models.inference_test import peaked
    from tests.models.inference_test import plain_logits
    from tests.test_case import numpy_softmax

    model = peaked()
    names = [f"c{i}" for i in range(7)]
    x = lopsided_images().round()
    plain = numpy_softmax(plain_logits(model, x))
    mirror = numpy_softmax(plain_logits(model, x[:, :, ::-1]))
    flipped = (plain + mirror) / 2
    x = x.astype("uint8")
    formats = ["onnx", "litert"] + ["tfjs"] * demo_setup.node_available()
    folders = {f: tmp_path / f for f in formats}
    deploy.export_formats(
        model, folders, (32, 32), names, face_nets=False, test_time_flip=True
    )
    assert model.test_time_flip is False
    deploy.export_format(model, tmp_path / "plain", "onnx", (32, 32), names)
    if "tfjs" in folders:  # TF.js runs the graph's flip op too
        modules = demo_setup.install_npm()
        out = run_in_node(folders.pop("tfjs"), x, tmp_path / "x.npy", modules)
        assert out["metadata"]["ferzoo"]["test_time_flip"] is True
        np.testing.assert_allclose(out["probabilities"], flipped, atol=ATOL)
    for fmt, folder in folders.items():
        exported = runtimes.load_exported(folder)
        assert exported.metadata["test_time_flip"] is True
        np.testing.assert_allclose(exported(x), flipped, atol=ATOL)
        predictor = load_predictor(folder)
        assert predictor.describe()["test_time_flip"] is True
        with pytest.raises(PresetError, match="--no-tta"):
            load_predictor(folder, test_time_flip=False)
    # An export without the flip: off as it is, flipped here on request.
    predictor = load_predictor(tmp_path / "plain")
    assert predictor.describe()["test_time_flip"] is False
    np.testing.assert_allclose(predictor.predict(x), plain, atol=ATOL)
    predictor = load_predictor(tmp_path / "plain", test_time_flip=True)
    assert predictor.describe()["test_time_flip"] is True
    np.testing.assert_allclose(predictor.predict(x), flipped, atol=ATOL)
