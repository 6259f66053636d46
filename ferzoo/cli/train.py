import click

from ferzoo.cli import options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@options.preset_option(required=False)
@options.data_option
@click.option(
    "--output-dir",
    default="runs/ferzoo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Results folder; rerun with the same folder to resume.",
)
@click.option(
    "--noise-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of each class's training labels to flip (0-1).",
)
@click.option(
    "--noise-type",
    type=click.Choice(["symmetric", "pair"]),
    default="symmetric",
    show_default=True,
    help="Flip to a uniform other class, or to a fixed paired class.",
)
@click.option(
    "--noise-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="EAC-style noisy label file (RAF-DB list format) to train on.",
)
@click.option(
    "--noise-seed", default=0, show_default=True, help="Seed of the flips."
)
@click.option("--epochs", type=click.IntRange(1), help="Epochs to train.")
@click.option("--batch-size", type=click.IntRange(1), help="Batch size.")
@click.option(
    "--learning-rate",
    type=click.FloatRange(0, min_open=True),
    help="Initial learning rate.",
)
@click.option(
    "--limit-per-class",
    type=click.IntRange(1),
    help="Train on at most this many images per class (seeded subset).",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    help="Seed of initialisation, shuffling and augmentation.",
)
@click.option(
    "--no-resume", is_flag=True, help="Start over even if the folder has a run."
)
@click.option(
    "--list-presets", is_flag=True, help="List the built-in presets and exit."
)
@click.option(
    "--distribute",
    type=click.Choice(["none", "data-parallel"]),
    default="none",
    show_default=True,
    help="data-parallel: split each batch over every visible device "
    "(and every process of a multi-host run); see docs/distributed.md.",
)
@click.option(
    "--stream/--no-stream",
    default=None,
    help="Decode images from their files inside tf.data instead of "
    "into memory (default: only above 50,000 files).",
)
@options.on_error_option
@options.backend_option
@options.json_option
@options.verbose_option
@options.handle_errors
def main(
    preset,
    data,
    output_dir,
    noise_rate,
    noise_type,
    noise_file,
    noise_seed,
    epochs,
    batch_size,
    learning_rate,
    limit_per_class,
    seed,
    no_resume,
    list_presets,
    distribute,
    stream,
    skip_bad_samples,
    backend,
    as_json,
    verbose,
):
    """Train a noisy-label FER model from a preset on a data set.

    Writes to --output-dir: best.keras and last.keras (atomic), history.csv,
    TensorBoard logs, results.json (test accuracy, macro-F1, noise
    detection), the confusion matrix (PNG, JSON), and a preset
    (config.json, metadata.json, model.weights.h5) for ferzoo-eval and
    ferzoo-export. An interrupted run resumes in the same folder.

    \b
    Examples:
      ferzoo-train --preset scn_small_cnn_synthetic --noise-rate 0.3
      ferzoo-train --preset scn_small_cnn_fer2013 \\
          --data fer2013:/data/fer2013 --noise-rate 0.3 --output-dir runs/scn
      KERAS_BACKEND=jax ferzoo-train --preset baseline_resnet18_fer2013 \\
          --data fer2013:/data/fer2013 --epochs 40
    """
    options.set_backend(backend)
    import ferzoo

    if list_presets:
        for name, meta in ferzoo.list_presets().items():
            click.echo(f"{name:32s} {meta.get('description', '')}")
        return
    if not preset:
        raise click.UsageError("Missing option '--preset'.")
    from ferzoo import training

    results = training.train(
        preset,
        data=data,
        output_dir=output_dir,
        noise_rate=noise_rate,
        noise_type=noise_type,
        noise_seed=noise_seed,
        noise_file=noise_file,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        limit_per_class=limit_per_class,
        on_error="skip" if skip_bad_samples else "raise",
        verbose=0 if as_json else "auto",
        distribute=distribute,
        stream=stream,
    )
    options.emit(results, as_json, summary_text(results, output_dir))


def summary_text(results, output_dir):
    test = results.get("test") or {}
    lines = [f"results in {output_dir}/results.json"]
    if test:
        lines.append(
            f"test accuracy: {test['final']['accuracy']:.4f} (final), "
            f"{test['best_on_val_accuracy']:.4f} (best on val, epoch "
            f"{test['best_epoch']}), {test['last5_mean_accuracy']:.4f} "
            "(mean of last 5 epochs)"
        )
        lines.append(f"test macro-F1: {test['final']['macro_f1']:.4f}")
    noise = results.get("noise_detection")
    if noise and noise.get("roc_auc") is not None:
        lines.append(
            f"noise detection ROC-AUC ({noise['score']}): "
            f"{noise['roc_auc']:.4f} over {noise['num_flipped']} flipped of "
            f"{noise['num_samples']} labels"
        )
        if noise.get("relabeled") is not None:
            lines.append(
                f"relabels: {noise['relabeled']} ({noise['restored']} "
                f"restored the true label, {noise['broken']} broke a "
                "correct one)"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
