import click

from ferzoo.cli import options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@options.preset_option(required=False)
@options.data_option
@options.output_dir_option("runs/ferzoo")
@options.run_options
@options.val_fraction_option
@options.no_resume_option
@click.option(
    "--list-presets", is_flag=True, help="List the built-in presets and exit."
)
@options.classes_option
@options.distribute_option
@options.stream_option
@options.freeze_until_option
@options.trunk_cache_option
@click.option(
    "--class-balance",
    type=click.Choice(["none", "logit-adjusted", "reweighted"]),
    default=None,
    help="Account for the training labels' class imbalance in the "
    "Baseline's loss: logit-adjusted (Menon et al., 2021) or reweighted "
    "by the effective number of samples (Cui et al., 2019); none turns a "
    "preset's off. Default: the preset's (none).",
)
@options.on_error_option
@options.backend_option
@options.json_option
@options.verbose_option
@options.handle_errors(
    interrupted="interrupted; rerun the same command to resume"
)
def main(
    preset,
    data,
    output_dir,
    val_fraction,
    no_resume,
    list_presets,
    classes,
    distribute,
    stream,
    freeze_until,
    trunk_cache,
    class_balance,
    skip_bad_samples,
    backend,
    as_json,
    verbose,
    **settings,
):
    """Train a noisy-label FER model from a preset on a data set.

    Writes to --output-dir: best.keras and last.keras (atomic), history.csv,
    TensorBoard logs, results.json (test accuracy, macro-F1, noise
    detection, skipped samples), spec.json (the run specification), the
    confusion matrix (PNG, JSON), and a
    preset (config.json, metadata.json, model.weights.h5) for ferzoo-eval
    and ferzoo-export. Rerunning the same command resumes an interrupted
    run where an uninterrupted one would be (Ctrl-C exits 130); other
    settings in the same folder are refused unless --no-resume.

    \b
    Examples:
      ferzoo-train --preset scn_small_cnn_synthetic --noise-rate 0.3
      ferzoo-train --preset scn_small_cnn_fer2013 \\
          --data fer2013:/data/fer2013 --noise-rate 0.3 --output-dir runs/scn
      KERAS_BACKEND=jax ferzoo-train --preset baseline_resnet18_fer2013 \\
          --data fer2013:/data/fer2013 --epochs 40
      ferzoo-train --preset scn_resnet18 --data rafdb:/data/RAF-DB/basic \\
          --noise-rate 0.3 --val-fraction 0.1 --output-dir runs/scn_raf
      ferzoo-train --preset baseline_dlib_resnet29_fer2013 \\
          --data fer2013:/data/fer2013 --freeze-until conv256_1
    """
    options.set_backend(backend)
    import ferzoo

    if list_presets:
        for name, meta in ferzoo.list_presets().items():
            click.echo(f"{name:32s} {meta.get('description', '')}")
        return
    if not preset:
        raise click.UsageError("Missing option '--preset'.")
    if classes and data.partition(":")[0].strip().lower() not in (
        "imagefolder",
        "rafdb",
    ):
        raise click.BadParameter(
            "sets the class order of imagefolder or rafdb data only; "
            f"{data!r} has a fixed class order",
            param_hint="--classes",
        )
    from ferzoo import training
    from ferzoo.spec import RunSpec

    spec = RunSpec.create(
        preset,
        data=data,
        on_error="skip" if skip_bad_samples else "raise",
        classes=classes,
        val_fraction=val_fraction,
        distribute=distribute,
        stream=stream,
        freeze_until=freeze_until,
        trunk_cache=trunk_cache,
        overrides=_balance_overrides(class_balance),
        **options.run_settings(settings),
    )
    results = training.train(
        spec,
        output_dir=output_dir,
        verbose=0 if as_json else "auto",
        resume=not no_resume,
    )
    options.emit(results, as_json, summary_text(results, output_dir))


def _balance_overrides(choice):
    if choice is None:
        return None
    return {
        "class_balance": None if choice == "none" else choice.replace("-", "_")
    }


def summary_text(results, output_dir):
    test = results.get("test") or {}
    lines = [f"results in {output_dir}/results.json"]
    selection = (results.get("selection") or {}).get("description")
    if selection:
        lines.append(f"model selection: {selection}")
    if test:
        best = ""
        if "best_on_val_accuracy" in test:
            best = (
                f"{test['best_on_val_accuracy']:.4f} (best on val, epoch "
                f"{test['best_epoch']}), "
            )
        lines.append(
            f"test accuracy: {test['final']['accuracy']:.4f} (final), "
            f"{best}{test['last5_mean_accuracy']:.4f} "
            f"(mean of last {_epochs(test.get('last5_num_epochs', 5))})"
        )
        lines.append(f"test macro-F1: {test['final']['macro_f1']:.4f}")
    skipped = {
        split: entry["count"]
        for split, entry in (results.get("skipped") or {}).items()
        if entry["count"]
    }
    if skipped:
        lines.append(
            "skipped bad samples: "
            + ", ".join(f"{n} in {split}" for split, n in skipped.items())
            + " (listed in results.json)"
        )
    unknown = ((results.get("noise") or {}).get("unknown_ids") or {}).get(
        "count"
    )
    if unknown:
        lines.append(
            f"noise file: {unknown} name(s) of no training image left out "
            "(listed in results.json)"
        )
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


def _epochs(n):
    return "epoch" if n == 1 else f"{n} epochs"


if __name__ == "__main__":
    main()
