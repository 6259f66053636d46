"""Find the training images whose label is probably wrong (`ferzoo-audit`).

`audit()` trains K folds of a preset (every training image is then
predicted by a model that never trained on it, as confident learning
requires), or reads a finished `ferzoo-train` run, and ranks every
training image by how likely its label is wrong. The ranking combines
two signals:

- cleanlab's confident learning on the out-of-fold probabilities: its
  verdict (`cleanlab.filter.find_label_issues`, pruning by the estimated
  noise rate) and its per-image label quality (the self-confidence, the
  out-of-fold probability of the given label, from
  `cleanlab.rank.get_label_quality_scores`);
- the method's own clean score (`model.clean_scores()`: the Baseline's
  and DWMCA's probability of the given label, DualBranch's clean
  probability, ...), which a fold model records for the images it trains
  on, averaged over the K - 1 fold models that trained on each image as
  within-fold percentile ranks (raw scores of different folds are not on
  one scale). A score that does not depend on the given label (SCN's
  importance, AFCN's certainty, DACFER's consistency) is written to the
  table but left out of the ranking unless `label_free_scores=True`:
  measured on the synthetic faces it ranked the flips near chance.

The combination rule (`rule="rank_average"`, the default): each image's
combined quality is the mean of its percentile rank by cleanlab's label
quality and its percentile rank by the method's clean score (1/N is the
lowest, 1 the highest); images are ranked by increasing combined quality.
`issue_score` is one minus the combined quality (higher is more suspect).
`rule="flagged_first"` puts the images cleanlab flags first, then the
rest, each group by the combined quality. On the synthetic faces at 30%
symmetric and pair noise (`scripts/audit_benchmark.py`), the rank average
had the higher top-k F1 in 5 of the 6 (label-aware method, noise) cells,
and beat cleanlab alone with the Baseline at both noise types. A method
without a clean score (or an image without one) uses cleanlab's rank
alone. Cleanlab's verdict always decides which labels the corrected label
file changes.

The suggested label is the out-of-fold argmax; the corrected label file
changes the label of each image cleanlab flags whose suggestion differs
from its given label and has an out-of-fold probability of at least
`relabel_min_prob` (column `relabel`), and keeps every other label.

Files written to the output folder: `label_issues.csv` (the ranked
table), `corrected_labels.txt` (EAC / RAF-DB `list_patition_label.txt`
format, readable by `ferzoo-train --noise-file`), `sheets/*.png`
(contact sheets of the top N images, each captioned
`given -> suggested (issue score)`), `thumbs/*.png`, `index.html`
(opens from disk), `skipped.csv` (unreadable images), `audit.json` (the
settings and summary), `probabilities.npz` (the out-of-fold
probabilities and method scores in sample order, to rerank without
training) and `folds/fold_<k>/` (resumable fold runs).
"""

import csv
import hashlib
import html
import json
import math
import os
import pathlib
import re
import sys
import types

import numpy as np

from ferzoo.errors import DataError
from ferzoo.errors import DivergedError

# Pretrained (dlib's face-recognition ResNet-29, 112 px): the clean scores
# and out-of-fold probabilities mean something only once the model does.
DEFAULT_PRESET = "baseline_dlib_resnet29_fer2013"
CSV_FILE = "label_issues.csv"
CORRECTED_FILE = "corrected_labels.txt"
HTML_FILE = "index.html"
CONFIG_FILE = "audit.json"
SKIPPED_FILE = "skipped.csv"
FOLD_FILE = "audit_fold.npz"
PROBS_FILE = "probabilities.npz"
RULES = ("rank_average", "flagged_first")
SHEET_COLUMNS = 8
SHEET_ROWS = 6

CSV_COLUMNS = [
    "rank",
    "path",
    "name",
    "given_label",
    "suggested_label",
    "issue_score",
    "label_quality",
    "method_score",
    "cleanlab_issue",
    "relabel",
    "method_relabel",
    "p_given",
    "p_suggested",
    "sample_id",
    "fold",
]


def _require_cleanlab():
    try:
        import cleanlab.filter
        import cleanlab.rank
    except ImportError as e:
        raise ImportError(
            "ferzoo-audit needs cleanlab (confident learning): "
            "`pip install cleanlab` (or `pip install ferzoo`, which "
            "depends on it)."
        ) from e
    return cleanlab


def percentile_rank(values):
    """Average ranks of `values` divided by N (in (0, 1]); NaN stays NaN."""
    from scipy.stats import rankdata

    values = np.asarray(values, "float64")
    out = np.full(values.shape, np.nan)
    seen = ~np.isnan(values)
    if seen.any():
        out[seen] = rankdata(values[seen], method="average") / seen.sum()
    return out


def rank_issues(labels, probs, method_scores=None, rule="rank_average"):
    """Rank images by how likely their label is wrong (see module doc).

    Args:
        labels: int array `(N,)`. The given labels.
        probs: float array `(N, C)`. Out-of-sample class probabilities.
        method_scores: float array `(N,)` or None. The method's clean
            score (higher means more likely clean); NaN where missing.
        rule: str. `"rank_average"` or `"flagged_first"`.

    Returns:
        A dict of arrays: `order` (sample indices, most suspect first),
        `rank` (1-based rank of each sample), `issue_score`,
        `label_quality` (cleanlab's self-confidence), `cleanlab_issue`
        (cleanlab's verdict) and `suggested` (the out-of-sample argmax).

    Example:
    >>> import numpy as np
    >>> probs = np.array([[.9, .1], [.8, .2], [.2, .8], [.3, .7],
    ...                   [.1, .9], [.9, .1]])
    >>> labels = np.array([0, 0, 1, 1, 1, 1])
    >>> r = ferzoo.audit.rank_issues(labels, probs)
    >>> int(r["order"][0]), bool(r["cleanlab_issue"][5])
    (5, True)
    """
    if rule not in RULES:
        raise ValueError(
            f"`rule` must be one of {list(RULES)}. Received: rule={rule!r}"
        )
    cleanlab = _require_cleanlab()
    labels = np.asarray(labels).astype(int)
    probs = np.asarray(probs, "float64")
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(
            "`probs` must have shape (N, C) with N = len(labels). Received: "
            f"probs.shape={probs.shape}, len(labels)={labels.shape[0]}"
        )
    probs = probs / probs.sum(axis=1, keepdims=True)
    quality = cleanlab.rank.get_label_quality_scores(
        labels, probs, method="self_confidence"
    )
    flagged = cleanlab.filter.find_label_issues(
        labels, probs, filter_by="prune_by_noise_rate", n_jobs=1
    )
    combined = percentile_rank(quality)
    if method_scores is not None:
        method_rank = percentile_rank(method_scores)
        method_rank = np.where(np.isnan(method_rank), combined, method_rank)
        combined = (combined + method_rank) / 2.0
    if rule == "flagged_first":
        # lexsort: the last key is the primary one.
        order = np.lexsort((np.arange(len(labels)), combined, ~flagged))
    else:
        order = np.lexsort((np.arange(len(labels)), combined))
    rank = np.empty(len(labels), "int64")
    rank[order] = np.arange(1, len(labels) + 1)
    return {
        "order": order,
        "rank": rank,
        "issue_score": 1.0 - combined,
        "label_quality": np.asarray(quality, "float64"),
        "cleanlab_issue": np.asarray(flagged, bool),
        "suggested": probs.argmax(axis=1),
    }


def detection_metrics(ranked_first, flipped, k=None):
    """Precision, recall and F1 of the first `k` of a ranking.

    Args:
        ranked_first: int array. Sample indices, most suspect first (a
            flagged set may be shorter than `k`).
        flipped: bool array `(N,)`. The truly wrong labels.
        k: int or None. Defaults to the number of flipped labels.
    """
    flipped = np.asarray(flipped, bool)
    k = int(flipped.sum()) if k is None else int(k)
    top = np.asarray(ranked_first, int)[:k]
    hits = int(flipped[top].sum())
    precision = hits / len(top) if len(top) else 0.0
    recall = hits / max(int(flipped.sum()), 1)
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision + recall
        else 0.0
    )
    return {
        "k": k,
        "flagged": int(len(top)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def roc_auc(suspicion, flipped):
    """ROC-AUC of a suspicion score (higher = more likely flipped)."""
    from sklearn.metrics import roc_auc_score

    flipped = np.asarray(flipped, bool)
    suspicion = np.asarray(suspicion, "float64")
    seen = ~np.isnan(suspicion)
    if flipped[seen].all() or not flipped[seen].any():
        return None
    return float(roc_auc_score(flipped[seen], suspicion[seen]))


# --- Data ----------------------------------------------------------------
def load_training_data(
    data,
    image_size,
    noise_rate=0.0,
    noise_type="symmetric",
    noise_seed=0,
    noise_file=None,
    on_error="skip",
    limit_per_class=None,
):
    """The train split's records and (noisy) labels, as `load_split`.

    Returns:
        `(records, info)`: the decoded `Records` and a `DatasetInfo`
        with the labels to audit (and the clean labels and flip mask
        when noise was injected).
    """
    from ferzoo.data import DatasetInfo
    from ferzoo.data import read_split

    records = read_split(data, "train", image_size, on_error, limit_per_class)
    info = _noisy_labels(
        records, data, noise_rate, noise_type, noise_seed, noise_file, on_error
    )
    return records, DatasetInfo(**info)


def _noisy_labels(
    records, data, noise_rate, noise_type, noise_seed, file, on_error="raise"
):
    from ferzoo.data import pair_noise
    from ferzoo.data import symmetric_noise
    from ferzoo.data.noise import apply_noise_file

    if noise_type not in ("symmetric", "pair"):
        raise ValueError(
            "`noise_type` must be 'symmetric' or 'pair'. "
            f"Received: noise_type={noise_type!r}"
        )
    if file is not None and noise_rate:
        raise ValueError(
            "Pass either `noise_rate` or `noise_file`, not both. Received: "
            f"noise_rate={noise_rate}, noise_file={file!r}"
        )
    clean = records.labels.copy()
    labels, noise = clean, {}
    if file is not None:
        labels, noise = apply_noise_file(
            file,
            records.names,
            records.class_names,
            getattr(records, "listed_names", None),
            on_error,
        )
    elif noise_rate:
        make = symmetric_noise if noise_type == "symmetric" else pair_noise
        labels = make(
            clean, noise_rate, len(records.class_names), seed=noise_seed
        ).labels
        noise = {"type": noise_type, "rate": noise_rate, "seed": noise_seed}
    info = dict(
        class_names=list(records.class_names),
        labels=labels,
        clean_labels=clean,
        noise_mask=labels != clean,
        sources=records.sources,
        skipped=records.skipped,
        names=records.names,
        dropped=records.dropped,
        data=data,
        split="train",
        noise=noise,
    )
    return info


def fold_assignment(labels, folds, seed=0):
    """A stratified, seeded fold index in `[0, folds)` per sample."""
    from sklearn.model_selection import KFold
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    if int(folds) < 2:
        raise ValueError(f"`folds` must be >= 2. Received: folds={folds}")
    if len(labels) < folds:
        raise DataError(
            f"{len(labels)} training images cannot make {folds} folds"
        )
    counts = np.bincount(labels)
    counts = counts[counts > 0]
    splitter = (
        StratifiedKFold(folds, shuffle=True, random_state=seed)
        if counts.min() >= folds
        else KFold(folds, shuffle=True, random_state=seed)
    )
    out = np.empty(len(labels), "int64")
    for k, (_, held) in enumerate(
        splitter.split(np.zeros(len(labels)), labels)
    ):
        out[held] = k
    return out


# --- Training the folds ----------------------------------------------------
def _epoch_bar(total, initial, desc, enabled):
    import keras

    class EpochBar(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.bar = None
            if enabled:
                from tqdm.auto import tqdm

                self.bar = tqdm(
                    total=total,
                    initial=initial,
                    desc=desc,
                    unit="epoch",
                    leave=False,
                    file=sys.stderr,
                )

        def on_epoch_end(self, epoch, logs=None):
            if self.bar is not None:
                loss = (logs or {}).get("loss")
                if loss is not None:
                    self.bar.set_postfix(loss=f"{loss:.3f}")
                self.bar.update(1)

        def close(self):
            if self.bar is not None:
                self.bar.close()

    return EpochBar()


def _atomic_savez(path, **arrays):
    path = pathlib.Path(path)
    tmp = path.with_name(".tmp-" + path.name)
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def train_fold(
    preset,
    recipe,
    images,
    labels,
    num_classes,
    train_idx,
    held_idx,
    fold_dir,
    seed=0,
    resume=True,
    overrides=None,
    progress=True,
    desc="fold",
):
    """Train one fold (resumable) and score it; return its arrays.

    The fold folder holds `last.keras`, `best.keras` and `state.json`
    (`ferzoo.training.TrainingMonitor`), so an interrupted fold resumes
    at its next epoch, and `audit_fold.npz` once it is done: the
    out-of-fold probabilities of `held_idx`, and the clean scores and
    relabels the model recorded for `train_idx`.
    """
    import keras

    from ferzoo import training
    from ferzoo.data import make_dataset
    from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier

    fold_dir = pathlib.Path(fold_dir)
    fold_dir.mkdir(parents=True, exist_ok=True)
    done = fold_dir / FOLD_FILE
    if resume and done.is_file():
        with np.load(done) as saved:
            arrays = {k: saved[k] for k in saved.files}
        if np.array_equal(arrays["held_idx"], held_idx) and np.array_equal(
            arrays["train_idx"], train_idx
        ):
            return arrays
    keras.utils.set_random_seed(seed)
    batch_size = int(recipe["batch_size"])
    train_ds = make_dataset(
        images[train_idx],
        labels[train_idx],
        batch_size=batch_size,
        training=True,
        augment=recipe.get("augment"),
        seed=seed,
    )
    state_path = fold_dir / training.STATE_FILE
    initial_epoch, records, best, state = 0, [], -math.inf, {}
    if resume and state_path.is_file() and (fold_dir / "last.keras").is_file():
        state = json.loads(state_path.read_text())
        training.recover_checkpoint(fold_dir, state)
        model = training.load_checkpoint(
            fold_dir / "last.keras", "Start over with --no-resume"
        )
        initial_epoch = int(state["epoch"]) + 1
        records, best = state["records"], state["best"]
        if model.num_samples != len(train_idx):
            raise DataError(
                f"the saved fold model has {model.num_samples} per-sample "
                f"rows but the fold has {len(train_idx)} training images; "
                "use a new --output-dir or --no-resume",
                path=fold_dir / "last.keras",
            )
    else:
        model = NoisyLabelClassifier.from_preset(
            preset,
            num_classes=num_classes,
            num_samples=len(train_idx),
            **(overrides or {}),
        )
        model.recipe = recipe
        model.compile()
    monitor = training.TrainingMonitor(
        fold_dir, None, None, records, best, checkpoint=state.get("checkpoint")
    )
    total = int(recipe["epochs"])
    bar = _epoch_bar(total, min(initial_epoch, total), desc, progress)
    try:
        if initial_epoch < total:
            model.fit(
                train_ds,
                epochs=total,
                initial_epoch=initial_epoch,
                shuffle=False,
                verbose=0,
                callbacks=[monitor, bar],
            )
    finally:
        bar.close()
    if monitor.diverged:
        raise DivergedError(
            f"{fold_dir}: the loss became non-finite at epoch "
            f"{len(monitor.records) + 1}; lower the learning rate"
        )
    held_ds = make_dataset(
        images[held_idx], labels[held_idx], batch_size=batch_size
    )
    probs = model.predict(held_ds, verbose=0)
    scores = model.clean_scores()
    relabels = model.relabels()
    arrays = {
        "held_idx": np.asarray(held_idx),
        "train_idx": np.asarray(train_idx),
        "probs": np.asarray(probs, "float64"),
        "scores": (
            np.full(len(train_idx), np.nan)
            if scores is None
            else np.asarray(scores, "float64")
        ),
        "relabels": (
            np.full(len(train_idx), -1)
            if relabels is None
            else np.asarray(relabels, "int64")
        ),
        "score_name": np.array(model.score_name if scores is not None else ""),
        "score_uses_label": np.array(bool(model.score_uses_label)),
    }
    _atomic_savez(done, **arrays)
    return arrays


def _combine_folds(fold_arrays, num_samples, num_classes):
    """Out-of-fold probabilities, mean method-score rank, relabel votes."""
    probs = np.full((num_samples, num_classes), np.nan)
    fold = np.full(num_samples, -1, "int64")
    rank_sum = np.zeros(num_samples)
    raw_sum = np.zeros(num_samples)
    count = np.zeros(num_samples)
    votes = np.zeros((num_samples, num_classes), "int64")
    for k, arrays in enumerate(fold_arrays):
        probs[arrays["held_idx"]] = arrays["probs"]
        fold[arrays["held_idx"]] = k
        scores = arrays["scores"]
        ranks = percentile_rank(scores)
        seen = ~np.isnan(scores)
        idx = arrays["train_idx"][seen]
        rank_sum[idx] += ranks[seen]
        raw_sum[idx] += scores[seen]
        count[idx] += 1
        relabel = arrays["relabels"]
        changed = relabel >= 0
        np.add.at(votes, (arrays["train_idx"][changed], relabel[changed]), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        method_rank = np.where(count > 0, rank_sum / count, np.nan)
        method_raw = np.where(count > 0, raw_sum / count, np.nan)
    method_relabel = np.where(votes.sum(1) > 0, votes.argmax(1), -1)
    return probs, fold, method_rank, method_raw, method_relabel


def _checksum(info):
    h = hashlib.sha256()
    h.update(np.asarray(info.labels, "int64").tobytes())
    h.update("\n".join(info.names).encode())
    return h.hexdigest()[:16]


def _check_settings(out, settings, resume):
    path = out / CONFIG_FILE
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


# --- The audit ---------------------------------------------------------------
def audit(
    data="synthetic",
    preset=None,
    folds=3,
    output_dir="runs/audit",
    top=100,
    from_run=None,
    noise_rate=0.0,
    noise_type="symmetric",
    noise_seed=0,
    noise_file=None,
    epochs=None,
    batch_size=None,
    learning_rate=None,
    image_size=None,
    seed=0,
    limit_per_class=None,
    on_error="skip",
    rule="rank_average",
    resume=True,
    verbose="auto",
    overrides=None,
    recipe=None,
    label_free_scores=False,
    relabel_min_prob=0.5,
    write_files=True,
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
    settings = dict(locals())
    from ferzoo import outputs

    claim = outputs.claim(output_dir, "audit")
    done = False
    try:
        df = _audit(**settings)
        done = True
        return df
    finally:
        out = pathlib.Path(output_dir)
        fresh = not done and claim.state == "new"
        if fresh and not (out / "folds").exists():
            (out / CONFIG_FILE).unlink(missing_ok=True)
            claim.release(remove=True)
        else:
            claim.release()


def _audit(
    data,
    preset,
    folds,
    output_dir,
    top,
    from_run,
    noise_rate,
    noise_type,
    noise_seed,
    noise_file,
    epochs,
    batch_size,
    learning_rate,
    image_size,
    seed,
    limit_per_class,
    on_error,
    rule,
    resume,
    verbose,
    overrides,
    recipe,
    label_free_scores,
    relabel_min_prob,
    write_files,
):
    _require_cleanlab()
    import keras

    from ferzoo import presets as preset_utils
    from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier

    out = pathlib.Path(output_dir)
    progress = bool(verbose)
    if verbose == "auto":
        progress = sys.stderr.isatty()
    if int(folds) < 2:
        raise ValueError(f"`folds` must be >= 2. Received: folds={folds}")
    if int(top) < 0:
        raise ValueError(f"`top` must be >= 0. Received: top={top}")

    if from_run is not None and preset is not None:
        raise ValueError(
            "Pass `preset` or `from_run`, not both. Received: "
            f"preset={preset!r}, from_run={from_run!r}"
        )
    if from_run is not None:
        run = _read_run(from_run)
        data = data or run["data"]
        if not (noise_rate or noise_file) and run["noise"]:
            noise = run["noise"]
            if noise.get("type") == "file":
                noise_file = noise["file"]
            else:
                noise_rate = noise["rate"]
                noise_type = noise["type"]
                noise_seed = noise.get("seed", 0)
        base = run["recipe"]
        preset = str(from_run)
    else:
        preset = preset or DEFAULT_PRESET
        metadata = preset_utils.load_metadata(preset)
        base = dict(NoisyLabelClassifier.default_recipe)
        base.update(metadata.get("recipe") or {})
    base.update(recipe or {})
    recipe = base
    data = data or "synthetic"
    for key, value in (
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("learning_rate", learning_rate),
        ("image_size", image_size),
    ):
        if value is not None:
            recipe[key] = value
    overrides = dict(overrides or {})
    if image_size is not None and from_run is None:
        overrides.setdefault("image_shape", (image_size, image_size, 3))
    size = int(recipe["image_size"])

    records, info = load_training_data(
        data,
        size,
        noise_rate,
        noise_type,
        noise_seed,
        noise_file,
        on_error,
        limit_per_class,
    )
    if info.skipped:
        print(
            f"[ferzoo-audit] {len(info.skipped)} unreadable image(s) left "
            f"out (first: {info.skipped[0][0]}: {info.skipped[0][1]}); "
            f"see {out / SKIPPED_FILE}",
            file=sys.stderr,
        )
    num_classes = info.num_classes
    settings = {
        "data": data,
        "preset": str(preset),
        "from_run": None if from_run is None else str(from_run),
        "folds": int(folds),
        "seed": int(seed),
        "noise": info.noise,
        "limit_per_class": limit_per_class,
        "recipe": recipe,
        "overrides": {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in overrides.items()
        },
        "num_samples": info.num_samples,
        "labels_checksum": _checksum(info),
    }
    _check_settings(out, settings, resume)
    training_atomic_json(out / CONFIG_FILE, {"settings": settings})

    if from_run is not None:
        probs, method_raw, method_relabel, score_name, uses_label = _score_run(
            from_run, records, info, recipe
        )
        method_rank = percentile_rank(method_raw)
        fold = np.full(info.num_samples, -1, "int64")
        in_sample = True
    else:
        assignment = fold_assignment(info.labels, folds, seed)
        arrays = []
        fold_range = range(int(folds))
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=int(folds), desc="folds", file=sys.stderr)
        try:
            for k in fold_range:
                arrays.append(
                    train_fold(
                        preset,
                        recipe,
                        records.images,
                        info.labels,
                        num_classes,
                        np.flatnonzero(assignment != k),
                        np.flatnonzero(assignment == k),
                        out / "folds" / f"fold_{k + 1}",
                        seed=seed + k,
                        resume=resume,
                        overrides=overrides,
                        progress=progress,
                        desc=f"fold {k + 1}/{folds}",
                    )
                )
                keras.backend.clear_session()
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        probs, fold, method_rank, method_raw, method_relabel = _combine_folds(
            arrays, info.num_samples, num_classes
        )
        score_name = str(arrays[0]["score_name"]) or None
        uses_label = bool(arrays[0].get("score_uses_label", True))
        in_sample = False

    _atomic_savez(
        out / PROBS_FILE,
        probs=probs,
        labels=np.asarray(info.labels),
        method_rank=method_rank,
        method_score=method_raw,
        fold=fold,
    )
    combine = score_name is not None and (uses_label or label_free_scores)
    ranking = rank_issues(
        info.labels, probs, method_rank if combine else None, rule=rule
    )
    df = _table(info, probs, ranking, method_raw, method_relabel, fold)
    df["relabel"] = (
        df["cleanlab_issue"]
        & (df["suggested_label"] != df["given_label"])
        & (df["p_suggested"] >= relabel_min_prob)
    )
    summary = {
        "num_samples": info.num_samples,
        "num_classes": num_classes,
        "class_names": list(info.class_names),
        "num_cleanlab_issues": int(ranking["cleanlab_issue"].sum()),
        "num_relabeled": int(df["relabel"].sum()),
        "relabel_min_prob": float(relabel_min_prob),
        "num_skipped": len(info.skipped),
        "rule": rule,
        "probabilities": "in-sample" if in_sample else "out-of-fold",
        "oof_accuracy_on_given": float((probs.argmax(1) == info.labels).mean()),
        "score": score_name,
        "score_uses_label": uses_label,
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
    if in_sample:
        print(
            "[ferzoo-audit] --from-run: cleanlab gets the run's in-sample "
            "probabilities (the model trained on these images), so it "
            "flags fewer issues than out-of-fold probabilities would.",
            file=sys.stderr,
        )
    if write_files:
        files = write_report(df, records, info, out, top, summary)
        summary["files"] = {k: v for k, v in files.items() if k != "thumbs"}
    training_atomic_json(
        out / CONFIG_FILE, {"settings": settings, "summary": summary}
    )
    df.attrs["summary"] = summary
    return df


def training_atomic_json(path, obj):
    from ferzoo.training import atomic_write_json

    atomic_write_json(path, obj)


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
    scores = model.clean_scores()
    relabels = model.relabels()
    scores = (
        np.full(info.num_samples, np.nan)
        if scores is None
        else np.asarray(scores, "float64")
    )
    relabels = (
        np.full(info.num_samples, -1)
        if relabels is None
        else np.asarray(relabels, "int64")
    )
    name = model.score_name if model.clean_scores() is not None else None
    return probs, scores, relabels, name, bool(model.score_uses_label)


def _table(info, probs, ranking, method_raw, method_relabel, fold):
    import pandas as pd

    names = np.asarray(info.class_names, dtype=object)
    labels = np.asarray(info.labels)
    suggested = ranking["suggested"]
    rows = np.arange(len(labels))
    columns = {
        "rank": ranking["rank"],
        "path": list(info.sources),
        "name": list(info.names),
        "given_label": names[labels],
        "suggested_label": names[suggested],
        "issue_score": ranking["issue_score"],
        "label_quality": ranking["label_quality"],
        "method_score": method_raw,
        "cleanlab_issue": ranking["cleanlab_issue"],
        "method_relabel": np.where(
            method_relabel >= 0, names[np.maximum(method_relabel, 0)], ""
        ),
        "p_given": probs[rows, labels],
        "p_suggested": probs[rows, suggested],
        "sample_id": rows,
        "fold": fold + 1,
    }
    if info.noise:
        columns["clean_label"] = names[np.asarray(info.clean_labels)]
        columns["flipped"] = np.asarray(info.noise_mask, bool)
    df = pd.DataFrame(columns)
    return df.iloc[ranking["order"]].reset_index(drop=True)


# --- Files ---------------------------------------------------------------
def corrected_labels(df, info):
    """Labels (class indices, sample order) after the audit's relabels."""
    index = {name: i for i, name in enumerate(info.class_names)}
    labels = np.asarray(info.labels).copy()
    change = df["relabel"].to_numpy()
    ids = df["sample_id"].to_numpy()[change]
    labels[ids] = [index[s] for s in df["suggested_label"].to_numpy()[change]]
    return labels


def write_corrected_labels(path, df, info):
    """Write the EAC-format file; None (with a reason) if impossible."""
    from ferzoo.data import write_noise_file
    from ferzoo.data.noise import rafdb_label_map

    try:
        rafdb_label_map(info.class_names)
    except ValueError:
        return (
            f"classes {list(info.class_names)} are not the 7 RAF-DB "
            "classes, which the EAC label format requires"
        )
    spaced = [n for n in info.names if any(c.isspace() for c in n)]
    if spaced:
        return (
            f"{len(spaced)} image name(s) contain whitespace, which the "
            f"'name label' format cannot hold (first: {spaced[0]!r})"
        )
    labels = corrected_labels(df, info)
    tmp = pathlib.Path(path).with_name(".tmp-" + pathlib.Path(path).name)
    write_noise_file(tmp, info.names, labels, info.class_names)
    os.replace(tmp, path)
    return None


def write_report(df, records, info, out, top, summary):
    """Write the CSV, corrected labels, sheets, thumbnails and HTML."""
    out = pathlib.Path(out)
    files = {}
    tmp = out / (".tmp-" + CSV_FILE)
    df[CSV_COLUMNS + [c for c in ("clean_label", "flipped") if c in df]].to_csv(
        tmp, index=False, float_format="%.6g"
    )
    os.replace(tmp, out / CSV_FILE)
    files["csv"] = CSV_FILE

    with open(out / SKIPPED_FILE, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "reason"])
        writer.writerows(info.skipped)
    files["skipped"] = SKIPPED_FILE

    reason = write_corrected_labels(out / CORRECTED_FILE, df, info)
    if reason is None:
        files["corrected_labels"] = CORRECTED_FILE
    else:
        print(f"[ferzoo-audit] no {CORRECTED_FILE}: {reason}.", file=sys.stderr)
        summary["corrected_labels_skipped"] = reason

    head = df.head(int(top))
    images = records.images[head["sample_id"].to_numpy()]
    for folder in ("sheets", "thumbs"):
        # The folder is ferzoo's (outputs.claim); remove only what an
        # earlier audit wrote there, by its names.
        (out / folder).mkdir(exist_ok=True)
        for old in (out / folder).glob("*.png"):
            if re.fullmatch(r"(sheet_)?\d+\.png", old.name):
                old.unlink()
    files["sheets"] = write_contact_sheets(head, images, out / "sheets")
    files["thumbs"] = write_thumbnails(head, images, out / "thumbs")
    write_html(out / HTML_FILE, head, files, summary)
    files["html"] = HTML_FILE
    return files


def caption(row):
    return (
        f"{row['given_label']} \u2192 {row['suggested_label']} "
        f"({row['issue_score']:.2f})"
    )


def write_contact_sheets(head, images, folder):
    """PNG grids of `images`, captioned; returns their relative paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_sheet = SHEET_COLUMNS * SHEET_ROWS
    paths = []
    for start in range(0, len(head), per_sheet):
        chunk = head.iloc[start : start + per_sheet]
        rows = math.ceil(len(chunk) / SHEET_COLUMNS)
        fig, axes = plt.subplots(
            rows,
            SHEET_COLUMNS,
            figsize=(SHEET_COLUMNS * 1.6, rows * 1.85),
            squeeze=False,
        )
        for ax in axes.flat:
            ax.axis("off")
        for i, (_, row) in enumerate(chunk.iterrows()):
            ax = axes.flat[i]
            ax.imshow(images[start + i], interpolation="nearest")
            ax.set_title(f"#{row['rank']}\n{caption(row)}", fontsize=7, pad=2)
        fig.tight_layout(pad=0.3)
        name = f"sheet_{start // per_sheet + 1:03d}.png"
        fig.savefig(folder / name, dpi=100)
        plt.close(fig)
        paths.append(f"{folder.name}/{name}")
    return paths


def write_thumbnails(head, images, folder, size=96):
    from PIL import Image

    paths = []
    for (_, row), image in zip(head.iterrows(), images):
        name = f"{int(row['rank']):06d}.png"
        Image.fromarray(np.asarray(image, "uint8")).resize(
            (size, size), Image.NEAREST
        ).save(folder / name)
        paths.append(f"{folder.name}/{name}")
    return paths


def write_html(path, head, files, summary):
    """A self-contained page (relative image links, no server)."""
    esc = html.escape
    basis = "percentile rank of cleanlab's label quality"
    if summary.get("score_combined"):
        basis = (
            "mean percentile rank of cleanlab's label quality and the "
            f"method's clean score ({esc(summary['score'])})"
        )
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>ferzoo-audit: suspected label issues</title>",
        "<style>body{font-family:sans-serif;margin:1.5em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:2px 6px;font-size:13px}img.sheet{max-width:100%}"
        "tr.flag td:first-child{background:#fdd}</style>",
        "</head><body>",
        "<h1>Suspected label issues</h1>",
        f"<p>{summary['num_samples']} training images, "
        f"{summary['num_cleanlab_issues']} flagged by confident learning "
        f"(cleanlab, {esc(summary['probabilities'])} probabilities); "
        f"{summary['num_relabeled']} relabelled in "
        f'<a href="{CORRECTED_FILE}">{CORRECTED_FILE}</a>. '
        f'Full ranking: <a href="{CSV_FILE}">{CSV_FILE}</a>. '
        f"Captions read <i>given \u2192 suggested (issue score)</i>; "
        f"the issue score is 1 minus the {basis}.</p>",
    ]
    if summary.get("num_skipped"):
        lines.append(
            f"<p>{summary['num_skipped']} unreadable images were left out "
            f'(<a href="{SKIPPED_FILE}">{SKIPPED_FILE}</a>).</p>'
        )
    lines.append(f"<h2>Top {len(head)}</h2>")
    for sheet in files["sheets"]:
        lines.append(f'<p><img class="sheet" src="{esc(sheet)}" alt=""></p>')
    lines.append(
        "<table><tr><th>rank</th><th>image</th><th>path</th><th>given</th>"
        "<th>suggested</th><th>issue score</th><th>label quality</th>"
        "<th>method score</th><th>cleanlab</th></tr>"
    )
    for (_, row), thumb in zip(head.iterrows(), files["thumbs"]):
        flag = ' class="flag"' if row["cleanlab_issue"] else ""
        method = row["method_score"]
        method = "" if np.isnan(method) else f"{method:.3f}"
        lines.append(
            f"<tr{flag}><td>{row['rank']}</td>"
            f'<td><img src="{esc(thumb)}" width="64" height="64" alt=""></td>'
            f"<td>{esc(str(row['path']))}</td>"
            f"<td>{esc(str(row['given_label']))}</td>"
            f"<td>{esc(str(row['suggested_label']))}</td>"
            f"<td>{row['issue_score']:.3f}</td>"
            f"<td>{row['label_quality']:.3f}</td><td>{method}</td>"
            f"<td>{'flagged' if row['cleanlab_issue'] else ''}</td></tr>"
        )
    lines.append("</table></body></html>")
    tmp = path.with_name(".tmp-" + path.name)
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class _CallableModule(types.ModuleType):
    """`ferzoo.audit(...)` calls `ferzoo.audit.audit(...)`."""

    def __call__(self, *args, **kwargs):
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
