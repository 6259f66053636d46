"""One profile's section of the page: its tables, plots and targets."""

import collections
import os
import pathlib

from ferzoo_bench import targets
from ferzoo_bench import targets_full
from ferzoo_bench import targets_pretrained
from ferzoo_bench import trunk_speed
from ferzoo_bench.cells import Cell
from ferzoo_bench.cells import epoch_time
from ferzoo_bench.fmt import column_label
from ferzoo_bench.fmt import display
from ferzoo_bench.fmt import num
from ferzoo_bench.fmt import pct
from ferzoo_bench.plots import make_plots
from ferzoo_bench.profiles import CANONICAL
from ferzoo_bench.profiles import PROFILES
from ferzoo_bench.profiles import mapping_text


def grid(cells, spec):
    """`(by, columns, keys_seen)`: seed-0 cells by `(method, column)`."""
    primary = [c for c in cells if Cell.of(c).seed == 0]
    by = {(c["method"], Cell.of(c).column): c for c in primary}
    sym = {c for _, c in by if c[0] == "symmetric"}
    pair = {c for _, c in by if c[0] == "pair"}
    sym |= {("symmetric", r) for r in spec["noise_rates"]}
    pair |= {("pair", r) for r in spec["pair_rates"]}
    return by, sorted(sym) + sorted(pair), primary


def profile_notes(assets, profile, out_dir):
    """The hand-kept notes of a profile (`benchmarks/notes/PROFILE.md`).

    For what the cells cannot record themselves, such as a code change
    that postdates some of them; rendered as written, under a heading
    that links the file (relative to the page in `out_dir`) and says it
    is kept by hand.
    """
    path = pathlib.Path(assets) / "notes" / f"{profile}.md"
    if not path.is_file():
        return []
    text = path.read_text().strip()
    if not text:
        return []
    rel = os.path.relpath(path, out_dir)
    return [f"Notes (written by hand in [{rel}]({rel})):", "", text, ""]


def profile_section(
    profile, cells, methods, presets, assets, out_dir, partial=None
):
    """Markdown lines, plots and the results dict of one profile."""
    partial = partial or {}
    spec = PROFILES[profile]
    lines = [f"## `{profile}` profile", "", spec["description"], ""]
    if not cells:
        lines += _not_run(profile, spec, methods, assets)
        lines += profile_notes(assets, profile, out_dir)
        return lines, {"profile": profile, "cells": []}
    by, columns, primary = grid(cells, spec)
    rates = [r for t, r in columns if t == "symmetric"]
    keys = list(methods) + sorted({c["method"] for c in cells} - set(methods))
    head, labels = _header(profile, spec, cells, rates)
    lines += head
    lines += profile_notes(assets, profile, out_dir)
    lines += accuracy_tables(spec, by, columns, keys, methods, presets, partial)
    lines += detection_table(by, columns, keys, methods)
    lines += time_table(by, columns, keys, methods, labels, cells)
    if spec.get("freeze_until"):
        lines += trunk_speed.section(pathlib.Path(assets) / "trunk-speed.json")
    lines += memorisation_table(by, columns, keys, methods)
    lines += targets.seeds_table(cells, methods)
    plots = make_plots(profile, primary, keys, methods, columns, assets)
    lines += [""]
    for title, file in plots:
        rel = os.path.relpath(file, out_dir)
        lines += [f"![{title}]({rel})", ""]
    sym = {(m, r): c for (m, (t, r)), c in by.items() if t == "symmetric"}
    lines += _targets(profile, spec, cells, methods, (sym, keys, rates))
    lines += _load_note(cells)
    results = {
        "profile": profile,
        "description": spec["description"],
        "command": CANONICAL[profile],
        "cells": cells,
    }
    return lines, results


def _not_run(profile, spec, methods, assets):
    why = (
        "no device was lent to the session that wrote this page"
        if profile == "gpu"
        else "no cell of this profile has finished yet"
    )
    lines = [
        f"**Not run: {why}**, so there are no numbers for this profile "
        "yet. Run it with:",
        "",
        "```",
        CANONICAL[profile],
        "```",
        "",
    ]
    if spec.get("freeze_until"):
        lines += trunk_speed.section(pathlib.Path(assets) / "trunk-speed.json")
    if spec["targets"] in ("pretrained", "full"):
        lines += _targets(profile, spec, [], methods, None)
    return lines


def _targets(profile, spec, cells, methods, scratch):
    """The profile's targets section; `scratch` is `(by, keys, rates)` of
    the symmetric cells for the profiles of the first issue."""
    if spec["targets"] == "pretrained":
        return targets_pretrained.pretrained(profile, cells, methods)
    if spec["targets"] == "full":
        return targets_full.full(profile, cells, methods, spec)
    by, keys, rates = scratch
    return targets.scratch(profile, by, keys, methods, rates)


def _header(profile, spec, cells, rates):
    """The command, machine, versions and data lines; the machine labels."""
    first = max(cells, key=lambda c: c["date"])
    mach = first["machine"]
    dates = sorted(c["date"] for c in cells)
    extra = [r for r in rates if r not in spec["noise_rates"]]
    command = f"- Command: `{CANONICAL[profile]}`"
    if extra:
        command += (
            " (its default noise rates), and `"
            + CANONICAL[profile]
            + "".join(f" --noise {r:g}" for r in extra)
            + "` for the "
            + ", ".join(f"{100 * r:.0f}%" for r in extra)
            + " column"
            + ("s" if len(extra) > 1 else "")
            + "; each cell's own command is in its JSON"
        )
    if spec["pair_rates"] or len(spec["seeds"]) > 1:
        noise = (
            "noise: symmetric, per class, and pair noise, per class, "
            f"mapping {mapping_text(spec['pair_mapping'])}; the tables "
            "give seed 0 (model and noise seed; the same flips for every "
            "method), the extra seeds have a table of their own."
        )
    else:
        noise = (
            "noise: symmetric, per class, seed 0 (the same flips for every "
            "method); seed 0."
        )
    machine_lines, labels = machines_lines(cells)
    lines = [
        command,
        *machine_lines,
        f"- Versions: ferzoo {mach['ferzoo']}, Keras {mach['keras']}, "
        f"backend {mach['backend']} {mach['backend_version']}, "
        f"Python {mach['python']}",
        f"- Cells finished between {dates[0]} and {dates[-1]} (UTC); "
        f"{len(cells)} cell{'s' if len(cells) != 1 else ''}; "
        f"training set {first['num_train']} images; " + noise,
        "",
    ]
    return lines, labels


def _load_note(cells):
    """Whether other jobs shared the machine while the cells ran."""
    loads = [c["load_average"] for c in cells if c.get("load_average")]
    if not loads:
        return []
    cores = max(cells, key=lambda c: c["date"])["machine"]["cpu_count"]
    span = (
        f"1-minute load average {min(loads):.1f} to {max(loads):.1f} "
        f"on {cores} cores at the end of the cells"
    )
    # A cell's own training keeps every core busy (load about `cores`);
    # only load beyond that says other jobs ran beside it.
    if max(loads) > cores + 0.5:
        note = (
            f"The machine was shared with other jobs while the grid ran "
            f"({span}), so the times above are upper bounds."
        )
    else:
        note = (
            f"No other jobs ran beside the cells ({span}, which the "
            "cell's own training accounts for)."
        )
    return [note, ""]


def accuracy_tables(spec, by, columns, keys, methods, presets, partial):
    labels = [column_label(col) for col in columns]
    lines = [
        "### Test accuracy (%), PrivateTest",
        "",
        "Best-on-val / mean of the last 5 epochs. Rows: every method in "
        "`ferzoo.models`.",
        "",
        "| method | preset | weights¹ | " + " | ".join(labels) + " |",
        "|---|---|---|" + "---|" * len(columns),
    ]
    for key in keys:
        row = [f"{display(key, methods)}"]
        preset = presets.get(key)
        cell_any = next(
            (by[(key, col)] for col in columns if (key, col) in by), None
        )
        if preset is None and cell_any is None:
            row += [f"no `*_{spec['preset_suffix']}` preset yet", "–"]
            row += ["–"] * len(columns)
            lines.append("| " + " | ".join(row) + " |")
            continue
        row.append(f"`{cell_any['preset'] if cell_any else preset}`")
        row.append(
            f"{cell_any['parameter_count']:,}"
            if cell_any and cell_any.get("parameter_count")
            else "–"
        )
        for col in columns:
            c = by.get((key, col))
            done = partial.get(Cell(key, col[1], col[0]))
            if c is None and done:
                row.append(f"unfinished ({done} epochs run)")
            elif c is None:
                row.append("not run")
            else:
                t = c["test"]
                row.append(
                    f"{pct(t.get('best_on_val_accuracy'))} / "
                    f"{pct(t.get('last5_mean_accuracy'))}"
                )
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "¹ All weights of the trained model, per-sample tables (one row per "
        "training image) included.",
        "",
        "### Test macro-F1 (%)",
        "",
        "Best-on-val / mean of the last 5 epochs.",
        "",
        "| method | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for key in keys:
        if not any((key, col) in by for col in columns):
            continue
        row = [display(key, methods)]
        for col in columns:
            c = by.get((key, col))
            row.append(
                "not run"
                if c is None
                else f"{pct(c['test'].get('best_on_val_macro_f1'))} / "
                f"{pct(c['test'].get('last5_mean_macro_f1'))}"
            )
        lines.append("| " + " | ".join(row) + " |")
    return lines


def detection_table(by, columns, keys, methods):
    if not [col for col in columns if col[1] > 0]:
        return []
    lines = [
        "",
        "### Noise detection",
        "",
        "ROC-AUC of each method's per-sample clean score (higher = "
        "more likely clean, from its last training epoch) against the "
        "flip mask; relabel precision is the fraction of relabels that "
        "restored the true label. At 0% noise there is nothing to "
        "detect, and every relabel breaks a correct label.",
        "",
        "| method | noise | score | ROC-AUC | relabeled | restored | "
        "broken | relabel precision |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key in keys:
        for col in columns:
            c = by.get((key, col))
            if c is None:
                continue
            nd = c.get("noise_detection") or {}
            if col[1] == 0 and nd.get("relabeled") is None:
                continue
            lines.append(
                f"| {display(key, methods)} | "
                f"{column_label(col, short=True)} | "
                f"{nd.get('score', 'none')} | {num(nd.get('roc_auc'))} | "
                f"{nd.get('relabeled', '–')} | {nd.get('restored', '–')} | "
                f"{nd.get('broken', '–')} | "
                f"{num(nd.get('relabel_precision'))} |"
            )
    return lines


def describe_machine(mach):
    """One machine as the page names it: platform, CPU, cores, accelerators."""
    return (
        f"{mach['platform']}, {mach['processor']}, "
        f"{mach['cpu_count']} CPU cores"
        + (
            f", accelerators {', '.join(mach['accelerators'])}"
            if mach["accelerators"]
            else ", no accelerator"
        )
    )


def machines_lines(cells):
    """The page's machine line(s) and, across machines, a label per cell.

    One machine gives the single `- Machine:` line. Cells from several
    machines name each one with a letter (in the order they first finished
    a cell) and its cell count; the returned dict maps each cell's `id` to
    its letter so the time table can say where every row ran.
    """
    order = sorted(cells, key=lambda c: c["date"])
    names = [describe_machine(c["machine"]) for c in order]
    counts = collections.Counter(names)  # keeps first-seen order
    if len(counts) == 1:
        return [f"- Machine: {names[0]}"], {}
    letters = {name: chr(ord("A") + i) for i, name in enumerate(counts)}
    labels = {id(c): letters[name] for c, name in zip(order, names)}
    lines = [
        f"- Machines ({len(counts)}; the time table says which ran each "
        "seed-0 cell, and its times compare only within one machine):"
    ]
    for name, n in counts.items():
        lines.append(
            f"  - {letters[name]}: {name} ({n} cell{'s' if n != 1 else ''})"
        )
    return lines, labels


def time_table(by, columns, keys, methods, labels=None, all_cells=None):
    """Per-cell epoch times of the seed-0 cells in `by`.

    `all_cells` (every cell of the profile, extra seeds included) adds their
    summed epoch time to the footnote, so the page says what the whole grid
    cost, not only the rows shown.
    """
    labels = labels or {}
    lines = [
        "",
        "### Time",
        "",
        "Seconds per epoch (training, val evaluation, test prediction and "
        "checkpoints; mean over epochs) and training throughput (training "
        "part only, first epoch excluded).",
        "",
    ]
    heads = ["method", "noise", "epochs", "s/epoch", "train img/s"]
    heads += ["machine"] if labels else []
    lines += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    total = 0.0
    for key in keys:
        for col in columns:
            c = by.get((key, col))
            if c is None:
                continue
            secs = c.get("epoch_seconds") or []
            total += sum(secs)
            lines.append(
                f"| {display(key, methods)} | "
                f"{column_label(col, short=True)} | {c['epochs']} | "
                f"{num(sum(secs) / len(secs) if secs else None, 1)} | "
                f"{num(c.get('train_images_per_second'), 0)} |"
                + (f" {labels.get(id(c), '–')} |" if labels else "")
            )
    if any("memorisation" in c for c in by.values()):
        foot = (
            f"Sum of the epoch times of the cells above: {total / 3600:.1f} "
            "hours (the training-set fit of the memorisation table is not "
            "in them; the extra seeds are not counted)."
        )
        if all_cells and len(all_cells) > len(by):
            everything = sum(map(epoch_time, all_cells))
            foot += (
                f" All {len(all_cells)} cells of the profile, extra seeds "
                f"included: {everything / 3600:.1f} hours."
            )
        lines += ["", foot]
    return lines


def memorisation_table(by, columns, keys, methods):
    """Training-set fit: do the models learn the flipped labels?"""
    rows = []
    for key in keys:
        for col in columns:
            c = by.get((key, col))
            records = (c or {}).get("memorisation") or []
            if not records or col[1] == 0:
                continue
            first, last = records[0], records[-1]
            rows.append(
                f"| {display(key, methods)} | "
                f"{column_label(col, short=True)} | "
                f"{pct(first['flipped_given'])} (epoch {first['epoch']}) | "
                f"{pct(last['flipped_given'])} (epoch {last['epoch']}) | "
                f"{pct(last['flipped_true'])} | {pct(last['clean_fit'])} |"
            )
    if not rows:
        return []
    return [
        "",
        "### Memorisation of the flipped labels",
        "",
        "The trained model predicts its own training images (no "
        "augmentation) every few epochs: the percentage of flipped samples "
        "predicted as their wrong given label (memorised; rising when the "
        "model fits the noise), as their true label, and the accuracy on "
        "the samples whose label was not flipped.",
        "",
        "| method | noise | flipped fit to the wrong label, first | "
        "at the end | flipped predicted as the true label | clean fit |",
        "|---|---|---|---|---|---|",
        *rows,
    ]
