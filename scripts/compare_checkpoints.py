"""Compare trained checkpoints on a data set's val and test splits.

For each checkpoint (a `.keras` file or a preset folder), one pass over
each split gives the logits of every image and of its mirror image; the
table then shows accuracy, macro-F1 and one class's F1 with one view
(`plain`) and with the horizontal-flip test-time average (`flip`: the
mean of the two views' probabilities, what `--tta` does). The shipped
`ferzoo_fer2013` was chosen among its stage-2 runs with this table
(`docs/presets.md`, its model card).

Example:
    python scripts/compare_checkpoints.py runs/e1/best.keras \\
        runs/e3/best.keras --data fer2013:/data/fer2013 --image-size 112
"""

import os

import click
import numpy as np


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("checkpoints", nargs=-1, required=True)
@click.option("--data", required=True, help="KIND:PATH with val and test.")
@click.option("--image-size", default=112, show_default=True)
@click.option("--class-name", default="disgust", show_default=True)
def main(checkpoints, data, image_size, class_name):
    """Print val/test accuracy, macro-F1 and a class's F1 per checkpoint."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    click.echo(
        "| checkpoint | split | view | accuracy | macro-F1 | "
        f"{class_name} F1 |\n|---|---|---|---|---|---|"
    )
    for path in checkpoints:
        model = _load(path)
        for split in ("val", "test"):
            logits, flipped, labels, names = _logits(
                model, data, split, image_size
            )
            plain = _softmax(logits)
            views = {"plain": plain, "flip": (plain + _softmax(flipped)) / 2}
            for view, probs in views.items():
                acc, macro, f1 = _scores(probs, labels, len(names))
                click.echo(
                    f"| {path} | {split} | {view} | {acc:.4f} | "
                    f"{macro:.4f} | {f1[names.index(class_name)]:.4f} |"
                )


def _load(path):
    import keras

    import ferzoo.models

    if path.endswith(".keras"):
        return keras.saving.load_model(path, compile=False)
    return ferzoo.models.Baseline.from_preset(path)


def _logits(model, data, split, image_size):
    from ferzoo.data import load_split

    ds, info = load_split(
        data, split=split, image_size=image_size, batch_size=128
    )
    out = {"plain": [], "flip": [], "labels": []}
    for x, y in ds:
        images = x["images"] if isinstance(x, dict) else x
        out["plain"].append(np.asarray(model(images)["logits"]))
        mirror = images[:, :, ::-1]
        out["flip"].append(np.asarray(model(mirror)["logits"]))
        out["labels"].append(np.asarray(y))
    return (
        np.concatenate(out["plain"]),
        np.concatenate(out["flip"]),
        np.concatenate(out["labels"]),
        list(info.class_names),
    )


def _softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _scores(probs, labels, num_classes):
    from sklearn.metrics import f1_score

    predicted = probs.argmax(axis=1)
    f1 = f1_score(
        labels, predicted, average=None, labels=list(range(num_classes))
    )
    return float(np.mean(predicted == labels)), float(f1.mean()), f1


if __name__ == "__main__":
    main()
