"""The page's "ferzoo-audit vs cleanlab" section, from the results JSON of
`scripts/audit_benchmark.py` (`docs/benchmarks/audit/*.json`)."""

from ferzoo_bench.fmt import column_label
from ferzoo_bench.fmt import num
from ferzoo_bench.fmt import pct


def audit_section(audit_dir):
    """ferzoo-audit against cleanlab, from `docs/benchmarks/audit/*.json`.

    Each file is `scripts/audit_benchmark.py`'s results JSON; the section
    is empty when there is none.
    """
    import json
    import pathlib

    found = [
        json.loads(p.read_text())
        for p in sorted(pathlib.Path(audit_dir).glob("*.json"))
    ]
    if not found:
        return []
    lines = [
        "## ferzoo-audit vs cleanlab",
        "",
        "How well each ranking finds the labels the noise flipped "
        "(`scripts/audit_benchmark.py`: K folds, so every image is scored "
        "by a model that did not train on it). Top-k precision, recall "
        "and F1 with k = the number of flipped labels, and ROC-AUC: "
        "(a) cleanlab alone (`find_label_issues` and its self-confidence "
        "ranking) on the Baseline's out-of-fold probabilities, (b) each "
        "method's own clean score, (c) the ferzoo-audit combination "
        "(`rank_average` is `ferzoo-audit`'s default rule). Then each "
        "preset retrained on the noisy labels and on the audit's "
        "corrected labels: final-epoch test accuracy (%) and the gain "
        "in points.",
        "",
    ]
    for result in found:
        lines += _audit_result(result)
    return lines


def _ranking_rows(blocks):
    """One row per ranking, its metrics in every noise column."""
    lines, names = [], []
    for b in blocks:
        for r in b["rows"]:
            if r["ranking"] not in names:
                names.append(r["ranking"])
    for name in names:
        row = [name]
        for b in blocks:
            r = next((r for r in b["rows"] if r["ranking"] == name), None)
            if r is None:
                row += ["–"] * 4
            else:
                row += [
                    num(r[k]) for k in ("precision", "recall", "f1", "roc_auc")
                ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _retrain_table(labels, columns, blocks):
    """Test accuracy retrained on the noisy vs. the corrected labels."""
    if not any(b.get("retrain") for b in blocks):
        return []
    lines = [
        "",
        "| retrained preset | "
        + " | ".join(
            f"{label} {m}"
            for label in labels
            for m in ("noisy labels", "corrected labels", "gain")
        )
        + " |",
        "|---|" + "---:|" * (3 * len(columns)),
    ]
    presets = []
    for b in blocks:
        for r in b.get("retrain") or []:
            if r["preset"] not in presets:
                presets.append(r["preset"])
    for preset in presets:
        row = [f"`{preset}`"]
        for b in blocks:
            retrained = b.get("retrain") or []
            r = next((r for r in retrained if r["preset"] == preset), None)
            if r is None:
                row += ["–"] * 3
                continue
            gain = r.get("gain")
            row += [
                pct(r.get("noisy")),
                pct(r.get("corrected")),
                "–" if gain is None else f"{100 * gain:+.1f}",
            ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _audit_result(result):
    blocks = list(result["noise"].values())
    columns = [(b["noise_type"], b["rate"]) for b in blocks]
    labels = [column_label(c) for c in columns]
    mach = result["machine"]
    subset = result.get("subset")
    flips = "; ".join(
        f"{label}: {b['num_flipped']:,} of {b['num_samples']:,} labels flipped"
        for label, b in zip(labels, blocks)
    )
    lines = [
        f"### `{result['name']}`",
        "",
        f"- Command: `{result['command']}`",
        f"- Presets: {', '.join(f'`{p}`' for p in result['presets'])}; "
        f"{result['settings']['folds']} folds"
        + (
            f"; the `{subset['profile']}` profile's training subset (at "
            f"most {subset['limit_per_class']} images per class, subset "
            f"seed {subset['subset_seed']}), {subset['epochs']} epochs"
            + _recipe(subset)
            if subset
            else ""
        )
        + f"; {flips}.",
    ]
    if result.get("pair_mapping") and any(t == "pair" for t, _ in columns):
        mapping = ", ".join(
            f"{a} -> {b}" for a, b in result["pair_mapping"].items()
        )
        lines.append(f"- Pair mapping: {mapping}.")
    lines += [
        f"- Machine: {mach['platform']}, {mach['processor']}, "
        f"{mach['cpu_count']} CPU cores; ferzoo {mach['ferzoo']}, Keras "
        f"{mach['keras']}, backend {mach['backend']} "
        f"{mach['backend_version']}",
        _finished(result),
        *[f"- {note}" for note in result.get("notes") or []],
        "",
        "| ranking | "
        + " | ".join(
            f"{label} {m}"
            for label in labels
            for m in ("precision", "recall", "F1", "ROC-AUC")
        )
        + " |",
        "|---|" + "---:|" * (4 * len(columns)),
    ]
    lines += _ranking_rows(blocks)
    lines += _audit_goal(labels, blocks)
    lines += _retrain_table(labels, columns, blocks)
    return lines + [""]


def _audit_goal(labels, blocks):
    """The issue's goal: (c) beats (a) on F1 at every noise setting.

    (c) is the best `rank_average` row (ferzoo-audit's default rule) of
    any preset; (a) the better of cleanlab's own flagged set and its
    top-k, so the comparison is against cleanlab at its best.
    """
    verdicts = []
    for label, b in zip(labels, blocks):
        rows = [r for r in b["rows"] if r.get("f1") is not None]
        a = [r for r in rows if r["ranking"].startswith("(a)")]
        c = [
            r
            for r in rows
            if r["ranking"].startswith("(c)") and "rank_average" in r["ranking"]
        ]
        if not a or not c:
            continue
        best_a = max(a, key=lambda r: r["f1"])
        best_c = max(c, key=lambda r: r["f1"])
        gap = best_c["f1"] - best_a["f1"]
        verdicts.append(
            f"{label}: {best_c['ranking']} {best_c['f1']:.3f} against "
            f"{best_a['ranking']} {best_a['f1']:.3f}, "
            + ("met" if gap > 0 else "missed")
            + f" by {abs(gap):.3f}"
        )
    if not verdicts:
        return []
    return [
        "",
        "Goal, the ferzoo-audit combination (c) above cleanlab alone (a) on "
        "F1 at every noise setting (best `rank_average` row against "
        "cleanlab's better row): " + "; ".join(verdicts) + ".",
    ]


def _finished(result):
    earlier = result.get("earlier_runs_seconds") or []
    total = result["wall_seconds"] + sum(earlier)
    line = (
        f"- Finished {result['date']} (UTC) after {total / 60:.0f} minutes "
        "of wall time"
    )
    if earlier:
        line += (
            f" ({len(earlier) + 1} runs of the command, the last "
            f"{result['wall_seconds'] / 60:.0f} minutes, resuming the "
            "cached folds)"
        )
    if result.get("complete") is False:
        line += (
            "; **partial**: the run stopped before its last block, and "
            "what it had not reached is shown as –"
        )
    return line + "."


def _recipe(subset):
    """The profile's recipe entries the run used, where it recorded them."""
    if "recipe" not in subset:
        return ""
    if not subset["recipe"]:
        return ", the presets' own recipes"
    entries = ", ".join(f"{k} {v}" for k, v in subset["recipe"].items())
    return f", the presets' recipes with {entries}"
