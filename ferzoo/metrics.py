"""Evaluation and noise-detection reports (NumPy and scikit-learn)."""

import json

import numpy as np
from sklearn import metrics as skm


def classification_report(labels, probs, class_names=None):
    """Top-1 accuracy, per-class accuracy, macro-F1 and confusion matrix.

    Args:
        labels: int array `(N,)`. True labels.
        probs: float array `(N, C)`. Predicted probabilities (or logits).
        class_names: list of str or None. Names of the C classes.

    Returns:
        A JSON-able dict.

    Example:
    >>> import numpy as np
    >>> r = ferzoo.metrics.classification_report(
    ...     np.array([0, 1, 1]), np.eye(2)[[0, 1, 0]])
    >>> round(r["accuracy"], 3)
    0.667
    """
    labels = np.asarray(labels).astype(int)
    probs = np.asarray(probs)
    num_classes = probs.shape[-1]
    names = list(class_names or [str(i) for i in range(num_classes)])
    predicted = probs.argmax(axis=-1)
    cm = skm.confusion_matrix(labels, predicted, labels=range(num_classes))
    support = cm.sum(axis=1)
    per_class = np.divide(
        np.diag(cm), support, out=np.zeros(num_classes), where=support > 0
    )
    return {
        "accuracy": float((predicted == labels).mean()) if len(labels) else 0.0,
        "macro_f1": float(
            skm.f1_score(
                labels,
                predicted,
                labels=range(num_classes),
                average="macro",
                zero_division=0,
            )
        ),
        "per_class_accuracy": dict(zip(names, map(float, per_class))),
        "confusion_matrix": cm.tolist(),
        "class_names": names,
        "num_samples": int(len(labels)),
    }


def noise_detection_report(
    scores, noise_mask, relabels=None, noisy=None, clean=None
):
    """How well per-sample clean scores find the flipped labels.

    Args:
        scores: float array `(N,)`. Clean score per training sample
            (higher means more likely clean); NaN rows are ignored.
        noise_mask: bool array `(N,)`. True where the label was flipped.
        relabels: int array `(N,)` or None. Corrected labels, -1 where a
            sample kept its label.
        noisy: int array `(N,)` or None. The labels trained on.
        clean: int array `(N,)` or None. The true labels.

    Returns:
        A dict with `roc_auc` (of the score separating clean from flipped
        samples, None if only one group exists) and, with relabels,
        `relabeled`, `restored` (relabels to the true label), `broken`
        (a correct label changed) and `relabel_precision`.

    Example:
    >>> import numpy as np
    >>> r = ferzoo.metrics.noise_detection_report(
    ...     np.array([0.9, 0.8, 0.1]), np.array([False, False, True]))
    >>> r["roc_auc"]
    1.0
    """
    scores = np.asarray(scores, dtype="float64")
    mask = np.asarray(noise_mask, dtype=bool)
    seen = ~np.isnan(scores)
    report = {
        "num_samples": int(len(mask)),
        "num_flipped": int(mask.sum()),
        "num_scored": int(seen.sum()),
        "roc_auc": None,
    }
    clean_flags = ~mask[seen]
    if clean_flags.any() and (~clean_flags).any():
        report["roc_auc"] = float(skm.roc_auc_score(clean_flags, scores[seen]))
        fpr, tpr, _ = skm.roc_curve(clean_flags, scores[seen])
        keep = np.unique(np.linspace(0, len(fpr) - 1, 101).astype(int))
        report["roc_curve"] = {
            "fpr": fpr[keep].round(5).tolist(),
            "tpr": tpr[keep].round(5).tolist(),
        }
    if relabels is not None and noisy is not None and clean is not None:
        relabels = np.asarray(relabels)
        noisy = np.asarray(noisy)
        clean = np.asarray(clean)
        changed = (relabels >= 0) & (relabels != noisy)
        restored = changed & (relabels == clean)
        broken = changed & (noisy == clean)
        report.update(
            {
                "relabeled": int(changed.sum()),
                "restored": int(restored.sum()),
                "broken": int(broken.sum()),
                "relabel_precision": (
                    float(restored.sum() / changed.sum())
                    if changed.any()
                    else None
                ),
            }
        )
    return report


def save_confusion_matrix(report, path_png, path_json=None, title=None):
    """Write the confusion matrix of a report as PNG (and JSON)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(report["confusion_matrix"])
    names = report["class_names"]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            color = "white" if norm[i, j] > 0.5 else "black"
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                color=color,
                fontsize=8,
            )
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {report['accuracy']:.3f}")
    fig.tight_layout()
    fig.savefig(path_png, dpi=100)
    plt.close(fig)
    if path_json:
        with open(path_json, "w") as f:
            json.dump(
                {"class_names": names, "confusion_matrix": cm.tolist()}, f
            )
