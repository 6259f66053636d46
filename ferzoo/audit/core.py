"""The audit: build its spec, train the folds (or read a run), rank.

See `ferzoo.audit` for the ranking rule and the files written.
"""

import dataclasses
import hashlib
import json
import pathlib
import sys

import numpy as np

from ferzoo.audit import folds as folds_lib
from ferzoo.audit import report as report_lib
from ferzoo.audit.ranking import _require_cleanlab
from ferzoo.audit.ranking import detection_metrics
from ferzoo.audit.ranking import percentile_rank
from ferzoo.audit.ranking import rank_issues
from ferzoo.audit.ranking import roc_auc
from ferzoo.errors import DataError
from ferzoo.spec import RunSpec

# Pretrained (dlib's face-recognition ResNet-29, 112 px): the clean scores
# and out-of-fold probabilities mean something only once the model does.
DEFAULT_PRESET = "baseline_dlib_resnet29_fer2013"
PROBS_FILE = "probabilities.npz"


def audit(
    data="synthetic",
    preset=None,
    folds=3,
    output_dir="runs/audit",
    top=100,
    from_run=None,
    on_error="skip",
    rule="rank_average",
    resume=True,
    verbose="auto",
    label_free_scores=False,
    relabel_min_prob=0.5,
    write_files=True,
    **settings,
):
    """Rank every training image by how likely its label is wrong.

    Trains `folds` models of `preset`, each on all folds but one, so every
    training image is predicted by a model that did not train on it, then
    combines cleanlab's confident learning on those out-of-fold
    probabilities with the method's own clean score (the rule is in the
    module docstring of `ferzoo.audit`: images ordered by the mean of
    their two percentile ranks). With
    `from_run`, reads a finished `ferzoo-train` folder instead: its clean
    scores and relabels, and its (in-sample) probabilities of the
    training images.

    Args:
        data: str. `KIND:PATH` (see `ferzoo.data.load_split`); with
            `from_run`, defaults to the run's data.
        preset: str or None. Preset name or folder to train the folds
            from. Defaults to `DEFAULT_PRESET`,
            `"baseline_dlib_resnet29_fer2013"` (the Baseline fine-tuned
            from dlib's pretrained face-recognition ResNet-29 at 112 px).
        folds: int. Number of folds (>= 2). Defaults to `3`.
        output_dir: str. The audit folder; rerunning resumes it.
        top: int. Images on the contact sheets and the HTML page.
        from_run: str or None. A `ferzoo-train` output folder to audit
            from instead of training folds.
        **settings: the keywords of `ferzoo.spec.RunSpec.create` that
            make the folds' spec:
        noise_rate, noise_type, noise_seed, noise_file: label noise to
            inject first (for measuring; the audit then knows the flips
            and adds `clean_label` and `flipped` columns).
        epochs, batch_size, learning_rate, image_size: recipe overrides.
        seed: int. Seed of the folds, initialisation and shuffling.
        limit_per_class: int or None. Class-stratified training subset.
        on_error: str. `"skip"` (default: unreadable images are listed
            in `skipped.csv` and left out) or `"raise"`.
        rule: str. `"rank_average"` (default) or `"flagged_first"`.
        resume: bool. Reuse finished and interrupted folds.
        verbose: `"auto"`, 0 or 1. Progress bars over folds and epochs.
        overrides: dict or None. Model config overrides.
        recipe: dict or None. Recipe overrides (e.g. `{"augment": {}}`),
            applied before `epochs` and the other recipe arguments.
        label_free_scores: bool. Also combine a clean score that does
            not depend on the label (SCN's importance, AFCN's certainty,
            DACFER's consistency; `model.score_uses_label` is False).
            Defaults to `False`: such a score measures how ambiguous the
            image is, not whether its label is wrong, so cleanlab's rank
            on that method's out-of-fold probabilities is used alone.
        relabel_min_prob: float. The corrected label file changes a
            label cleanlab flags only where the out-of-fold probability
            of the suggestion is at least this. Defaults to `0.5`:
            measured on the synthetic faces with a weak model (37%
            out-of-fold accuracy), relabelling every flagged image broke
            295 correct labels to restore 91.
        write_files: bool. Write the CSV, label file, sheets and HTML.

    Returns:
        A `pandas.DataFrame`, one row per training image, most suspect
        first (columns as `label_issues.csv`, plus `clean_label` and
        `flipped` when noise was injected); `df.attrs["summary"]` holds
        the counts and file paths.
    """
    from ferzoo import outputs

    _validate(folds, top, preset, from_run)
    claim = outputs.claim(output_dir, "audit")
    done = False
    try:
        spec, base = audit_spec(
            preset, from_run, data=data, on_error=on_error, **settings
        )
        options = AuditOptions(
            folds=int(folds),
            top=int(top),
            from_run=from_run,
            rule=rule,
            resume=resume,
            progress=_progress(verbose),
            label_free_scores=label_free_scores,
            relabel_min_prob=relabel_min_prob,
            write_files=write_files,
        )
        df = _audit(
            spec, spec.recipe.apply(base), pathlib.Path(output_dir), options
        )
        done = True
        return df
    finally:
        out = pathlib.Path(output_dir)
        fresh = not done and claim.state == "new"
        if fresh and not (out / "folds").exists():
            (out / report_lib.CONFIG_FILE).unlink(missing_ok=True)
            claim.release(remove=True)
        else:
            claim.release()


def _validate(folds, top, preset, from_run):
    if int(folds) < 2:
        raise ValueError(f"`folds` must be >= 2. Received: folds={folds}")
    if int(top) < 0:
        raise ValueError(f"`top` must be >= 0. Received: top={top}")
    if from_run is not None and preset is not None:
        raise ValueError(
            "Pass `preset` or `from_run`, not both. Received: "
            f"preset={preset!r}, from_run={from_run!r}"
        )


def _progress(verbose):
    return sys.stderr.isatty() if verbose == "auto" else bool(verbose)


@dataclasses.dataclass(frozen=True)
class AuditOptions:
    """What an audit does beyond its runs' spec."""

    folds: int = 3
    top: int = 100
    from_run: object = None
    rule: str = "rank_average"
    resume: bool = True
    progress: bool = False
    label_free_scores: bool = False
    relabel_min_prob: float = 0.5
    write_files: bool = True


def audit_spec(
    preset, from_run, data=None, image_size=None, overrides=None, **kwargs
):
    """`(spec, base recipe)` of an audit: the run each fold specialises
    (`ferzoo.audit.folds.fold_spec`), and the recipe its overrides apply
    to (the preset's, or the run's with `from_run`)."""
    from ferzoo.training.resume import base_recipe

    if from_run is not None:
        run = _read_run(from_run)
        data = data or run["data"]
        given = kwargs.get("noise_rate") or kwargs.get("noise_file")
        if not given and run["noise"]:
            kwargs.update(_run_noise(run["noise"]))
        base = run["recipe"]
        preset = str(from_run)
    else:
        preset = preset or DEFAULT_PRESET
        base = base_recipe(preset)
    overrides = dict(overrides or {})
    if image_size is not None and from_run is None:
        overrides.setdefault("image_shape", (image_size, image_size, 3))
    spec = RunSpec.create(
        preset,
        data=data or "synthetic",
        image_size=image_size,
        overrides=overrides,
        val_fraction=0.0,
        **kwargs,
    )
    return spec, base


def _run_noise(noise):
    if noise.get("type") == "file":
        return {"noise_file": noise["file"]}
    return {
        "noise_rate": noise["rate"],
        "noise_type": noise["type"],
        "noise_seed": noise.get("seed", 0),
    }


def _audit(spec, recipe, out, options):
    _require_cleanlab()
    records, info = folds_lib.load_training_data(
        spec.data.source,
        int(recipe["image_size"]),
        spec.noise.rate,
        spec.noise.type,
        spec.noise.seed,
        spec.noise.file,
        spec.data.on_error,
        spec.data.limit_per_class,
    )
    if info.skipped:
        print(
            f"[ferzoo-audit] {len(info.skipped)} unreadable image(s) left "
            f"out (first: {info.skipped[0][0]}: {info.skipped[0][1]}); "
            f"see {out / report_lib.SKIPPED_FILE}",
            file=sys.stderr,
        )
    settings = _settings(spec, recipe, options, info)
    _check_settings(out, settings, options.resume)
    _write_json(out / report_lib.CONFIG_FILE, {"settings": settings})
    if options.from_run is not None:
        scored = _score_run(options.from_run, records, info, recipe)
    else:
        scored = _score_folds(spec, records, info, out, options)
    folds_lib._atomic_savez(
        out / PROBS_FILE,
        probs=scored["probs"],
        labels=np.asarray(info.labels),
        method_rank=scored["method_rank"],
        method_score=scored["method_raw"],
        fold=scored["fold"],
    )
    df, summary = _rank(info, scored, out, options)
    if options.write_files:
        files = report_lib.write_report(
            df, records, info, out, options.top, summary
        )
        summary["files"] = {k: v for k, v in files.items() if k != "thumbs"}
    _write_json(
        out / report_lib.CONFIG_FILE, {"settings": settings, "summary": summary}
    )
    df.attrs["summary"] = summary
    return df


def _settings(spec, recipe, options, info):
    """What `audit.json` records (a rerun must match it to resume)."""
    return {
        "data": spec.data.source,
        "preset": spec.preset,
        "from_run": None if options.from_run is None else str(options.from_run),
        "folds": options.folds,
        "seed": int(spec.seed),
        "noise": info.noise,
        "limit_per_class": spec.data.limit_per_class,
        "recipe": recipe,
        "overrides": {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in spec.overrides.items()
        },
        "num_samples": info.num_samples,
        "labels_checksum": _checksum(info),
    }


def _score_folds(spec, records, info, out, options):
    """Train the folds (each a spec of its own) and combine them."""
    import keras

    assignment = folds_lib.fold_assignment(
        info.labels, options.folds, spec.seed
    )
    arrays, bar = [], None
    if options.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=options.folds, desc="folds", file=sys.stderr)
    try:
        for k in range(options.folds):
            arrays.append(
                folds_lib.train_fold(
                    folds_lib.fold_spec(spec, k, options.folds),
                    records.images,
                    info.labels,
                    info.class_names,
                    np.flatnonzero(assignment != k),
                    np.flatnonzero(assignment == k),
                    out / "folds" / f"fold_{k + 1}",
                    resume=options.resume,
                    progress=options.progress,
                    desc=f"fold {k + 1}/{options.folds}",
                )
            )
            keras.backend.clear_session()
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    probs, fold, method_rank, method_raw, method_relabel = (
        folds_lib._combine_folds(arrays, info.num_samples, info.num_classes)
    )
    return {
        "probs": probs,
        "fold": fold,
        "method_rank": method_rank,
        "method_raw": method_raw,
        "method_relabel": method_relabel,
        "score_name": str(arrays[0]["score_name"]) or None,
        "uses_label": bool(arrays[0].get("score_uses_label", True)),
        "in_sample": False,
    }


def _rank(info, scored, out, options):
    """The ranked table and the summary."""
    probs, rule = scored["probs"], options.rule
    combine = scored["score_name"] is not None and (
        scored["uses_label"] or options.label_free_scores
    )
    ranking = rank_issues(
        info.labels,
        probs,
        scored["method_rank"] if combine else None,
        rule=rule,
    )
    df = report_lib.table(
        info,
        probs,
        ranking,
        scored["method_raw"],
        scored["method_relabel"],
        scored["fold"],
    )
    df["relabel"] = (
        df["cleanlab_issue"]
        & (df["suggested_label"] != df["given_label"])
        & (df["p_suggested"] >= options.relabel_min_prob)
    )
    summary = {
        "num_samples": info.num_samples,
        "num_classes": info.num_classes,
        "class_names": list(info.class_names),
        "num_cleanlab_issues": int(ranking["cleanlab_issue"].sum()),
        "num_relabeled": int(df["relabel"].sum()),
        "relabel_min_prob": float(options.relabel_min_prob),
        "num_skipped": len(info.skipped),
        "rule": rule,
        "probabilities": "in-sample" if scored["in_sample"] else "out-of-fold",
        "oof_accuracy_on_given": float((probs.argmax(1) == info.labels).mean()),
        "score": scored["score_name"],
        "score_uses_label": scored["uses_label"],
        "score_combined": combine,
        "output_dir": str(out),
    }
    if info.noise:
        flipped = info.noise_mask
        summary["num_flipped"] = int(flipped.sum())
        suspicion = ranking["issue_score"]
        if rule == "flagged_first":
            suspicion = suspicion + ranking["cleanlab_issue"]
        summary["roc_auc"] = roc_auc(suspicion, flipped)
        summary["top_k"] = detection_metrics(ranking["order"], flipped)
    if scored["in_sample"]:
        print(
            "[ferzoo-audit] --from-run: cleanlab gets the run's in-sample "
            "probabilities (the model trained on these images), so it "
            "flags fewer issues than out-of-fold probabilities would.",
            file=sys.stderr,
        )
    return df, summary


def _write_json(path, obj):
    from ferzoo.training import atomic_write_json

    atomic_write_json(path, obj)


def _checksum(info):
    h = hashlib.sha256()
    h.update(np.asarray(info.labels, "int64").tobytes())
    h.update("\n".join(info.names).encode())
    return h.hexdigest()[:16]


def _check_settings(out, settings, resume):
    path = out / report_lib.CONFIG_FILE
    if not (resume and path.is_file()):
        return
    try:
        saved = json.loads(path.read_text()).get("settings", {})
    except json.JSONDecodeError:
        return
    changed = [k for k in settings if k in saved and saved[k] != settings[k]]
    if changed:
        detail = ", ".join(
            f"{k}: {saved[k]!r} then, {settings[k]!r} now" for k in changed
        )
        raise DataError(
            f"this audit folder was made with other settings ({detail}); "
            "use a new --output-dir, or --no-resume to start over",
            path=path,
        )


def _read_run(run_dir):
    run = pathlib.Path(run_dir)
    if not run.is_dir():
        raise DataError("no such run folder", path=run)
    if not (run / "last.keras").is_file():
        raise DataError(
            "not a ferzoo-train output folder (no last.keras)", path=run
        )
    results = {}
    if (run / "results.json").is_file():
        results = json.loads((run / "results.json").read_text())
    recipe = results.get("recipe")
    if recipe is None:
        from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier

        recipe = dict(NoisyLabelClassifier.default_recipe)
    return {
        "data": results.get("data"),
        "noise": results.get("noise") or {},
        "recipe": dict(recipe),
    }


def _score_run(run_dir, records, info, recipe):

    from ferzoo.data import make_dataset
    from ferzoo.training import load_checkpoint

    path = pathlib.Path(run_dir) / "last.keras"
    model = load_checkpoint(path)
    if model.num_samples != info.num_samples:
        raise DataError(
            f"the run's model has {model.num_samples} per-sample rows but "
            f"the data has {info.num_samples} training images; audit it "
            "with the data, noise and --limit-per-class it was trained with",
            path=path,
        )
    ds = make_dataset(
        records.images, info.labels, batch_size=int(recipe["batch_size"])
    )
    probs = np.asarray(model.predict(ds, verbose=0), "float64")
    scores = folds_lib.model_scores(model, info.num_samples)
    return {
        "probs": probs,
        "fold": np.full(info.num_samples, -1, "int64"),
        "method_rank": percentile_rank(scores["scores"]),
        "method_raw": scores["scores"],
        "method_relabel": scores["relabels"],
        "score_name": str(scores["score_name"]) or None,
        "uses_label": bool(scores["score_uses_label"]),
        "in_sample": True,
    }
