"""`docs/benchmarks.md`: the page, from the cells, peers and speed JSON."""

import datetime
import json
import os
import pathlib

import click

from ferzoo_bench.audit_page import audit_section
from ferzoo_bench.cells import load_cells
from ferzoo_bench.cells import unfinished_runs
from ferzoo_bench.fmt import column_label
from ferzoo_bench.fmt import display
from ferzoo_bench.fmt import pct
from ferzoo_bench.peers import peers_section
from ferzoo_bench.plots import regimes_plot
from ferzoo_bench.profiles import PROFILES
from ferzoo_bench.profiles import method_classes
from ferzoo_bench.profiles import preset_folders
from ferzoo_bench.sections import grid
from ferzoo_bench.sections import profile_section
from ferzoo_bench.speed import speed_section

# The two CPU regimes compared side by side, and their columns.
REGIMES = ("cpu", "cpu-pretrained")
REGIME_COLUMNS = (("symmetric", 0.0), ("symmetric", 0.3), ("pair", 0.3))


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def regimes_section(cells_by_profile, methods, assets, out_dir):
    """Both CPU regimes side by side: a table and a two-panel plot."""
    lines = [
        "## Both regimes side by side",
        "",
        "Best-on-val PrivateTest accuracy (%), seed 0, of the two CPU "
        "profiles on the same 5,236-image training subset: a small CNN "
        "from scratch (`cpu`) and dlib's face-recognition ResNet "
        "fine-tuned (`cpu-pretrained`). Details, macro-F1, noise "
        "detection and targets are in each profile's section below.",
        "",
    ]
    heads, panels, bys, shown_columns = [], [], {}, {}
    for profile in REGIMES:
        spec = PROFILES[profile]
        cells = cells_by_profile.get(profile, [])
        by, columns, _ = grid(cells, spec)
        bys[profile] = by
        shown = [c for c in REGIME_COLUMNS if c in columns]
        heads += [f"{spec['regime']}, {column_label(c)}" for c in shown]
        keys = list(methods)
        title = f"`{profile}`: {spec['regime']}".replace("`", "")
        panels.append((title, by, keys, columns))
        shown_columns[profile] = shown
    lines += [
        "| method | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(heads),
    ]
    for key in methods:
        row = [display(key, methods)]
        for profile in REGIMES:
            for col in shown_columns[profile]:
                c = bys[profile].get((key, col))
                row.append(
                    "not run"
                    if c is None
                    else pct(c["test"].get("best_on_val_accuracy"))
                )
        lines.append("| " + " | ".join(row) + " |")
    path = regimes_plot(panels, methods, assets)
    rel = os.path.relpath(path, out_dir)
    lines += ["", f"![test accuracy vs noise, both regimes]({rel})", ""]
    return lines


def write_report(out_dir, cache_dir, profiles):
    import keras

    out_dir = pathlib.Path(out_dir)
    assets = out_dir / "benchmarks"
    assets.mkdir(parents=True, exist_ok=True)
    methods = method_classes()
    speed_path = assets / "speed.json"
    speed = json.loads(speed_path.read_text()) if speed_path.is_file() else None
    lines = [
        "# Benchmarks",
        "",
        "Written by `scripts/benchmark.py` from the cells under "
        "`docs/benchmarks/cells/`; nothing here is typed by hand. Data: "
        "FER2013 (train / PublicTest as val / PrivateTest as test), "
        "symmetric or pair label noise on the train split only. Results "
        "JSON, plots and the peer rows' JSON are in `docs/benchmarks/`.",
        "",
        f"Page written {_now():%Y-%m-%d %H:%M} UTC with Keras "
        f"{keras.__version__}.",
        "",
    ]
    cells = {p: load_cells(assets / "cells", p) for p in profiles}
    if all(p in profiles for p in REGIMES):
        lines += regimes_section(cells, methods, assets, out_dir)
    for profile in profiles:
        presets = {}
        try:
            found = preset_folders(
                PROFILES[profile]["preset_suffix"], cache_dir
            )
            for key, cls in methods.items():
                if cls.__name__ in found:
                    presets[key] = found[cls.__name__][0]
        except Exception as e:
            click.echo(f"[benchmark] presets not listed: {e}")
        section, results = profile_section(
            profile,
            cells[profile],
            methods,
            presets,
            assets,
            out_dir,
            unfinished_runs(cache_dir, profile),
        )
        lines += section
        (assets / f"results-{profile}.json").write_text(
            json.dumps(results, indent=1) + "\n"
        )
    lines += peers_section(assets / "peers")
    lines += audit_section(assets / "audit")
    lines += speed_section(speed)
    page = out_dir / "benchmarks.md"
    page.write_text("\n".join(lines).rstrip() + "\n")
    click.echo(f"[benchmark] wrote {page}")
    return page
