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
@options.data_option_with(
    None,
    " Default: the data set the model was trained on, from its run's "
    "spec.json (or metadata.json); a model without one needs --data.",
)
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test"]),
    default="test",
    show_default=True,
    help="Split to evaluate.",
)
@options.eval_batch_size_option
@click.option(
    "--tta/--no-tta",
    "tta",
    default=None,
    help="Test-time flip: average each image's probabilities with its "
    "mirror image's. Default: the model's own setting.",
)
@options.report_dir_option
@options.on_error_option
@options.allow_untrained_option
@options.backend_option
@options.json_option
@options.verbose_option
@options.handle_errors
def main(
    model_path,
    data,
    split,
    batch_size,
    tta,
    output_dir,
    skip_bad_samples,
    allow_untrained,
    backend,
    as_json,
    verbose,
):
    """Evaluate a checkpoint or preset on a data set split.

    Prints top-1 accuracy, macro-F1 and per-class accuracy.

    Without --data, evaluates on the data set the model was trained on
    (recorded in its training output folder). A preset without trained
    weights is refused unless --allow-untrained.

    \b
    Examples:
      ferzoo-eval --model runs/ferzoo/best.keras
      ferzoo-eval --model runs/scn --data fer2013:/data/fer2013 --split val
      ferzoo-eval --model ferzoo_fer2013 --data fer2013:/data/fer2013 --tta
    """
    options.set_backend(backend)
    import pathlib

    from ferzoo import metrics
    from ferzoo import outputs
    from ferzoo import training

    # The output folder is checked (and locked) before anything is read.
    with outputs.owned(output_dir, "eval"):
        model = model_path
        if tta is not None:
            model = training.load_any(model_path, allow_untrained)
            model.test_time_flip = tta
            data = data or training.trained_data(model_path)
        report = training.evaluate(
            model,
            data,
            split=split,
            batch_size=batch_size,
            on_error="skip" if skip_bad_samples else "raise",
            allow_untrained=allow_untrained,
        )
        if output_dir:
            out = pathlib.Path(output_dir)
            training.atomic_write_json(out / "report.json", report)
            metrics.save_confusion_matrix(report, out / "confusion_matrix.png")
    data = report["data"]
    if tta is not None:
        report["test_time_flip"] = tta
    lines = [
        f"{data} [{split}]: accuracy {report['accuracy']:.4f}, macro-F1 "
        f"{report['macro_f1']:.4f} over {report['num_samples']} images"
        + {None: "", True: " (test-time flip)", False: " (no flip)"}[tta]
    ]
    for name, acc in report["per_class_accuracy"].items():
        lines.append(f"  {name:>10}: {acc:.4f}")
    options.emit(report, as_json, "\n".join(lines))


if __name__ == "__main__":
    main()
