import click

from ferzoo.cli import options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--model",
    "model_path",
    required=True,
    metavar="PATH_OR_PRESET",
    help="A .keras checkpoint, a training output folder or a preset name.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["savedmodel", "onnx", "litert", "tfjs"]),
    default="savedmodel",
    show_default=True,
    help="savedmodel (TensorFlow), onnx (ONNX Runtime), litert "
    "(model.tflite + labels.txt) or tfjs (TF.js graph model).",
)
@click.option(
    "--output",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write: the SavedModel, or the folder that receives "
    "model.onnx / model.tflite / model.json. A new or empty folder, or an "
    "earlier ferzoo export with --overwrite.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an earlier ferzoo export in --output (never a folder "
    "ferzoo did not write).",
)
@click.option(
    "--image-size",
    type=click.IntRange(1),
    default=None,
    help="Input height and width in pixels; defaults to the model's.",
)
@click.option(
    "--tta/--no-tta",
    "tta",
    default=None,
    help="Bake the test-time flip into the exported graph: each image's "
    "probabilities averaged with its mirror image's (recorded in the "
    "export's metadata). Default: the model's own setting.",
)
@options.allow_untrained_option
@options.backend_option
@options.json_option
@options.verbose_option
@options.handle_errors
def main(
    model_path,
    fmt,
    output,
    overwrite,
    image_size,
    tta,
    allow_untrained,
    backend,
    as_json,
    verbose,
):
    """Export a model that takes pixels and returns probabilities.

    Every format takes RGB pixels 0-255 (uint8; int32 for TF.js, float32
    too for the SavedModel), shape (batch, H, W, 3) of any H and W
    (resized inside to the model's input size), returns class
    probabilities and carries the class names: the SavedModel's
    `class_names()`, ONNX metadata_props, the .tflite metadata and
    labels.txt, TF.js userDefinedMetadata. ONNX and LiteRT exports also
    hold ferzoo-predict's face detector and landmark nets
    (detector.onnx, landmarks.onnx / .tflite), so that ferzoo-predict
    --runtime onnx|litert needs no TensorFlow. ONNX needs tf2onnx
    (pip install 'ferzoo[export]'). A preset without trained weights is
    refused unless --allow-untrained. --tta puts the test-time flip in the
    graph (each image's probabilities averaged with its mirror image's;
    twice the compute), recorded in the export's metadata.

    \b
    Examples:
      ferzoo-export --model runs/ferzoo/best.keras --output exported/scn
      ferzoo-export --model ferzoo_fer2013 --format onnx --output exported/onnx
      ferzoo-export --model ferzoo_fer2013 --format litert --output out/lite
      ferzoo-export --model ferzoo_fer2013 --format tfjs --output demo/model
      ferzoo-export --model ferzoo_fer2013 --tta --output exported/tta
      ferzoo-predict photo.jpg --model exported/onnx --runtime onnx
    """
    options.set_backend(backend)
    from ferzoo import outputs
    from ferzoo import training
    from ferzoo.export import export
    from ferzoo.predict import loading

    # Refuse a folder that is not ours before loading anything.
    outputs.check_replaceable(output, "export", overwrite=overwrite)
    model = training.load_any(model_path, allow_untrained=allow_untrained)
    shape = None if image_size is None else (image_size, image_size, 3)
    meta = {"metadata.json": training.model_metadata(model_path)}
    grayscale = loading._grayscale_from_metadata(meta)
    path = export(
        model,
        output,
        fmt,
        image_shape=shape,
        grayscale=grayscale,
        overwrite=overwrite,
        test_time_flip=tta,
    )
    info = {
        "format": fmt,
        "path": str(path),
        "input_shape": [None, None, None, 3],
        "resized_to": list((shape or model.image_shape)[:2]),
        "class_names": list(model.recipe.get("class_names") or []),
        "num_classes": model.num_classes,
        "grayscale": grayscale,
        "test_time_flip": bool(model.test_time_flip if tta is None else tta),
    }
    if fmt == "savedmodel":
        info["saved_model"] = str(path)
        info["signature"] = "serve"
    flip = " (test-time flip in the graph)" if info["test_time_flip"] else ""
    options.emit(info, as_json, f"wrote {fmt} model to {path}{flip}")


if __name__ == "__main__":
    main()
