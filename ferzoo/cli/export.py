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
    "--output",
    required=True,
    type=click.Path(file_okay=False),
    help="SavedModel folder to write: a new or empty folder, or an "
    "earlier export with --overwrite (written atomically).",
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
@options.allow_untrained_option
@options.backend_option
@options.json_option
@options.verbose_option
@options.handle_errors
def main(
    model_path,
    output,
    overwrite,
    image_size,
    allow_untrained,
    backend,
    as_json,
    verbose,
):
    """Export a model as a TensorFlow SavedModel that returns probabilities.

    `serve` takes RGB pixels in [0, 255], uint8 or float32, shape
    (batch, H, W, 3) of any H and W (resized inside to the model's input
    size), and returns class probabilities; `class_names()` names them.
    No outside preprocessing or side file is needed. A preset without
    trained weights is refused unless --allow-untrained.

    \b
    Examples:
      ferzoo-export --model runs/ferzoo/best.keras --output exported/scn
      python -c "import tensorflow as tf; \\
          m = tf.saved_model.load('exported/scn'); print(m.class_names())"
    """
    options.set_backend(backend)
    from ferzoo import outputs
    from ferzoo import training
    from ferzoo.export import export_saved_model

    # Refuse a folder that is not ours before loading anything.
    outputs.check_replaceable(output, "export", overwrite=overwrite)
    model = training.load_any(model_path, allow_untrained=allow_untrained)
    shape = None if image_size is None else (image_size, image_size, 3)
    path = export_saved_model(
        model, output, image_shape=shape, overwrite=overwrite
    )
    info = {
        "saved_model": str(path),
        "signature": "serve",
        "input_shape": [None, None, None, 3],
        "resized_to": list((shape or model.image_shape)[:2]),
        "class_names": list(model.recipe.get("class_names") or []),
        "num_classes": model.num_classes,
    }
    options.emit(info, as_json, f"wrote SavedModel to {path}")


if __name__ == "__main__":
    main()
