"""The audit's data and folds: the training records with their (noisy)
labels, the stratified fold assignment, and each fold trained through the
one training path (`ferzoo.training.run.fit_run`) with its own spec."""

import dataclasses
import os
import pathlib
import sys
import types

import numpy as np

from ferzoo.audit.ranking import percentile_rank
from ferzoo.errors import DataError
from ferzoo.spec import FoldSpec

FOLD_FILE = "audit_fold.npz"


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
    from ferzoo.data.noise import noisy_labels
    from ferzoo.data.spec import NoiseSpec

    spec = NoiseSpec(
        rate=noise_rate, type=noise_type, seed=noise_seed, file=file
    )
    clean = records.labels.copy()
    labels, noise = noisy_labels(spec, records, on_error)
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
def _epoch_bar(desc, enabled):
    """A progress bar over a fold's epochs (from the first one run)."""
    import keras

    class EpochBar(keras.callbacks.Callback):
        bar = None

        def on_epoch_begin(self, epoch, logs=None):
            if enabled and self.bar is None:
                from tqdm.auto import tqdm

                self.bar = tqdm(
                    total=self.params.get("epochs"),
                    initial=epoch,
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


def fold_spec(spec, k, folds):
    """The spec of fold `k` (0-based) of an audit run `spec`: seeded
    `spec.seed + k`, no val split (every image of the other folds
    trains)."""
    return spec.replace(
        seed=spec.seed + k,
        selection=dataclasses.replace(spec.selection, val_fraction=0.0),
        fold=FoldSpec(k, int(folds), spec.seed),
    )


def train_fold(
    spec,
    images,
    labels,
    class_names,
    train_idx,
    held_idx,
    fold_dir,
    resume=True,
    progress=True,
    desc="fold",
):
    """Train one fold (resumable) and score it; return its arrays.

    The fold is a training run of its own spec (`fold_spec`) through
    `ferzoo.training.run.fit_run`, its data the in-memory images of
    `train_idx`: the fold folder holds `spec.json`, `last.keras`,
    `best.keras` and `state.json`, so an interrupted fold resumes at its
    next epoch, and `audit_fold.npz` once it is done: the out-of-fold
    probabilities of `held_idx`, and the clean scores and relabels the
    model recorded for `train_idx`.
    """
    from ferzoo.data import make_dataset
    from ferzoo.training.run import RunData
    from ferzoo.training.run import fit_run

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

    def data_step(spec, recipe, epochs):
        train_ds = make_dataset(
            images[train_idx],
            labels[train_idx],
            batch_size=int(recipe["batch_size"]),
            training=True,
            augment=recipe.get("augment"),
            seed=spec.seed,
        )
        info = types.SimpleNamespace(
            num_classes=len(class_names),
            num_samples=len(train_idx),
            class_names=list(class_names),
            # What a class balance counts (the fold's training labels).
            counts=np.bincount(
                labels[train_idx], minlength=len(class_names)
            ).tolist(),
        )
        return RunData(train_ds, info)

    bar = _epoch_bar(desc, progress)
    try:
        fitted = fit_run(
            spec,
            fold_dir,
            resume=resume,
            verbose=0,
            callbacks=[bar],
            data_step=data_step,
            logs=False,
        )
    finally:
        bar.close()
    held_ds = make_dataset(
        images[held_idx],
        labels[held_idx],
        batch_size=int(fitted.recipe["batch_size"]),
    )
    arrays = _fold_arrays(fitted.model, held_ds, train_idx, held_idx)
    _atomic_savez(done, **arrays)
    return arrays


def _fold_arrays(model, held_ds, train_idx, held_idx):
    probs = model.predict(held_ds, verbose=0)
    return {
        "held_idx": np.asarray(held_idx),
        "train_idx": np.asarray(train_idx),
        "probs": np.asarray(probs, "float64"),
        **model_scores(model, len(train_idx)),
    }


def model_scores(model, num_samples):
    """The clean scores (NaN where none) and relabels (-1 where none) a
    model recorded for its `num_samples` training images, and its score's
    name (empty without one)."""
    scores = model.clean_scores()
    relabels = model.relabels()
    return {
        "scores": (
            np.full(num_samples, np.nan)
            if scores is None
            else np.asarray(scores, "float64")
        ),
        "relabels": (
            np.full(num_samples, -1)
            if relabels is None
            else np.asarray(relabels, "int64")
        ),
        "score_name": np.array(model.score_name if scores is not None else ""),
        "score_uses_label": np.array(bool(model.score_uses_label)),
    }


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
