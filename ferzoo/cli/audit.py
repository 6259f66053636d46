import click

from ferzoo.cli import options

# The default of ferzoo.audit.DEFAULT_PRESET, named here without importing
# keras (the backend is chosen first); a test checks that they agree.
DEFAULT_PRESET_HELP = (
    "baseline_dlib_resnet29_fer2013 (the Baseline on dlib's pretrained "
    "face-recognition ResNet-29, 112 px; fine-tuned from its weights)"
)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@options.data_option_with(
    None, " Default: synthetic, or the run's data with --from-run."
)
@options.preset_option(required=False, default=DEFAULT_PRESET_HELP)
@click.option(
    "--folds",
    type=click.IntRange(2),
    default=3,
    show_default=True,
    help="Folds; each image is scored by a model that did not train on it.",
)
@options.output_dir_option("runs/audit")
@click.option(
    "--top",
    type=click.IntRange(0),
    default=100,
    show_default=True,
    help="Suspected images on the contact sheets and the HTML page.",
)
@click.option(
    "--from-run",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Audit from a ferzoo-train output folder instead of training "
    "folds (its probabilities are in-sample).",
)
@click.option(
    "--rule",
    type=click.Choice(["rank_average", "flagged_first"]),
    default="rank_average",
    show_default=True,
    help="How the cleanlab verdict and the method score are combined.",
)
@click.option(
    "--label-free-scores",
    is_flag=True,
    help="Also combine a clean score that ignores the label (SCN, AFCN, "
    "DACFER); by default only cleanlab ranks for those methods.",
)
@click.option(
    "--relabel-min-prob",
    type=options.FiniteFloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Relabel a flagged image in corrected_labels.txt only if the "
    "suggestion has at least this out-of-fold probability.",
)
@options.run_options
@click.option(
    "--image-size",
    type=click.IntRange(8),
    help="Resize images to this; default: the preset's (112 px for the "
    "default preset).",
)
@options.no_resume_option
@options.fail_on_bad_images_option
@options.backend_option
@options.json_option
@options.verbose_option
@options.handle_errors
def main(
    data,
    preset,
    folds,
    output_dir,
    top,
    from_run,
    rule,
    label_free_scores,
    relabel_min_prob,
    image_size,
    no_resume,
    fail_on_bad_images,
    backend,
    as_json,
    verbose,
    **settings,
):
    """Find the training images whose label is probably wrong.

    Trains --folds models of --preset (each image is predicted by a model
    that did not train on it; by default the pretrained
    baseline_dlib_resnet29_fer2013, fine-tuned at 112 px), or reads a
    ferzoo-train run (--from-run), and ranks every training image by
    cleanlab's confident-learning verdict on those probabilities combined
    with the method's own clean score. Writes to --output-dir:
    label_issues.csv (the ranking),
    corrected_labels.txt (EAC format, for ferzoo-train --noise-file),
    sheets/*.png (the top images, captioned given -> suggested (score)),
    index.html (open it from disk) and skipped.csv (unreadable images).

    \b
    Examples:
      ferzoo-audit --data imagefolder:/data/my_faces --output-dir runs/audit
      ferzoo-audit --data fer2013:/data/fer2013 --preset \\
          dual_branch_dlib_resnet29_fer2013 --limit-per-class 800
      ferzoo-audit --from-run runs/scn --output-dir runs/scn_audit
      ferzoo-audit --preset scn_small_cnn_synthetic --data synthetic \\
          --noise-rate 0.3 --epochs 8     # measured: flips are known
    """
    options.set_backend(backend)
    from ferzoo import audit as audit_lib

    if from_run is not None and preset is not None:
        raise click.UsageError("Pass --preset or --from-run, not both.")
    df = audit_lib.audit(
        data=data,
        preset=preset,
        folds=folds,
        output_dir=output_dir,
        top=top,
        from_run=from_run,
        image_size=image_size,
        on_error="raise" if fail_on_bad_images else "skip",
        rule=rule,
        label_free_scores=label_free_scores,
        relabel_min_prob=relabel_min_prob,
        resume=not no_resume,
        verbose=0 if as_json else "auto",
        **options.run_settings(settings),
    )
    summary = df.attrs["summary"]
    options.emit(summary, as_json, summary_text(df, summary, output_dir))


def summary_text(df, summary, output_dir):
    lines = [
        f"{summary['num_samples']} training images audited "
        f"({summary['probabilities']} probabilities); cleanlab flags "
        f"{summary['num_cleanlab_issues']}, {summary['num_relabeled']} "
        "relabelled in the corrected label file.",
    ]
    if summary.get("num_skipped"):
        lines.append(
            f"{summary['num_skipped']} unreadable images left out "
            f"(listed in {output_dir}/skipped.csv)."
        )
    if summary.get("roc_auc") is not None:
        top_k = summary["top_k"]
        lines.append(
            f"against the {summary['num_flipped']} injected flips: ROC-AUC "
            f"{summary['roc_auc']:.4f}, top-{top_k['k']} precision "
            f"{top_k['precision']:.4f}, recall {top_k['recall']:.4f}, "
            f"F1 {top_k['f1']:.4f}"
        )
    head = df.head(5)
    if len(head):
        lines.append("most suspect:")
        for _, row in head.iterrows():
            lines.append(
                f"  {row['rank']:>4}. {row['path']}: {row['given_label']} "
                f"-> {row['suggested_label']} ({row['issue_score']:.2f})"
            )
    for key in ("html", "csv", "corrected_labels"):
        name = (summary.get("files") or {}).get(key)
        if name:
            lines.append(f"{key}: {output_dir}/{name}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
