"""What a noisy-label run did, from its folder: the measurement behind a
method's miss.

Reads a `ferzoo-train` (or benchmark cell) run folder: `spec.json` for the
data and its seeded noise (the flipped labels are rebuilt from the same
seed; the images are only listed, not decoded), `history.csv` for the loss
terms per epoch, `memorisation.json` if the benchmark wrote one, and
`last.keras` for the per-sample tables (the clean score and the relabels
of the last epoch). Prints, and with `--json FILE` writes:

- each `loss*` column of the history at a few epochs (first, every
  `--every`, last), so a term that vanishes or dominates shows;
- the clean score's distribution on the clean and on the flipped samples
  (quantiles), its ROC-AUC against the flip mask and the clean fraction
  among the lowest-scored `k` (k = the number flipped);
- the relabels: how many, restored (to the true label), broken (a clean
  label changed), moved (a flipped label changed to a third class), and
  the most frequent given -> new pairs;
- the memorisation records.

    python scripts/diagnose_run.py RUN_DIR [--json FILE] [--every 5]
"""

import collections
import csv
import json
import pathlib

import click
import numpy as np


def loss_terms(history_csv, every):
    """{column: {epoch: value}} of the `loss*` columns (1-based epochs)."""
    with open(history_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    keep = sorted({0, len(rows) - 1, *range(every - 1, len(rows), every)})
    return {
        col: {
            i + 1: round(float(rows[i][col]), 4) for i in keep if rows[i][col]
        }
        for col in rows[0]
        if col.startswith("loss")
    }


def score_stats(scores, flipped):
    """Quantiles of the clean score on clean / flipped samples, ROC-AUC."""
    from sklearn.metrics import roc_auc_score

    seen = ~np.isnan(scores)
    s, f = scores[seen], flipped[seen]
    q = [0.05, 0.25, 0.5, 0.75, 0.95]
    out = {
        "num_scored": int(seen.sum()),
        "quantiles": q,
        "clean": np.quantile(s[~f], q).round(4).tolist() if (~f).any() else [],
        "flipped": np.quantile(s[f], q).round(4).tolist() if f.any() else [],
    }
    if f.any() and (~f).any():
        out["roc_auc"] = float(roc_auc_score(~f, s))
        k = int(f.sum())
        lowest = np.argsort(s, kind="stable")[:k]
        out["flipped_among_lowest_k"] = float(f[lowest].mean())
    return out


def relabel_stats(relabels, given, clean, class_names, top=8):
    """Counts of the relabels by outcome, and the commonest moves."""
    changed = (relabels >= 0) & (relabels != given)
    flipped = given != clean
    new = relabels[changed]
    moves = collections.Counter(
        (class_names[a], class_names[b]) for a, b in zip(given[changed], new)
    )
    return {
        "relabeled": int(changed.sum()),
        "restored": int((changed & (relabels == clean)).sum()),
        "broken": int((changed & ~flipped).sum()),
        "moved": int((changed & flipped & (relabels != clean)).sum()),
        "of_flipped": int(flipped.sum()),
        "top_moves": [
            {"given": a, "new": b, "count": n}
            for (a, b), n in moves.most_common(top)
        ],
    }


def run_labels(run):
    """(given, clean, class names) of the run's training split."""
    from ferzoo.data import DataSpec
    from ferzoo.data import read_data

    spec = json.loads((run / "spec.json").read_text())
    noise = spec.get("noise") or {}
    data = DataSpec.from_kwargs(
        spec["data"]["source"],
        noise_rate=noise.get("rate") or 0.0,
        noise_type=noise.get("type", "symmetric"),
        noise_seed=noise.get("seed", 0),
        limit_per_class=spec["data"].get("limit_per_class"),
        classes=spec["data"].get("classes"),  # imagefolder's class order
        stream=True,  # labels only: the images are listed, not decoded
    )
    info = read_data(data, "train").info
    return (
        np.asarray(info.labels),
        np.asarray(info.clean_labels),
        list(info.class_names),
    )


def diagnose(run, every=5):
    import keras

    run = pathlib.Path(run)
    for name in ("spec.json", "history.csv", "last.keras"):
        if not (run / name).is_file():
            raise click.UsageError(f"{run / name}: not found (a run folder?)")
    given, clean, names = run_labels(run)
    model = keras.saving.load_model(run / "last.keras", compile=False)
    report = {
        "run": str(run),
        "method": type(model).__name__,
        "score": getattr(model, "score_name", None),
        "loss_terms": loss_terms(run / "history.csv", every),
    }
    if len(given) != model.num_samples:
        raise click.UsageError(
            f"{run}: the data has {len(given)} training samples and the "
            f"model {model.num_samples} per-sample rows"
        )
    scores = model.clean_scores()
    if scores is not None:
        report["clean_score"] = score_stats(
            np.asarray(scores, dtype="float64"), given != clean
        )
    relabels = model.relabels()
    if relabels is not None:
        report["relabels"] = relabel_stats(
            np.asarray(relabels), given, clean, names
        )
    mem = run / "memorisation.json"
    if mem.is_file():
        report["memorisation"] = json.loads(mem.read_text())
    return report


@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "json_out", default=None, help="Write it here.")
@click.option("--every", default=5, show_default=True, help="Epoch stride.")
def main(run, json_out, every):
    report = diagnose(run, every)
    text = json.dumps(report, indent=1)
    click.echo(text)
    if json_out:
        pathlib.Path(json_out).write_text(text + "\n")


if __name__ == "__main__":
    main()
