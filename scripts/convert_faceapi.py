"""Convert face-api's TF.js nets into ferzoo backbone presets.

Reads the TF.js weight manifests and shards of the npm package
`@vladmandic/face-api` (MIT; version 1.7.15 by default), folds and maps
them with `ferzoo.convert.tfjs`, and writes the backbone presets
`presets/dlib_resnet29/` (dlib's face-recognition ResNet-29),
`presets/face_landmark68/` (the 68-point landmark net's feature
extractor), `presets/face_landmark68_net/` (the whole landmark net, for
face alignment) and `presets/ssd_mobilenetv1_face/` (the SSD MobileNet
v1 face detector of `ferzoo-predict`): `config.json`, `metadata.json`
(with provenance: package, version, file hashes, licence, training
data) and `model.weights.h5` (float32: folded conv + scale weights are
not on the uint8 grid, and float16 would add errors above the 1e-4
parity bound). Optionally writes
face-api's own expression net as a ferzoo `Baseline` preset folder (a
reference model for the benchmark's peer rows; never a built-in preset).
Without `--package-dir` the package is fetched with `npm pack` into a
temporary folder (the npm registry must be reachable).

Invocations:
    python scripts/convert_faceapi.py
    python scripts/convert_faceapi.py --package-dir /work/faceapi/package
    python scripts/convert_faceapi.py --package-dir /work/faceapi/package \\
        --only face_landmark68 --expression-dir /tmp/faceapi_expression
    python scripts/convert_faceapi.py --package-dir /work/faceapi/package \\
        --check tests/fixtures/faceapi_reference.json --output-dir /tmp/p
"""

import hashlib
import json
import pathlib
import subprocess
import sys
import tarfile
import tempfile

import click
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PACKAGE = "@vladmandic/face-api"
VERSION = "1.7.15"
# face-api's FaceExpressions order -> FER2013's (ferzoo's) class order.
FACEAPI_EXPRESSIONS = [
    "neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"
]  # fmt: skip
FER2013_ORDER = [3, 5, 4, 1, 0, 2, 6]  # angry, disgust, fear, happy, ...

DLIB_PROVENANCE = {
    "package": PACKAGE,
    "package_version": VERSION,
    "package_license": "MIT",
    "upstream": "dlib dlib_face_recognition_resnet_model_v1 (Davis King), "
    "as converted to TF.js by face-api.js (Vincent Mühler)",
    "upstream_license": "public domain (dlib's model release; "
    "http://dlib.net/files/dlib_face_recognition_resnet_model_v1.dat.bz2)",
    "training_data": "about 3 million faces of 7,485 identities (dlib: "
    "face scrub, VGG data set and images scraped from the internet); "
    "99.38% on LFW per dlib",
}
LANDMARK_PROVENANCE = {
    "package": PACKAGE,
    "package_version": VERSION,
    "package_license": "MIT",
    "upstream": "face-api.js face_landmark_68_model (Vincent Mühler)",
    "upstream_license": "MIT (face-api.js)",
    "training_data": "about 35k face images labelled with 68 landmark "
    "points (face-api TUTORIAL.md; the set itself is not published)",
}


def fetch_package(version, workdir, package=PACKAGE):
    """`npm pack` `package` into `workdir` and unpack it; return its path."""
    proc = subprocess.run(
        ["npm", "pack", f"{package}@{version}", "--silent"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise click.ClickException(f"npm pack failed: {proc.stderr[-1000:]}")
    tarball = pathlib.Path(workdir) / proc.stdout.strip().splitlines()[-1]
    with tarfile.open(tarball) as tar:
        tar.extractall(workdir, filter="data")
    return pathlib.Path(workdir) / "package"


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def source_files(package_dir, model):
    manifest = package_dir / "model" / f"{model}-weights_manifest.json"
    if not manifest.is_file():
        raise click.ClickException(f"{manifest}: not found.")
    files = [manifest] + [
        manifest.parent / p
        for group in json.loads(manifest.read_text())
        for p in group["paths"]
    ]
    return manifest, {f"model/{f.name}": sha256(f) for f in files}


def package_version(package_dir):
    meta = json.loads((package_dir / "package.json").read_text())
    return meta.get("version")


def convert_recognition(package_dir, image_size=150):
    """The converted `DlibResNetBackbone` and face-api's fc (256 x 128)."""
    import ferzoo
    from ferzoo.convert import tfjs

    manifest, hashes = source_files(package_dir, "face_recognition_model")
    weights = tfjs.fold_dlib_resnet_weights(tfjs.read_tfjs_weights(manifest))
    backbone = ferzoo.backbones.DlibResNetBackbone(
        image_shape=(image_size, image_size, 3)
    )
    tfjs.set_layer_weights(backbone, weights)
    return backbone, weights["fc"][0], hashes


def convert_feature_extractor(package_dir, model, trainable=False):
    """A `FaceLandmark68Backbone` with `model`'s weights and its fc."""
    import ferzoo
    from ferzoo.convert import tfjs

    manifest, hashes = source_files(package_dir, model)
    weights = tfjs.face_feature_extractor_weights(
        tfjs.read_tfjs_weights(manifest)
    )
    backbone = ferzoo.backbones.FaceLandmark68Backbone(trainable=trainable)
    tfjs.set_layer_weights(backbone, weights)
    return backbone, weights["fc"], hashes


SSD_PROVENANCE = {
    "package": PACKAGE,
    "package_version": VERSION,
    "package_license": "MIT",
    "upstream": "face-api.js ssd_mobilenetv1_model (Vincent Mühler): a "
    "TensorFlow object-detection API SSD MobileNet v1 face detector",
    "upstream_license": "MIT (face-api.js)",
    "training_data": 'WIDER FACE (face-api.js README: "trained on the '
    'WIDERFACE dataset and the weights are provided by yeephycho", i.e. '
    "github.com/yeephycho/tensorflow-face-detection)",
}


def convert_ssd(package_dir):
    """The converted `SSDMobileNetV1FaceDetector`."""
    from ferzoo.convert import tfjs
    from ferzoo.predict.nets import SSDMobileNetV1FaceDetector

    manifest, hashes = source_files(package_dir, "ssd_mobilenetv1_model")
    weights = tfjs.ssd_mobilenetv1_weights(tfjs.read_tfjs_weights(manifest))
    net = SSDMobileNetV1FaceDetector()
    tfjs.set_layer_weights(net, weights)
    return net, hashes


def convert_landmark_net(package_dir):
    """The converted `FaceLandmark68Net` (feature extractor + fc)."""
    from ferzoo.convert import tfjs
    from ferzoo.predict.nets import FaceLandmark68Net

    manifest, hashes = source_files(package_dir, "face_landmark_68_model")
    weights = tfjs.face_feature_extractor_weights(
        tfjs.read_tfjs_weights(manifest)
    )
    net = FaceLandmark68Net()
    tfjs.set_layer_weights(
        net.get_layer("features"),
        {k: v for k, v in weights.items() if k != "fc"},
    )
    net.get_layer("fc").set_weights(weights["fc"])
    return net, hashes


def ssd_metadata(version, hashes):
    return {
        "description": "face-api's SSD MobileNet v1 face detector (512 px "
        "input, 5,118 anchors), converted from its TF.js weights; the "
        "default face detector of ferzoo-predict "
        "(ferzoo.predict.SSDFaceDetector: score > 0.5, NMS at IoU 0.5).",
        "paper": "Liu et al., SSD: Single Shot MultiBox Detector, ECCV 2016; "
        "Howard et al., MobileNets, 2017; Mühler, face-api.js (2018)",
        "dataset": {"name": "WIDER FACE", "image_size": 512},
        "recipe": {"image_size": 512, "normalization": "x / 127.5 - 1"},
        "source": {
            **SSD_PROVENANCE,
            "package_version": version,
            "files_sha256": hashes,
            "converter": "scripts/convert_faceapi.py",
        },
        "weights_dtype": "float32",
    }


def landmark_net_metadata(version, hashes):
    meta = landmark_metadata(version, hashes)
    meta["description"] = (
        "face-api's whole 68-point landmark net (feature extractor, "
        "average pooling, 256 -> 136 linear layer) at 112 px: 68 (x, y) "
        "points relative to the crop; ferzoo-predict aligns faces with it."
    )
    return meta


def write_backbone_preset(backbone, folder, metadata):
    from ferzoo.presets import save_to_preset

    save_to_preset(backbone, folder, metadata)
    size = (pathlib.Path(folder) / "model.weights.h5").stat().st_size
    if size > 25 * 2**20:
        raise click.ClickException(f"{folder}: weights are {size} bytes.")
    click.echo(f"wrote {folder} ({size / 2**20:.1f} MiB of weights)")


def recognition_metadata(version, hashes):
    return {
        "description": "dlib's face-recognition ResNet-29 (no batch norm), "
        "converted from face-api's TF.js weights; conv + scale folded. "
        "Pretrained face features for 112-150 px face crops.",
        "paper": "King, dlib face recognition model v1 (2017); He et al., "
        "Deep Residual Learning for Image Recognition, CVPR 2016",
        "dataset": {
            "name": "dlib face recognition training set",
            "image_size": 150,
        },
        "recipe": {"image_size": 150, "normalization": "(x - mean_rgb) / 255"},
        "source": {
            **DLIB_PROVENANCE,
            "package_version": version,
            "files_sha256": hashes,
            "converter": "scripts/convert_faceapi.py",
        },
        "weights_dtype": "float32",
    }


def landmark_metadata(version, hashes):
    return {
        "description": "face-api's 68-point landmark net (feature "
        "extractor: four dense blocks of depthwise-separable convs) at "
        "112 px, frozen by default; the landmark stream of DWMCA.",
        "paper": "Mühler, face-api.js (2018)",
        "dataset": {
            "name": "face-api.js 68-point landmark data",
            "image_size": 112,
        },
        "recipe": {"image_size": 112, "normalization": "(x - mean_rgb) / 255"},
        "source": {
            **LANDMARK_PROVENANCE,
            "package_version": version,
            "files_sha256": hashes,
            "converter": "scripts/convert_faceapi.py",
        },
        "weights_dtype": "float32",
    }


def write_expression_preset(package_dir, folder, version):
    """face-api's expression net as a ferzoo Baseline (FER2013 order)."""
    import ferzoo

    backbone, (kernel, bias), hashes = convert_feature_extractor(
        package_dir, "face_expression_model", trainable=True
    )
    model = ferzoo.models.Baseline(backbone=backbone, num_classes=7)
    model.classifier.set_weights(
        [kernel[:, FER2013_ORDER], bias[FER2013_ORDER]]
    )
    from ferzoo.presets import save_to_preset

    save_to_preset(model, folder, {
        "description": "face-api's 7-class expression net (reference model "
        "for peer rows; its own training data), classes in FER2013 order.",
        "paper": "Mühler, face-api.js (2018)",
        "dataset": {"name": "face-api.js expression data", "image_size": 112},
        "recipe": {"image_size": 112},
        "source": {**LANDMARK_PROVENANCE, "package_version": version,
                   "upstream": "face-api.js face_expression_model",
                   "files_sha256": hashes,
                   "class_map": {"faceapi_order": FACEAPI_EXPRESSIONS,
                                 "to_fer2013_columns": FER2013_ORDER}},
    })  # fmt: skip
    click.echo(f"wrote {folder} (face-api expression net)")
    return model


def mulberry32_pixels(seed, size):
    """The seeded uint8 images of scripts/faceapi_reference.mjs."""
    k = np.arange(1, size * size * 3 + 1, dtype=np.uint64)
    a = ((seed + k * 0x6D2B79F5) & 0xFFFFFFFF).astype(np.uint32)
    t = (a ^ (a >> 15)) * (a | 1)
    t = (t + (t ^ (t >> 7)) * (t | 61)) ^ t
    u = (t ^ (t >> 14)).astype(np.float64) / 2**32
    return np.floor(u * 256).astype(np.uint8).reshape(size, size, 3)


def load_reference(path):
    """The fixture JSON as NumPy arrays (base64 float32 decoded)."""
    import base64

    raw = json.loads(pathlib.Path(path).read_text())
    ref = {}
    for net in ("recognition", "landmark", "expression"):
        entry = raw[net]
        images = [mulberry32_pixels(s, entry["size"]) for s in entry["seeds"]]
        for image, expected in zip(images, entry["checksums"]):
            weights = np.arange(image.size) % 7 + 1
            if int((image.reshape(-1).astype(np.int64) * weights).sum()) != (
                expected
            ):
                raise click.ClickException(f"{path}: {net} input checksum")
        ref[f"{net}_inputs"] = np.stack(images)
        for key, value in entry.items():
            if isinstance(value, dict) and "data" in value:
                data = np.frombuffer(base64.b64decode(value["data"]), "<f4")
                ref[f"{net}_{key}"] = data.reshape(value["shape"])
    return ref


def check(fixture, recognition, landmark, expression):
    """Print the max abs error of each converted net against the fixture."""
    ref = load_reference(fixture)
    errors = {}
    if recognition is not None:
        features = np.asarray(recognition(ref["recognition_inputs"]))
        fc = ref["recognition_fc_columns"]
        descriptor = features.mean((1, 2)) @ fc
        expected = ref["recognition_descriptors"][:, : fc.shape[1]]
        errors["recognition"] = np.abs(descriptor - expected).max()
    if landmark is not None:
        features = np.asarray(landmark(ref["landmark_inputs"])).mean((1, 2))
        fc = ref["landmark_fc_weights_columns"]
        points = features @ fc + ref["landmark_fc_bias"][: fc.shape[1]]
        expected = ref["landmark_outputs"][:, : fc.shape[1]]
        errors["landmark"] = np.abs(points - expected).max()
    if expression is not None:
        probs = expression.predict(ref["expression_inputs"], verbose=0)
        expected = ref["expression_probabilities"][:, FER2013_ORDER]
        errors["expression"] = np.abs(probs - expected).max()
    for name, error in errors.items():
        click.echo(f"parity {name}: max abs error {error:.2e}")
    if any(e > 1e-4 for e in errors.values()):
        raise click.ClickException("parity above 1e-4")


# The backbone presets written, in order: (converter of a package folder,
# metadata of a version and the files' hashes).
PRESETS = {
    "dlib_resnet29": (convert_recognition, recognition_metadata),
    "face_landmark68": (
        lambda folder: convert_feature_extractor(
            folder, "face_landmark_68_model"
        ),
        landmark_metadata,
    ),
    "face_landmark68_net": (convert_landmark_net, landmark_net_metadata),
    "ssd_mobilenetv1_face": (convert_ssd, ssd_metadata),
}


@click.command()
@click.option(
    "--package-dir",
    type=click.Path(file_okay=False, exists=True),
    help="An unpacked face-api package; default: npm pack it.",
)
@click.option(
    "--version",
    default=VERSION,
    show_default=True,
    help="Package version to npm pack.",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    default=str(ROOT / "presets"),
    show_default=True,
    help="Folder that receives the preset folders.",
)
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(list(PRESETS)),
    help="Write only these presets.",
)
@click.option(
    "--expression-dir",
    type=click.Path(file_okay=False),
    help="Also write face-api's expression net as a Baseline here.",
)
@click.option(
    "--check",
    "fixture",
    type=click.Path(dir_okay=False, exists=True),
    help="Compare with recorded TF.js outputs "
    "(tests/fixtures/faceapi_reference.json).",
)
def main(package_dir, version, output_dir, only, expression_dir, fixture):
    """Convert face-api's TF.js nets into ferzoo backbone presets."""
    with tempfile.TemporaryDirectory(prefix="faceapi-") as tmp:
        if package_dir is None:
            package_dir = fetch_package(version, tmp)
        package_dir = pathlib.Path(package_dir)
        version = package_version(package_dir)
        out = pathlib.Path(output_dir)
        nets, expression = {}, None
        for name, (convert, metadata) in PRESETS.items():
            if only and name not in only:
                continue
            # Each converter returns the net first and the hashes last.
            converted = convert(package_dir)
            nets[name] = converted[0]
            write_backbone_preset(
                nets[name], out / name, metadata(version, converted[-1])
            )
        if expression_dir:
            expression = write_expression_preset(
                package_dir, expression_dir, version
            )
        if fixture:
            check(fixture, nets.get("dlib_resnet29"),
                  nets.get("face_landmark68"), expression)  # fmt: skip


if __name__ == "__main__":
    main()
