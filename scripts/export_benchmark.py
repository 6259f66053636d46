"""Parity and latency of the shipped model's exports, runtime by runtime.

Exports `ferzoo_fer2013` (or `--model`) as SavedModel, ONNX, LiteRT and
TF.js into a temporary folder, runs the same images through Keras on
TensorFlow, the SavedModel's `serve`, ONNX Runtime, LiteRT, TF.js in node
(wasm backend) and TF.js in headless Chromium (wasm; in the demo page,
on the same images), and
prints a markdown table: the largest difference from `serve` and the time
per image (batch of 1, at the model's input size; median of `--repeat`
passes over the images; each runtime with its default threads), also as
a ratio to Keras. It then times `ferzoo-predict PHOTO` to its
first (and only) face for Keras, ONNX Runtime and LiteRT: the whole
command, process start to exit.

Needs the `export` and `deploy-test` extras, and node for the TF.js rows.

    KERAS_BACKEND=tensorflow python scripts/export_benchmark.py
    KERAS_BACKEND=tensorflow python scripts/export_benchmark.py \\
        --images 16 --repeat 5 --json docs/benchmarks/export_latency.json
"""

import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import click
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def timed(fn, batches, repeat):
    """Median over `repeat` passes of the mean time per image, in ms."""
    fn(batches[0])  # warm-up
    fn(batches[0])
    passes = []
    for _ in range(repeat):
        start = time.perf_counter()
        for batch in batches:
            fn(batch)
        passes.append((time.perf_counter() - start) / len(batches) * 1e3)
    return statistics.median(passes)


def photo(path):
    import matplotlib.cbook
    from PIL import Image

    source = matplotlib.cbook.get_sample_data("grace_hopper.jpg")
    Image.open(source).convert("RGB").save(path)
    return path


def first_face_seconds(args, runs=3):
    """Median wall time of a `ferzoo-predict` command, in seconds."""
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "ferzoo.cli.predict", *args, "--json"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        out.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise click.ClickException(proc.stderr[-2000:])
        faces = json.loads(proc.stdout)["images"][0]["faces"]
    return statistics.median(out), faces[0]


def first_faces(tmp, model_name):
    """`ferzoo-predict` on the Grace Hopper JPEG with the default
    detector and alignment: Keras (the preset) and the ONNX / LiteRT
    exports in `tmp`, with their faces' largest differences from Keras'."""
    jpg = tmp / "face.jpg"
    from PIL import Image

    Image.open(photo(tmp / "face2.png")).save(jpg, quality=95)
    startup = {}
    reference = None
    for name, args in [
        ("Keras (preset)", [str(jpg), "--model", model_name]),
        ("ONNX Runtime", [str(jpg), "--model", str(tmp / "onnx")]),
        ("LiteRT", [str(jpg), "--model", str(tmp / "litert")]),
    ]:
        seconds, face = first_face_seconds(args)
        probs = np.array(list(face["probabilities"].values()))
        box = np.array(list(face["box"].values()))
        if reference is None:
            reference = probs, box
        startup[name] = {
            "seconds": seconds,
            "max_abs_diff_vs_keras": float(np.abs(probs - reference[0]).max()),
            "box_diff_px_vs_keras": float(np.abs(box - reference[1]).max()),
        }
        click.echo(f"first face, {name}: {startup[name]}", err=True)
    return startup


def first_face_lines(startup):
    lines = [
        "| ferzoo-predict on one photo | seconds (process start to exit) "
        "| max abs diff vs Keras | box diff vs Keras (px) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, r in startup.items():
        lines.append(
            f"| {name} | {r['seconds']:.2f} | "
            f"{r['max_abs_diff_vs_keras']:.1e} | "
            f"{r['box_diff_px_vs_keras']:.0f} |"
        )
    return lines


@click.command()
@click.option("--model", "model_name", default="ferzoo_fer2013")
@click.option("--images", "num_images", default=16, show_default=True)
@click.option("--repeat", default=5, show_default=True)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), default=None
)
@click.option(
    "--first-face-only",
    is_flag=True,
    help="Only export ONNX and LiteRT and time ferzoo-predict on a photo.",
)
def main(model_name, num_images, repeat, json_path, first_face_only):
    import demo_setup
    import keras
    import tensorflow as tf

    import ferzoo
    from ferzoo import training
    from ferzoo.deploy import runtimes

    if keras.backend.backend() != "tensorflow":
        raise click.UsageError("run with KERAS_BACKEND=tensorflow")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ferzoo-bench-"))
    model = training.load_any(model_name)
    if first_face_only:
        for fmt in ("onnx", "litert"):
            ferzoo.export.export(model, tmp / fmt, fmt, grayscale=True)
        click.echo("\n".join(first_face_lines(first_faces(tmp, model_name))))
        return
    size = tuple(model.image_shape[:2])
    paths = {
        fmt: ferzoo.export.export(model, tmp / fmt, fmt, grayscale=True)
        for fmt in ("savedmodel", "onnx", "litert", "tfjs")
    }
    faces, _ = ferzoo.data.make_synthetic_faces(num_images, image_size=size[0])
    faces = np.asarray(faces, "uint8")
    if faces.ndim == 3:  # gray faces -> RGB
        faces = np.repeat(faces[..., None], 3, axis=-1)
    batches = [faces[i : i + 1] for i in range(len(faces))]
    loaded = tf.saved_model.load(str(paths["savedmodel"]))
    reference = loaded.serve(tf.constant(faces)).numpy()
    onnx = runtimes.load_exported(tmp / "onnx", "onnx")
    lite = runtimes.load_exported(tmp / "litert", "litert")
    rows = {}

    def row(name, fn, probs):
        diff = float(np.abs(np.asarray(probs) - reference).max())
        rows[name] = {"max_abs_diff": diff, "ms": timed(fn, batches, repeat)}
        click.echo(f"{name}: {rows[name]}", err=True)

    def keras_fn(x):
        return model.predict_on_batch(x.astype("float32"))

    row("Keras (TensorFlow backend)", keras_fn, keras_fn(faces))

    def serve_fn(x):
        return loaded.serve(tf.constant(x)).numpy()

    row("SavedModel serve", serve_fn, serve_fn(faces))
    row("ONNX Runtime", onnx, onnx(faces))
    row("LiteRT", lite, lite(faces))
    if demo_setup.node_available():
        modules = demo_setup.install_npm()
        np.save(tmp / "faces.npy", faces)
        proc = subprocess.run(
            [
                "node",
                str(ROOT / "scripts" / "tfjs_predict.mjs"),
                "--model",
                str(tmp / "tfjs"),
                "--images",
                str(tmp / "faces.npy"),
                "--node-modules",
                str(modules),
                "--repeat",
                str(repeat),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        diff = np.abs(np.array(out["probabilities"]) - reference).max()
        rows["TF.js in node (wasm)"] = {
            "max_abs_diff": float(diff),
            "ms": out["ms_per_image"],
        }
        demo = demo_setup.build_demo(tmp / "demo", modules)
        os.replace(tmp / "tfjs", demo / "model")
        np.save(demo / "faces.npy", faces)
        server = demo_setup.serve(demo)
        try:
            proc = subprocess.run(
                [
                    "node",
                    str(ROOT / "scripts" / "browser_check.mjs"),
                    "--url",
                    f"http://127.0.0.1:{server.server_address[1]}/",
                    "--image",
                    str(photo(tmp / "face.png")),
                    "--node-modules",
                    str(modules),
                    "--time",
                    str(repeat),
                    "--npy",
                    "faces.npy",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
        finally:
            server.shutdown()
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        diff = np.abs(np.array(out["probabilities"]) - reference).max()
        rows["TF.js in Chromium (wasm)"] = {
            "max_abs_diff": float(diff),
            "ms": out["ms_per_image"],
        }
    startup = first_faces(tmp, model_name)
    base = rows["Keras (TensorFlow backend)"]["ms"]
    lines = [
        "| runtime | ms / image | time vs Keras | max abs diff vs serve |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, r in rows.items():
        diff = "-" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.1e}"
        lines.append(
            f"| {name} | {r['ms']:.1f} | {r['ms'] / base:.2f}x | {diff} |"
        )
    lines += ["", *first_face_lines(startup)]
    click.echo("\n".join(lines))
    if json_path:
        info = {
            "command": "KERAS_BACKEND=tensorflow python "
            "scripts/export_benchmark.py "
            f"--images {num_images} --repeat {repeat}",
            "model": model_name,
            "images": f"{num_images} synthetic faces, {size[0]} px, batch 1",
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
            "per_image": rows,
            "first_face": startup,
            "table": lines,
        }
        pathlib.Path(json_path).write_text(json.dumps(info, indent=1) + "\n")


if __name__ == "__main__":
    main()
