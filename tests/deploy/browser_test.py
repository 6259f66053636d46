"""The demo page (docs/demo/) in a real headless Chromium.

npm's @sparticuz/chromium (a Chromium binary) driven by puppeteer-core
loads the page, which loads the shipped model's TF.js export and face-api's
detector; the test uploads a photo and checks each face's probabilities
against the Keras model on the same crop (gray, resized with TensorFlow's
antialiased bilinear resize, as the SavedModel's `serve` does) within
1e-3, then starts the page's webcam on Chromium's fake camera and checks
that a frame is analysed. With FERZOO_UPDATE_SCREENSHOT=1 it also
writes the page's screenshot to docs/images/demo_page.jpg (the README's
picture).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import ferzoo
from tests.test_case import REPO

sys.path.insert(0, str(REPO / "scripts"))
import demo_setup  # noqa: E402

SCREENSHOT = REPO / "docs" / "images" / "demo_page.jpg"


def _photo(path):
    """matplotlib's public-domain portrait of Grace Hopper, as a PNG (a
    lossless file: the browser and PIL decode the same pixels)."""
    import matplotlib.cbook

    source = matplotlib.cbook.get_sample_data("grace_hopper.jpg")
    Image.open(source).convert("RGB").save(path)
    return path


@pytest.mark.large
@pytest.mark.skipif(not demo_setup.node_available(), reason="node is absent")
def test_page_matches_python_in_headless_chromium(tmp_path):
    # On every backend: on JAX the TF.js export is traced in a TensorFlow
    # child process from the JAX model's weights, and Python's reference
    # probabilities come from the JAX model itself.
    import tensorflow as tf

    from ferzoo import training

    modules = demo_setup.install_npm()
    demo = demo_setup.build_demo(tmp_path / "demo", modules)
    model = training.load_any("ferzoo_fer2013")
    ferzoo.export.export(model, demo / "model", "tfjs", grayscale=True)
    photo = _photo(tmp_path / "face.png")
    server = demo_setup.serve(demo)
    try:
        proc = subprocess.run(
            [
                "node",
                str(REPO / "scripts" / "browser_check.mjs"),
                "--url",
                f"http://127.0.0.1:{server.server_address[1]}/index.html",
                "--image",
                str(photo),
                "--node-modules",
                str(modules),
                "--screenshot",
                str(tmp_path / "page.png"),
                "--webcam",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    faces = report["results"]["faces"]
    assert len(faces) == 1, report  # one face in the portrait
    rgb = Image.open(photo).convert("RGB")
    assert [report["results"]["width"], report["results"]["height"]] == list(
        rgb.size
    )
    for face in faces:
        x, y, w, h = face["box"]
        crop = rgb.crop((x, y, x + w, y + h)).convert("L").convert("RGB")
        crop = np.asarray(crop, "float32")[None]
        crop = tf.image.resize(crop, (112, 112), antialias=True).numpy()
        expected = model.predict(crop, verbose=0)[0]
        got = np.array(face["probabilities"])
        np.testing.assert_allclose(got, expected, atol=1e-3)
        assert got.max() > 0.3  # a real prediction, not a flat one
    # The webcam path on Chromium's fake camera (a pattern, no face).
    webcam = report["webcam"]
    assert webcam["state"] == "done" and webcam["button"] == "Stop the webcam"
    assert webcam["width"] > 0 and webcam["height"] > 0
    assert webcam["faces"] == 0
    if os.environ.get("FERZOO_UPDATE_SCREENSHOT"):
        image = Image.open(tmp_path / "page.png").convert("RGB")
        image.thumbnail((900, 900))
        image.save(SCREENSHOT, quality=80, optimize=True)
