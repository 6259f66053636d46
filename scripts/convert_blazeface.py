"""Convert MediaPipe's BlazeFace (from `@vladmandic/human`) into a preset.

Reads `models/blazeface.json` (a TF.js graph model: topology and weight
manifest) and `models/blazeface.bin` of the npm package
`@vladmandic/human` (MIT; version 3.3.6 by default; the model itself is
MediaPipe's back-camera BlazeFace face detector, Apache-2.0, as its
`generatedBy` field says), maps the graph's convs onto
`ferzoo.predict.blazeface.BlazeFaceNet` with
`ferzoo.convert.tfjs.blazeface_weights`, and writes
`presets/blazeface_face/` (`config.json`, `metadata.json` with the
package, version, file hashes and licences, `model.weights.h5` in
float32). Without `--package-dir` the package is fetched with `npm pack`
into a temporary folder (the npm registry must be reachable).

Invocations:
    python scripts/convert_blazeface.py
    python scripts/convert_blazeface.py --package-dir /tmp/human/package
"""

import json
import pathlib
import sys
import tempfile

import click

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from convert_faceapi import fetch_package  # noqa: E402
from convert_faceapi import package_version  # noqa: E402
from convert_faceapi import sha256  # noqa: E402
from convert_faceapi import write_backbone_preset  # noqa: E402

PACKAGE = "@vladmandic/human"
VERSION = "3.3.6"
PRESET = "blazeface_face"


def convert(package_dir):
    """The converted `BlazeFaceNet` and its source files' hashes."""
    from ferzoo.convert import tfjs
    from ferzoo.predict.blazeface import BlazeFaceNet

    model_json = package_dir / "models" / "blazeface.json"
    if not model_json.is_file():
        raise click.ClickException(f"{model_json}: not found.")
    topology = json.loads(model_json.read_text())
    files = [model_json] + [
        model_json.parent / p
        for group in topology["weightsManifest"]
        for p in group["paths"]
    ]
    weights = tfjs.blazeface_weights(
        topology, tfjs.read_tfjs_weights(model_json)
    )
    net = BlazeFaceNet()
    tfjs.set_layer_weights(net, weights)
    hashes = {f"models/{f.name}": sha256(f) for f in files}
    return net, hashes, topology.get("generatedBy")


def metadata(version, hashes, generated_by):
    return {
        "description": "MediaPipe's BlazeFace face detector (back-camera "
        "model: 256 px input, 896 anchors, 6 keypoints), converted from "
        "the TF.js graph model of @vladmandic/human; a second detector "
        "for ferzoo-predict (ferzoo.predict.blazeface.BlazeFaceNet).",
        "paper": "Bazarevsky et al., BlazeFace: Sub-millisecond Neural "
        "Face Detection on Mobile GPUs, CVPR Workshops 2019",
        "dataset": {"name": "MediaPipe face detection data (not published)"},
        "recipe": {"image_size": 256, "normalization": "x / 127.5 - 1"},
        "source": {
            "package": PACKAGE,
            "package_version": version,
            "package_license": "MIT",
            "upstream": "MediaPipe face_detection (back-camera BlazeFace), "
            f"converted to TF.js by Vladimir Mandic (generatedBy: "
            f"{generated_by})",
            "upstream_license": "Apache-2.0 (MediaPipe, "
            "github.com/google/mediapipe; human's README lists the model "
            "as 'MediaPipe BlazeFace Back variation')",
            "training_data": "Google's internal face data set (the "
            "BlazeFace paper and MediaPipe model card; not published)",
            "files_sha256": hashes,
            "converter": "scripts/convert_blazeface.py",
        },
        "weights_dtype": "float32",
    }


@click.command()
@click.option(
    "--package-dir",
    type=click.Path(exists=True, file_okay=False),
    help="An unpacked @vladmandic/human package (its `package/` folder); "
    "default: npm pack it into a temporary folder.",
)
@click.option("--version", default=VERSION, show_default=True)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    default=str(ROOT / "presets"),
    show_default=True,
    help="Folder that receives the preset folder.",
)
def main(package_dir, version, output_dir):
    """Convert human's BlazeFace into the `blazeface_face` preset."""
    with tempfile.TemporaryDirectory(prefix="human-") as tmp:
        if package_dir is None:
            package_dir = fetch_package(version, tmp, PACKAGE)
        package_dir = pathlib.Path(package_dir)
        net, hashes, generated_by = convert(package_dir)
        write_backbone_preset(
            net,
            pathlib.Path(output_dir) / PRESET,
            metadata(package_version(package_dir), hashes, generated_by),
        )


if __name__ == "__main__":
    main()
