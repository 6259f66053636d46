"""Issue 14's targets (pretrained backbone): each met, missed by how
much, or not run; and whether the profile is the regime it asks for."""

from ferzoo_bench.cells import epoch_time
from ferzoo_bench.fmt import display
from ferzoo_bench.fmt import pct
from ferzoo_bench.fmt import points
from ferzoo_bench.targets import auc_against
from ferzoo_bench.targets import gap_verdict
from ferzoo_bench.targets import met_or_missed
from ferzoo_bench.targets import seed0
from ferzoo_bench.targets import seed_stats

NOT_RUN = "not run"


def pretrained(profile, cells, methods):
    """Issue 14's targets, each met, missed (by how much) or not run."""
    lines = [
        "### Against the targets",
        "",
        "The targets of the pretrained-backbone benchmark (issue 14); "
        "accuracies are best-on-val PrivateTest accuracy, as the mean over "
        "seeds where a cell has several.",
        "",
    ]
    sym = lambda r: ("symmetric", r)  # noqa: E731
    lines += calibration(seed0(cells, "baseline", sym(0.3)))
    base0 = seed_stats(cells, "baseline", sym(0.0))
    if base0 is None:
        lines.append("- Clean Baseline at least 60%: not run.")
    else:
        acc = base0["mean"]
        lines.append(
            f"- Clean Baseline at least 60%: {pct(acc)}% over {base0['n']} "
            "seed(s) ("
            + met_or_missed(acc >= 0.60, f"{100 * (0.60 - acc):.1f} points")
            + ")."
        )
    lines += _gain_targets(cells, methods)
    best = max(
        (
            (s["mean"], k)
            for k in methods
            if (s := seed_stats(cells, k, sym(0.3))) is not None
        ),
        default=None,
    )
    clean = best and seed_stats(cells, best[1], sym(0.0))
    if not best or not clean:
        lines.append(
            "- The best method at 30% within 4 points of its own clean "
            "score: not run."
        )
    else:
        drop = clean["mean"] - best[0]
        lines.append(
            f"- The best method at 30%, {display(best[1], methods)} "
            f"({pct(best[0])}%), within 4 points of its own clean score "
            f"({pct(clean['mean'])}%): {100 * drop:.1f} points lower ("
            + met_or_missed(drop <= 0.04, f"{100 * (drop - 0.04):.1f} points")
            + ")."
        )
    lines += _detection_targets(cells, methods)
    lines.append("")
    return lines


def _gain_targets(cells, methods):
    """Every method at least 2 points above the Baseline at 30%."""
    sym = lambda r: ("symmetric", r)  # noqa: E731
    lines = []
    base30 = seed_stats(cells, "baseline", sym(0.3))
    others = [k for k in methods if k != "baseline"]
    if base30 is None:
        lines.append(
            "- At 30% symmetric noise every method at least 2 points above "
            "the Baseline, beyond the seed spread: not run."
        )
    else:
        lines.append(
            "- At 30% symmetric noise every method at least 2 points above "
            f"the Baseline ({pct(base30['mean'])}%), beyond the seed spread:"
        )
        all_met, missing, undecided = True, 0, 0
        for key in others:
            s = seed_stats(cells, key, sym(0.3))
            if s is None:
                lines.append(f"  - {display(key, methods)}: not run.")
                missing += 1
                continue
            gap, spread, verdict = gap_verdict(s, base30)
            one_seed = verdict.startswith("one seed")
            ok = gap >= 0.02 and verdict == "larger than the seed spread"
            all_met &= ok or (gap >= 0.02 and one_seed)
            need = max(0.02, spread) - gap
            if one_seed:
                # No spread to compare with: the 2 points alone decide a
                # miss; reaching them waits for the extra seeds.
                undecided += gap >= 0.02
                detail = verdict
                outcome = (
                    "2 points reached, beyond the spread not decided"
                    if gap >= 0.02
                    else f"missed by {100 * (0.02 - gap):.1f} points"
                )
            else:
                detail = f"{verdict} ({points(gap, spread)[1]})"
                outcome = (
                    "met"
                    if ok
                    else f"missed by {100 * max(need, 0):.1f} points"
                )
            lines.append(
                f"  - {display(key, methods)}: {pct(s['mean'])}%, "
                f"{points(gap, spread)[0]} points, {detail}: {outcome}."
            )
        if not all_met:
            overall = "missed"
        elif missing:
            overall = f"not decided ({missing} of {len(others)} not run)"
        elif undecided:
            overall = f"not decided ({undecided} need their extra seeds)"
        else:
            overall = "met"
        lines.append(f"  Overall: {overall}.")
    return lines


# A Baseline cell of the profile should take at most about this long.
CELL_MINUTES = 15
# ...and fit this many points more of the flipped labels to their wrong
# label at its last epoch than at its first measurement (memorisation).
MEMORISATION_RISE = 0.05


def calibration(base30):
    """Whether the profile is the regime the issue asks for.

    The Baseline at 30% symmetric noise (seed 0): its cell within about
    `CELL_MINUTES` (the sum of its epoch times), and its fit of the
    flipped samples to their wrong, given label rising by at least
    `MEMORISATION_RISE` from the first memorisation record to the last.
    """
    if base30 is None:
        return ["- Profile calibration (the Baseline at 30%): not run."]
    minutes = epoch_time(base30) / 60
    lines = [
        "- Profile calibration, the Baseline at 30% symmetric noise:",
        f"  - its cell within about {CELL_MINUTES} minutes: {minutes:.0f} "
        "minutes of epochs ("
        + met_or_missed(
            minutes <= CELL_MINUTES * 1.1,
            f"{minutes - CELL_MINUTES:.0f} minutes",
        )
        + ");",
    ]
    records = base30.get("memorisation") or []
    if len(records) < 2:
        lines.append("  - its fit of the flipped labels: not recorded.")
        return lines
    first, last = records[0], records[-1]
    rise = last["flipped_given"] - first["flipped_given"]
    lines.append(
        "  - it fits the flipped samples to their wrong label more by the "
        f"end (at least {100 * MEMORISATION_RISE:.0f} points more): "
        f"{pct(first['flipped_given'])}% at epoch {first['epoch']}, "
        f"{pct(last['flipped_given'])}% at epoch {last['epoch']} ("
        + met_or_missed(
            rise >= MEMORISATION_RISE,
            f"{100 * (MEMORISATION_RISE - rise):.1f} points",
        )
        + "; the regime where the methods can win is the one where it "
        "does)."
    )
    return lines


def _detection_targets(cells, methods):
    lines = []
    auc_lines, relabel_lines, zero_lines = [], [], []
    report_lines = []
    for key in methods:
        c = seed0(cells, key, ("symmetric", 0.3))
        nd = (c or {}).get("noise_detection") or {}
        cls = methods.get(key)
        uses_label = nd.get(
            "score_uses_label", getattr(cls, "score_uses_label", True)
        )
        name = display(key, methods)
        if key == "scn":
            goal, what = 0.75, "SCN's importance weight"
        elif uses_label:
            goal, what = 0.9, f"{name}'s label-aware score"
        else:
            goal, what = None, f"{name}'s label-blind score"
        auc = nd.get("roc_auc")
        if c is None:
            auc_lines.append(f"  - {what}: not run.")
        else:
            auc_lines.append(f"  - {what}: {auc_against(auc, goal)}.")
        if nd.get("relabeled") is not None and not getattr(
            cls, "relabels_train", True
        ):
            report_lines.append(
                f"  - {name} only reports where its prediction differs "
                f"from the label (its loss keeps the given labels): "
                f"{nd['relabeled']} differ at 30%, "
                f"{_precision(nd.get('relabel_precision'))} of them the "
                "true label (no target)."
            )
        elif nd.get("relabeled") is not None:
            p = nd.get("relabel_precision")
            relabel_lines.append(
                f"  - {name}: {nd['relabeled']} relabelled, precision "
                + ("– (none relabelled)" if p is None else f"{p:.3f}")
                + (
                    f" ({met_or_missed(p > 0.5, f'{0.5 - p:.3f}')})"
                    if p is not None
                    else ""
                )
                + "."
            )
        c0 = seed0(cells, key, ("symmetric", 0.0))
        nd0 = (c0 or {}).get("noise_detection") or {}
        if (
            nd0.get("relabeled") is not None
            and nd0.get("num_samples")
            and getattr(cls, "relabels_train", True)
        ):
            frac = nd0["relabeled"] / nd0["num_samples"]
            zero_lines.append(
                f"  - {name}: {nd0['relabeled']} of {nd0['num_samples']} "
                f"({100 * frac:.1f}%; at most 2%: "
                + met_or_missed(
                    frac <= 0.02, f"{100 * (frac - 0.02):.1f} points"
                )
                + ")."
            )
    lines.append("- Noise-detection ROC-AUC at 30% symmetric noise:")
    lines += auc_lines
    lines.append(
        "- Relabel precision (restored / relabelled) at 30% above 0.5 for "
        "every method that relabels:" + ("" if relabel_lines else " not run.")
    )
    lines += relabel_lines + report_lines
    lines.append(
        "- No more than 2% of labels relabelled at 0% noise:"
        + ("" if zero_lines else " not run.")
    )
    lines += zero_lines
    return lines


def _precision(p):
    return "none" if p is None else f"{p:.3f}"
