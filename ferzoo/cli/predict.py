import sys

import click

from ferzoo.cli import options

EXIT_UNREADABLE = 5
EXIT_NO_FACE = 6


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--model",
    default="ferzoo_fer2013",
    show_default=True,
    metavar="PRESET_OR_RUN_OR_EXPORT",
    help="A preset name or folder, a training output folder (its "
    "best.keras), a .keras file, a SavedModel folder, or an ONNX / LiteRT "
    "export folder (ferzoo-export --format onnx|litert).",
)
@click.option(
    "--runtime",
    type=click.Choice(["keras", "onnx", "litert"]),
    default=None,
    help="onnx / litert: run an exported model in ONNX Runtime / LiteRT, "
    "without loading TensorFlow or Keras (starts in about a second). "
    "Default: an export folder on its runtime, anything else in Keras.",
)
@click.option(
    "--detector",
    type=click.Choice(["haar", "none"]),
    default="haar",
    show_default=True,
    help="Find faces with OpenCV's Haar cascade, or take each image as one "
    "face crop.",
)
@click.option(
    "--margin",
    type=options.FiniteFloatRange(0, 2),
    default=0.0,
    show_default=True,
    help="Extra crop on each side of a found face, as a fraction of the "
    "box's width and height.",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write predictions.csv, predictions.json and annotated copies of "
    "the images here.",
)
@click.option(
    "--cam",
    is_flag=True,
    help="Also write each face's class activation map of its predicted "
    "class as a PNG overlay (needs --output-dir).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=32,
    show_default=True,
    help="Faces per forward pass.",
)
@options.backend_option
@options.json_option
@options.verbose_option
@options.handle_errors
def main(
    paths,
    model,
    runtime,
    detector,
    margin,
    output_dir,
    cam,
    batch_size,
    backend,
    as_json,
    verbose,
):
    """Print the emotion of every face in photos or folders of photos.

    PATH is an image file (jpg, png, bmp, webp) or a folder of them. Each
    face found gets a row: file, box (x, y, width, height in pixels),
    top emotion with its probability, and the whole distribution. Exit
    codes: 0 every file read and a face found in each; 5 a file could not
    be read (it is listed, the others are still done); 6 an image had no
    face; 3 the model could not be loaded, or it has no CAM for --cam.

    \b
    Examples:
      ferzoo-predict photo.jpg
      ferzoo-predict photos/ --output-dir predictions --cam
      ferzoo-predict crops/ --detector none --model runs/scn --json
      ferzoo-predict photo.jpg --model exported/onnx --runtime onnx
    """
    if cam and not output_dir:
        raise click.UsageError("--cam writes PNG files: give --output-dir.")
    if cam and runtime in ("onnx", "litert"):
        raise click.UsageError(
            "--cam needs the model's feature maps: run it in Keras."
        )
    options.set_backend(backend)
    from ferzoo import outputs

    # The output folder is checked (and locked) before anything is read.
    with outputs.owned(output_dir, "predict"):
        code = _run(
            paths,
            model,
            runtime,
            detector,
            margin,
            output_dir,
            cam,
            batch_size,
            as_json,
        )
    sys.exit(code)


def _run(
    paths,
    model,
    runtime,
    detector,
    margin,
    output_dir,
    cam,
    batch_size,
    as_json,
):
    from ferzoo import predict as api
    from ferzoo.predict import report as reports

    predictor = api.load_predictor(model, runtime=runtime)
    for note in predictor.notes:
        click.echo(f"warning: {note}", err=True)
    try:
        results = api.predict(
            list(paths),
            model=predictor,
            detector=detector,
            margin=margin,
            cam=cam,
            batch_size=batch_size,
        )
    except api.CamUnsupportedError as e:
        raise options.DataOrPresetError(str(e)) from e
    for r in results:
        if r.error:
            click.echo(f"error: {r.source}: {r.error} (skipped)", err=True)
    report = reports.to_json(
        results, predictor, detector=detector, margin=margin
    )
    report["exit_code"] = exit_code(results)
    if output_dir:
        reports.write_outputs(results, report, output_dir, cam=cam)
    text = reports.format_table(results, predictor.class_names)
    if output_dir:
        text += f"\nwrote predictions.csv, predictions.json to {output_dir}"
    options.emit(report, as_json, text)
    return report["exit_code"]


def exit_code(results):
    """5 if a file could not be read, else 6 if an image had no face."""
    statuses = {r.status for r in results}
    if "error" in statuses:
        return EXIT_UNREADABLE
    return EXIT_NO_FACE if "no_face" in statuses else 0


if __name__ == "__main__":
    main()
