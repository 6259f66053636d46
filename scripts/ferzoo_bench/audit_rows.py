"""The rows and the Markdown of `scripts/audit_benchmark.py`: each audit's
detection metrics against cleanlab alone, and the tables."""

import datetime
import time

import numpy as np


def rows_for(
    df, probs, labels, method_rank, flipped, name, is_baseline, combined
):
    """Table rows of one audit: cleanlab, the method score, the audit."""
    import cleanlab.filter

    from ferzoo import audit

    k = int(flipped.sum())
    rows = []

    def add(label, ranked, suspicion, top=k):
        m = audit.detection_metrics(ranked, flipped, top)
        rows.append(
            {
                "ranking": label,
                "flagged": m["flagged"],
                "precision": m["precision"],
                "recall": m["recall"],
                "f1": m["f1"],
                "roc_auc": audit.roc_auc(suspicion, flipped),
            }
        )

    quality = probs[np.arange(len(labels)), labels]
    flagged = cleanlab.filter.find_label_issues(
        labels,
        probs,
        return_indices_ranked_by="self_confidence",
        n_jobs=1,
    )
    prefix = "(a) cleanlab" if is_baseline else f"{name}: cleanlab"
    add(f"{prefix} set", flagged, -quality, len(flagged))
    add(f"{prefix} top-k", np.argsort(quality, kind="stable"), -quality)
    scores = df.sort_values("sample_id")["method_score"].to_numpy()
    if not np.isnan(scores).all():
        order = np.argsort(np.where(np.isnan(scores), np.inf, scores))
        add(f"(b) {name} score", order, -scores)
    for rule in audit.RULES:
        r = audit.rank_issues(
            labels, probs, method_rank if combined else None, rule=rule
        )
        add(f"(c) {name} audit ({rule})", r["order"], -r["rank"])
    if not combined and not np.isnan(scores).all():
        # What the label-free score would have added.
        r = audit.rank_issues(labels, probs, method_rank)
        add(f"{name} audit, label-free score combined", r["order"], -r["rank"])
    return rows


def _fmt(value):
    return "" if value is None else f"{value:.3f}"


def markdown(results, presets):
    s = results["settings"]
    lines = [
        "# ferzoo-audit against cleanlab alone",
        "",
        f"Data `{s['data']}`, presets {', '.join(f'`{p}`' for p in presets)}"
        f", {s['folds']} folds, epochs {s['epochs'] or 'preset'}, subset "
        f"{s['subset_per_class'] or 'none'} per class, image size "
        f"{s['image_size'] or 'preset'}, seed {s['seed']}. Top-k with k = "
        "the number of flipped labels; `cleanlab set` is cleanlab's own "
        "flagged set (its size in `flagged`).",
        "",
    ]
    for key, block in results["noise"].items():
        lines += [
            f"## {key} noise ({block['num_flipped']} of "
            f"{block['num_samples']} labels flipped)",
            "",
            "| ranking | flagged | precision | recall | F1 | ROC-AUC |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in block["rows"]:
            lines.append(
                f"| {r['ranking']} | {r['flagged']} | {_fmt(r['precision'])}"
                f" | {_fmt(r['recall'])} | {_fmt(r['f1'])} | "
                f"{_fmt(r['roc_auc'])} |"
            )
        if block["retrain"]:
            lines += [
                "",
                "| preset | test acc. (noisy) | test acc. (corrected) | gain |",
                "|---|---:|---:|---:|",
            ]
            for r in block["retrain"]:
                lines.append(
                    f"| {r['preset']} | {_fmt(r['noisy'])} | "
                    f"{_fmt(r['corrected'])} | {_fmt(r['gain'])} |"
                )
        lines.append("")
    return "\n".join(lines)


def block(results, noise_type, rate, flipped, table, retrain):
    results["noise"][f"{noise_type}:{rate}"] = {
        "noise_type": noise_type,
        "rate": rate,
        "num_flipped": int(flipped.sum()),
        "num_samples": int(len(flipped)),
        "rows": table,
        "retrain": retrain,
    }


def write(training, path, results, started):
    """The results so far (`"complete": false` until the last block)."""
    results["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"
    )
    results["wall_seconds"] = round(time.time() - started, 1)
    training.atomic_write_json(path, results)
