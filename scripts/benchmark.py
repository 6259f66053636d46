"""Benchmark every ferzoo method on FER2013 under label noise, and speed.

The grid trains each method of `ferzoo.models` (its
`<method>_<backbone>_<dataset>` preset, adjusted by the profile) at each
symmetric noise rate of the train split (seeded per class: every method
sees the same flips), selects on the val split and reports on the test
split: best-on-val and mean-of-last-5 test accuracy and macro-F1, and the
noise-detection report (ROC-AUC of the per-sample clean score against the
flip mask; relabel precision). Each finished cell is a small JSON under
`docs/benchmarks/cells/<profile>/`, so a rerun skips it; an interrupted
cell resumes from its run folder (`ferzoo.training.train`'s resume) in the
cache folder. `docs/benchmarks.md`, the results JSON and the PNG plots are
written from those cells only.

Profiles: `cpu` (a tiny CNN on a class-stratified 800-per-class subset of
the train split, 2-core CPU, about an hour), `gpu` (ResNet-18 with a small
stem at 48 px, the full train split, the presets' 40 epochs, batch 128;
one `--cell` per device command, with `--time-budget` to stop and resume
across commands), `tiny` (the test's seconds-long grid).

`--speed` measures training throughput (img/s after warm-up) of the same
Baseline ResNet-18 at 112 px on Keras-TensorFlow (with and without XLA,
and in mixed precision), Keras-JAX and the plain PyTorch loop of
`scripts/torch_reference.py` (if torch is installed), each in its own
subprocess, and the latency of the exported SavedModel.

On a lent accelerator (the `device` tool: 10 minutes a command), run one
cell per command and repeat it until the cell's JSON exists, keeping the
run folders in a cache that survives between calls, then bring the cells
home and rewrite the page:
    python scripts/benchmark.py --profile gpu --cell baseline:0 \
        --time-budget 540 --no-report --cache-dir /tmp/ferzoo-bench \
        && cp -r docs/benchmarks/cells/gpu "$OUT/"
    # here: copy the returned gpu/*.json into docs/benchmarks/cells/gpu/
    python scripts/benchmark.py --profile gpu --report-only

FER2013 is read from `../shared/data/fer2013.tar.gz` (or any `--data`);
a tarball is unpacked once under `--data-cache`, outside the repository.

Invocations:
    python scripts/benchmark.py                      # the cpu grid + docs
    python scripts/benchmark.py --noise 0.1 --noise 0.2   # add noise rates
    python scripts/benchmark.py --method scn --method dacfer
    python scripts/benchmark.py --report-only        # rewrite the docs
    python scripts/benchmark.py --profile gpu --cell baseline:0.3 \
        --time-budget 540                            # one device command
    python scripts/benchmark.py --speed              # speed vs PyTorch
    python scripts/benchmark.py --profile tiny --data synthetic:70 \
        --out-dir /tmp/bench --cache-dir /tmp/bench-cache   # the test's
"""

import datetime
import hashlib
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tarfile
import time

import click

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

DEFAULT_DATA = "fer2013:" + os.path.relpath(
    ROOT.parent / "shared" / "data" / "fer2013.tar.gz"
)
DEFAULT_CACHE = pathlib.Path("~/.cache/ferzoo").expanduser()
CANONICAL = {
    "cpu": "python scripts/benchmark.py --profile cpu",
    "gpu": "python scripts/benchmark.py --profile gpu --cell METHOD:NOISE "
    "--time-budget 540  # once per cell, repeated until done",
    "tiny": "python scripts/benchmark.py --profile tiny --data synthetic:70",
}

PROFILES = {
    "cpu": {
        "description": (
            "2-core CPU: the `<method>_small_cnn_fer2013` presets with the "
            "backbone shrunk to 16-32-64 filters (two convs per stage; the "
            "second stream, if any, unchanged), on a fixed "
            "class-stratified subset of the train split (at most 800 "
            "images per class), 48 px, 15 epochs (warm-up epochs scaled "
            "by the same factor), batch 64; val and test are the full "
            "PublicTest and PrivateTest splits."
        ),
        "preset_suffix": "small_cnn_fer2013",
        "backbone": {"stackwise_num_filters": [16, 32, 64]},
        "backbone_convs": None,
        "limit_per_class": 800,
        "epochs": 15,
        "batch_size": 64,
        "noise_rates": [0.0, 0.3],
    },
    "gpu": {
        "description": (
            "one accelerator: the `<method>_resnet18_fer2013` presets "
            "(ResNet-18 with a small stem at 48 px), the full train split, "
            "the presets' 40 epochs, batch 128."
        ),
        "preset_suffix": "resnet18_fer2013",
        "backbone": None,
        "backbone_convs": None,
        "limit_per_class": None,
        "epochs": None,
        "batch_size": 128,
        "noise_rates": [0.0, 0.1, 0.2, 0.3],
    },
    "tiny": {
        "description": "the test's grid: synthetic faces, 2 epochs.",
        "preset_suffix": "small_cnn_synthetic",
        "backbone": {"stackwise_num_filters": [8, 16]},
        "backbone_convs": 1,
        "limit_per_class": None,
        "epochs": 2,
        "batch_size": 35,
        "noise_rates": [0.0, 0.3],
    },
}


# --- Data ---------------------------------------------------------------
def prepare_data(data, data_cache):
    """Unpack a `KIND:ARCHIVE.tar.gz` spec once; return a folder spec."""
    kind, _, path = data.partition(":")
    if not path.endswith((".tar.gz", ".tgz", ".tar")):
        return data
    archive = pathlib.Path(path).expanduser().resolve()
    if not archive.is_file():
        raise click.ClickException(f"{archive}: no such archive")
    stamp = f"{archive.stat().st_size}-{int(archive.stat().st_mtime)}"
    name = archive.name.split(".")[0]
    target = pathlib.Path(data_cache).expanduser() / name
    marker = target / ".unpacked"
    if not marker.is_file() or marker.read_text() != stamp:
        click.echo(f"[benchmark] unpacking {archive} to {target}")
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        marker.write_text(stamp)
    return f"{kind}:{target}"


# --- Methods and presets ------------------------------------------------
def method_classes():
    """`{key: class}` of every method in `ferzoo.models`, Baseline first."""
    import ferzoo.models
    from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier

    found = {}
    for name in dir(ferzoo.models):
        cls = getattr(ferzoo.models, name)
        if (
            isinstance(cls, type)
            and issubclass(cls, NoisyLabelClassifier)
            and cls is not NoisyLabelClassifier
        ):
            found[name.lower()] = cls
    order = sorted(found, key=lambda k: (k != "baseline", k))
    return {k: found[k] for k in order}


def preset_folders(suffix, cache_dir):
    """`{class_name: (preset_name, folder)}` of the presets with `suffix`.

    Built-in presets come from `presets/`; presets defined in
    `scripts/preset_defs/` but not yet written there are written to the
    cache folder (so a method's preset works as soon as it is defined).
    """
    import ferzoo
    from ferzoo.presets import resolve_preset

    names = {n: None for n in ferzoo.list_presets()}
    try:
        import make_presets

        definitions = make_presets.all_definitions()
    except Exception as e:  # a half-written definition of another method
        click.echo(f"[benchmark] preset definitions not loaded: {e}")
        definitions = {}
    for name in definitions:
        names.setdefault(name, definitions[name])
    out = {}
    for name, definition in sorted(names.items()):
        if not name.endswith("_" + suffix):
            continue
        if definition is None or name in ferzoo.list_presets():
            folder = resolve_preset(name)
        else:
            folder = pathlib.Path(cache_dir) / "presets" / "defined" / name
            try:
                make_presets.write_preset(name, *definition, folder)
            except Exception as e:
                click.echo(f"[benchmark] cannot build preset {name}: {e}")
                continue
        config = json.loads((folder / "config.json").read_text())
        out.setdefault(config["class_name"], (name, folder))
    return out


def profile_preset(name, folder, profile, target):
    """Copy a preset folder with the profile's backbone and recipe."""
    config = json.loads((pathlib.Path(folder) / "config.json").read_text())
    meta = json.loads((pathlib.Path(folder) / "metadata.json").read_text())
    inner = config["config"]
    if profile["backbone"]:
        backbone = inner["backbone"]["config"]
        backbone.update(profile["backbone"])
        if profile["backbone_convs"] and "num_convs_per_stage" in backbone:
            backbone["num_convs_per_stage"] = profile["backbone_convs"]
    recipe = dict(meta.get("recipe") or {})
    if profile["epochs"]:
        old = int(recipe.get("epochs") or profile["epochs"])
        recipe["epochs"] = profile["epochs"]
        for key, value in inner.items():
            if key.endswith("epochs") and isinstance(value, int) and value:
                inner[key] = max(1, round(value * profile["epochs"] / old))
    if profile["batch_size"]:
        recipe["batch_size"] = profile["batch_size"]
    meta["recipe"] = recipe
    target = pathlib.Path(target)
    target.mkdir(parents=True, exist_ok=True)
    (target / "config.json").write_text(json.dumps(config, indent=2))
    (target / "metadata.json").write_text(json.dumps(meta, indent=2))
    return target, config, recipe


# --- Cells --------------------------------------------------------------
def cell_name(method, noise):
    return f"{method}-noise{noise:.2f}"


def machine():
    import keras

    import ferzoo

    return {
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "ferzoo": ferzoo.__version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "backend_version": _backend_version(keras.backend.backend()),
        "accelerators": _accelerators(),
    }


def _cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _backend_version(backend):
    try:
        module = __import__(backend)
        return module.__version__
    except Exception:
        return None


def _accelerators():
    import keras

    try:
        if keras.backend.backend() == "jax":
            import jax

            return [str(d) for d in jax.devices() if d.platform != "cpu"]
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception:
        return []


def _epoch_timer(path):
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Seconds per epoch (training part and total), kept across resumes."""

        def __init__(self):
            super().__init__()
            self.times = json.loads(path.read_text()) if path.is_file() else []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()
            self.train_end = None

        def on_test_begin(self, logs=None):
            if self.train_end is None:
                self.train_end = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            end = time.perf_counter()
            self.times.append(
                {
                    "epoch": epoch,
                    "train_seconds": (self.train_end or end) - self.start,
                    "total_seconds": end - self.start,
                }
            )
            path.write_text(json.dumps(self.times))

    return EpochTimer()


def _time_budget(seconds):
    import keras

    class TimeBudget(keras.callbacks.Callback):
        """Stop after the epoch that leaves no time for another one."""

        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()
            self.longest = 0.0
            self.epoch_start = self.start

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            self.longest = max(self.longest, now - self.epoch_start)
            if now - self.start + 1.3 * self.longest > seconds:
                self.model.stop_training = True

    return TimeBudget()


def run_cell(
    method, cls, preset, noise, profile_name, data, cache_dir, cells_dir, budget
):
    """Train one cell (resuming) and write its JSON; None if unfinished."""
    import keras

    from ferzoo.training import train

    profile = PROFILES[profile_name]
    name = cell_name(method, noise)
    preset_name, folder = preset
    kind = data.partition(":")[0]
    presets_dir = pathlib.Path(cache_dir) / "presets" / profile_name
    folder, config, recipe = profile_preset(
        preset_name, folder, profile, presets_dir / preset_name
    )
    signature = {
        "preset": preset_name,
        "config": config,
        "recipe": recipe,
        "data": kind,
        "limit_per_class": profile["limit_per_class"],
        "noise_rate": noise,
        "noise_seed": 0,
        "seed": 0,
        "backend": keras.backend.backend(),
    }
    # Layer names depend on build order, so they are not part of it.
    stable = dict(signature, config=_strip_names(config))
    digest = hashlib.sha1(
        json.dumps(stable, sort_keys=True).encode()
    ).hexdigest()[:10]
    detail = {k: v for k, v in signature.items() if k != "config"}
    cell_path = pathlib.Path(cells_dir) / f"{name}.json"
    if cell_path.is_file():
        cached = json.loads(cell_path.read_text())
        legacy = "signature_version" not in cached
        if cached.get("signature") == digest or (
            legacy and cached.get("signature_detail") == detail
        ):
            click.echo(f"[benchmark] {name}: cached")
            return cached
    run_dir = (
        pathlib.Path(cache_dir) / "runs" / profile_name / f"{name}-{digest}"
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    timer = _epoch_timer(run_dir / "epoch_times.json")
    callbacks = [timer]
    if budget:
        callbacks.append(_time_budget(budget))
    click.echo(f"[benchmark] {name}: training {preset_name} in {run_dir}")
    start = time.perf_counter()
    keras.backend.clear_session()
    results = train(
        str(folder),
        data=data,
        output_dir=str(run_dir),
        noise_rate=noise,
        noise_seed=0,
        seed=0,
        limit_per_class=profile["limit_per_class"],
        verbose=2,
        callbacks=callbacks,
    )
    wall = time.perf_counter() - start
    if results["epochs_run"] < int(recipe["epochs"]):
        click.echo(
            f"[benchmark] {name}: {results['epochs_run']}/{recipe['epochs']} "
            "epochs; rerun the same command to continue."
        )
        return None
    times = timer.times[-int(recipe["epochs"]) :]
    num_train = (
        results["noise"].get("num_samples") if results["noise"] else None
    )
    if num_train is None:
        num_train = (results.get("noise_detection") or {}).get("num_samples")
    train_seconds = [t["train_seconds"] for t in times[1:]] or [
        t["train_seconds"] for t in times
    ]
    mean_train = sum(train_seconds) / max(len(train_seconds), 1)
    test = dict(results["test"])
    final = test.pop("final", {})
    meta = json.loads((run_dir / "metadata.json").read_text())
    cell = {
        "method": method,
        "class": cls.__name__,
        "preset": preset_name,
        "profile": profile_name,
        "noise_rate": noise,
        "signature": digest,
        "signature_version": 2,
        "signature_detail": detail,
        "parameter_count": meta.get("parameter_count"),
        "num_train": num_train,
        "epochs": results["epochs_run"],
        "test": test,
        "final_test_accuracy": final.get("accuracy"),
        "test_accuracy_per_epoch": [
            r.get("test_accuracy") for r in results["history"]
        ],
        "val_accuracy_per_epoch": [
            r.get("val_accuracy") for r in results["history"]
        ],
        "noise_detection": results.get("noise_detection"),
        "epoch_seconds": [round(t["total_seconds"], 2) for t in times],
        "train_images_per_second": (
            num_train / mean_train if num_train and mean_train else None
        ),
        "wall_seconds_last_command": wall,
        "load_average": os.getloadavg()[0],
        "machine": machine(),
        "command": " ".join(["python", "scripts/benchmark.py", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }
    cell_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = cell_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cell, indent=1) + "\n")
    os.replace(tmp, cell_path)
    return cell


def _strip_names(obj):
    if isinstance(obj, dict):
        return {k: _strip_names(v) for k, v in obj.items() if k != "name"}
    if isinstance(obj, list):
        return [_strip_names(v) for v in obj]
    return obj


def parse_cell(text):
    method, sep, noise = text.partition(":")
    if not sep:
        raise click.BadParameter(f"{text!r}: expected METHOD:NOISE")
    return method.lower(), float(noise)


# --- Report -------------------------------------------------------------
def load_cells(cells_root, profile):
    folder = pathlib.Path(cells_root) / profile
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def _pct(value):
    return "–" if value is None else f"{100 * value:.1f}"


def _num(value, digits=3):
    return "–" if value is None else f"{value:.{digits}f}"


def unfinished_runs(cache_dir, profile):
    """`{(method, noise): epochs done}` of run folders without a cell."""
    out = {}
    root = pathlib.Path(cache_dir) / "runs" / profile
    for state in root.glob("*-noise*/state.json"):
        method, _, rest = state.parent.name.partition("-noise")
        try:
            noise = float(rest.split("-")[0])
            epochs = int(json.loads(state.read_text())["epoch"]) + 1
        except (ValueError, KeyError, json.JSONDecodeError):
            continue
        key = (method, noise)
        out[key] = max(out.get(key, 0), epochs)
    return out


def profile_section(
    profile, cells, methods, presets, assets, out_dir, partial=None
):
    """Markdown lines, plots and the results dict of one profile."""
    partial = partial or {}
    spec = PROFILES[profile]
    lines = [f"## `{profile}` profile", "", spec["description"], ""]
    if not cells:
        why = (
            "no device was lent to the session that wrote this page"
            if profile == "gpu"
            else "no cell of this profile has finished yet"
        )
        lines += [
            f"**Not run: {why}**, so there are no numbers for this profile "
            "yet. Run it with:",
            "",
            "```",
            CANONICAL[profile],
            "```",
            "",
        ]
        return lines, {"profile": profile, "cells": []}
    by = {(c["method"], c["noise_rate"]): c for c in cells}
    rates = sorted({c["noise_rate"] for c in cells} | set(spec["noise_rates"]))
    keys = list(methods) + sorted({c["method"] for c in cells} - set(methods))
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
    lines += [
        command,
        f"- Machine: {mach['platform']}, {mach['processor']}, "
        f"{mach['cpu_count']} CPU cores"
        + (
            f", accelerators {', '.join(mach['accelerators'])}"
            if mach["accelerators"]
            else ", no accelerator"
        ),
        f"- Versions: ferzoo {mach['ferzoo']}, Keras {mach['keras']}, "
        f"backend {mach['backend']} {mach['backend_version']}, "
        f"Python {mach['python']}",
        f"- Cells finished between {dates[0]} and {dates[-1]} (UTC); "
        f"{len(cells)} cells; training set {first['num_train']} images; "
        "noise: symmetric, per class, seed 0 (the same flips for every "
        "method); seed 0.",
        "",
        "### Test accuracy (%), PrivateTest",
        "",
        "Best-on-val / mean of the last 5 epochs. Rows: every method in "
        "`ferzoo.models`.",
        "",
        "| method | preset | weights¹ | "
        + " | ".join(f"{r:.0%} noise" for r in rates)
        + " |",
        "|---|---|---|" + "---|" * len(rates),
    ]
    for key in keys:
        row = [f"{_display(key, methods)}"]
        preset = presets.get(key)
        cell_any = next((by[(key, r)] for r in rates if (key, r) in by), None)
        if preset is None and cell_any is None:
            row += [f"no `*_{spec['preset_suffix']}` preset yet", "–"]
            row += ["–"] * len(rates)
            lines.append("| " + " | ".join(row) + " |")
            continue
        row.append(f"`{cell_any['preset'] if cell_any else preset}`")
        row.append(
            f"{cell_any['parameter_count']:,}"
            if cell_any and cell_any.get("parameter_count")
            else "–"
        )
        for r in rates:
            c = by.get((key, r))
            if c is None and (key, r) in partial:
                row.append(f"unfinished ({partial[(key, r)]} epochs run)")
            elif c is None:
                row.append("not run")
            else:
                t = c["test"]
                row.append(
                    f"{_pct(t.get('best_on_val_accuracy'))} / "
                    f"{_pct(t.get('last5_mean_accuracy'))}"
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
        "| method | " + " | ".join(f"{r:.0%} noise" for r in rates) + " |",
        "|---|" + "---|" * len(rates),
    ]
    for key in keys:
        if not any((key, r) in by for r in rates):
            continue
        row = [_display(key, methods)]
        for r in rates:
            c = by.get((key, r))
            row.append(
                "not run"
                if c is None
                else f"{_pct(c['test'].get('best_on_val_macro_f1'))} / "
                f"{_pct(c['test'].get('last5_mean_macro_f1'))}"
            )
        lines.append("| " + " | ".join(row) + " |")
    noisy = [r for r in rates if r > 0]
    if noisy:
        lines += [
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
            for r in rates:
                c = by.get((key, r))
                if c is None:
                    continue
                nd = c.get("noise_detection") or {}
                if r == 0 and nd.get("relabeled") is None:
                    continue
                lines.append(
                    f"| {_display(key, methods)} | {r:.0%} | "
                    f"{nd.get('score', 'none')} | {_num(nd.get('roc_auc'))} | "
                    f"{nd.get('relabeled', '–')} | {nd.get('restored', '–')} | "
                    f"{nd.get('broken', '–')} | "
                    f"{_num(nd.get('relabel_precision'))} |"
                )
    lines += [
        "",
        "### Time",
        "",
        "Seconds per epoch (training, val evaluation, test prediction and "
        "checkpoints; mean over epochs) and training throughput (training "
        "part only, first epoch excluded).",
        "",
        "| method | noise | epochs | s/epoch | train img/s |",
        "|---|---|---|---|---|",
    ]
    for key in keys:
        for r in rates:
            c = by.get((key, r))
            if c is None:
                continue
            secs = c.get("epoch_seconds") or []
            lines.append(
                f"| {_display(key, methods)} | {r:.0%} | {c['epochs']} | "
                f"{_num(sum(secs) / len(secs) if secs else None, 1)} | "
                f"{_num(c.get('train_images_per_second'), 0)} |"
            )
    plots = make_plots(profile, cells, keys, methods, rates, assets)
    lines += [""]
    for title, file in plots:
        rel = os.path.relpath(file, out_dir)
        lines += [f"![{title}]({rel})", ""]
    lines += targets_section(profile, by, keys, methods, rates)
    loads = [c["load_average"] for c in cells if c.get("load_average")]
    if loads:
        lines += [
            "The machine was shared with other jobs while the grid ran "
            f"(1-minute load average {min(loads):.1f} to {max(loads):.1f} "
            f"on {mach['cpu_count']} cores at the end of the cells), so the "
            "times above are upper bounds.",
            "",
        ]
    results = {
        "profile": profile,
        "description": spec["description"],
        "command": CANONICAL[profile],
        "cells": cells,
    }
    return lines, results


def _display(key, methods):
    cls = methods.get(key)
    return cls.__name__ if cls is not None else key


def make_plots(profile, cells, keys, methods, rates, assets):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(c["method"], c["noise_rate"]): c for c in cells}
    out = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in keys:
        points = [(r, by[(key, r)]) for r in rates if (key, r) in by]
        if not points:
            continue
        xs = [100 * r for r, _ in points]
        best = [100 * c["test"]["best_on_val_accuracy"] for _, c in points]
        last = [100 * c["test"]["last5_mean_accuracy"] for _, c in points]
        (line,) = ax.plot(xs, best, "o-", label=_display(key, methods))
        ax.plot(xs, last, "x--", color=line.get_color(), alpha=0.6)
    ax.set_xlabel("symmetric label noise (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(
        f"FER2013 PrivateTest, {profile} profile\n"
        "(solid: best-on-val, dashed: mean of last 5 epochs)"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = pathlib.Path(assets) / f"{profile}-accuracy-vs-noise.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    out.append(("test accuracy vs noise rate", path))

    rate = 0.3 if 0.3 in rates else max(rates)
    curves = [
        (key, by[(key, rate)]["noise_detection"])
        for key in keys
        if (key, rate) in by
        and (by[(key, rate)].get("noise_detection") or {}).get("roc_curve")
    ]
    if rate > 0 and curves:
        fig, ax = plt.subplots(figsize=(5, 5))
        for key, nd in curves:
            ax.plot(
                nd["roc_curve"]["fpr"],
                nd["roc_curve"]["tpr"],
                label=f"{_display(key, methods)} (AUC {nd['roc_auc']:.3f})",
            )
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set_xlabel("false positive rate (flipped scored as clean)")
        ax.set_ylabel("true positive rate (clean scored as clean)")
        ax.set_title(f"Noise detection at {rate:.0%} noise ({profile})")
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        path = (
            pathlib.Path(assets) / f"{profile}-roc-noise{int(rate * 100)}.png"
        )
        fig.savefig(path, dpi=100)
        plt.close(fig)
        out.append((f"noise-detection ROC curves at {rate:.0%} noise", path))
    return out


def targets_section(profile, by, keys, methods, rates):
    lines = ["### Against the targets", ""]
    gpu = profile == "gpu"
    lines.append(
        "The issue's targets are set for the `gpu` profile; this profile's "
        "figures are compared with them for reference only."
        if not gpu
        else "The issue's targets, computed from the cells above."
    )
    lines.append("")
    base = by.get(("baseline", 0.0))
    if base:
        acc = base["test"]["best_on_val_accuracy"]
        lines.append(
            f"- Clean Baseline test accuracy: {_pct(acc)}% (target 70%: "
            + (
                "met)"
                if acc >= 0.70
                else f"missed by {100 * (0.70 - acc):.1f} points)"
            )
        )
        if acc < 0.70:
            lines.append(
                f"  What limits it: a {base['parameter_count']:,}-parameter "
                f"model trained on {base['num_train']:,} images for "
                f"{base['epochs']} epochs"
                + (
                    f" ({base['num_train'] / 28709:.0%} of the train split)"
                    if base["num_train"] < 28709
                    and base["signature_detail"]["data"] == "fer2013"
                    else ""
                )
                + "; the published 72-73% come from VGG/ResNet-size models "
                "trained on the whole split for 100+ epochs."
            )
    noisy = 0.3 if 0.3 in rates else None
    base30 = by.get(("baseline", noisy)) if noisy else None
    if base30:
        b = base30["test"]["best_on_val_accuracy"]
        for key in keys:
            c = by.get((key, noisy))
            if key == "baseline" or c is None:
                continue
            a = c["test"]["best_on_val_accuracy"]
            gap = 100 * (a - b)
            verdict = "met" if gap >= 3 else f"missed by {3 - gap:.1f} points"
            lines.append(
                f"- {_display(key, methods)} at 30% noise: {_pct(a)}% vs "
                f"Baseline {_pct(b)}%, {gap:+.1f} points (target +3: "
                f"{verdict})"
            )
        if base:
            clean = base["test"]["best_on_val_accuracy"]
            drop = 100 * (clean - b)
            last = base30["test"]["last5_mean_accuracy"]
            tail = [
                a
                for a in base30.get("test_accuracy_per_epoch", [])[-5:]
                if a is not None
            ]
            spread = (
                f" Each cell is one seed, and the noisy Baseline's test "
                f"accuracy spans {100 * (max(tail) - min(tail)):.1f} points "
                f"over its last {len(tail)} epochs alone, so differences of "
                "a point or two between methods are not established."
                if len(tail) > 1
                else " Each cell is one seed."
            )
            lines.append(
                f"  The Baseline itself moves {-drop:+.1f} points at 30% noise "
                f"(clean {_pct(clean)}%, noisy {_pct(b)}%; last-5 mean "
                f"{_pct(last)}%). Noisy-label methods gain by keeping a "
                "model from memorising wrong labels, which a large model "
                "does late in a long run; a small model trained for few "
                "epochs memorises little, so the margin they can win back "
                "is small." + spread
            )
    missed_auc, blind = False, []
    if noisy:
        for key in keys:
            c = by.get((key, noisy))
            auc = ((c or {}).get("noise_detection") or {}).get("roc_auc")
            if auc is None:
                continue
            verdict = "met" if auc > 0.9 else f"missed by {0.9 - auc:.3f}"
            lines.append(
                f"- {_display(key, methods)} noise-detection ROC-AUC at 30%: "
                f"{auc:.3f} (target > 0.9: {verdict})"
            )
            if auc > 0.9:
                continue
            if getattr(methods.get(key), "score_uses_label", True):
                missed_auc = True
            else:
                blind.append(_display(key, methods))
        if missed_auc:
            lines.append(
                "  What limits the ROC-AUC of the scores that use the given "
                "label: each is the method's own per-sample statistic from "
                "its last training epoch; a weak model (low clean accuracy) "
                "fits clean samples little better than flipped ones, so the "
                "two groups overlap; the scores separate as the model's "
                "clean accuracy rises."
            )
        if blind:
            lines.append(
                f"  {', '.join(blind)}: the score is a function of the image "
                "alone, not of its given label (a learned weight, or the "
                "flip consistency of the attention maps of all classes), "
                "and a flipped image is drawn from the same distribution as "
                "the clean images of its true class; such a score can flag "
                "a flipped label only by memorising that image, which a "
                "small model trained from scratch does not do, so its "
                "ROC-AUC stays near chance (0.5)."
            )
    lines.append("")
    return lines


def speed_section(speed):
    lines = ["## Speed against PyTorch", ""]
    if not speed:
        return lines + [
            "Not measured yet: run `python scripts/benchmark.py --speed`.",
            "",
        ]
    mach = speed["machine"]
    lines += [
        f"- Command: `{speed['command']}`",
        f"- Machine: {mach['platform']}, {mach['processor']}, "
        f"{mach['cpu_count']} CPU cores; date {speed['date']} (UTC); "
        + _load_note(speed),
        f"- Model: {speed['model']}; input {speed['image_size']} px, batch "
        f"{speed['batch_size']}, {speed['warmup_steps']} warm-up steps, "
        f"then {speed['steps']} timed steps (Adam, cross-entropy, random "
        "pixels and labels)"
        + (
            f"; every configuration ran {speed['rounds']} times, "
            "round-robin, and the table gives its best round (all rounds "
            "in the last column)."
            if speed.get("rounds", 1) > 1
            else "."
        ),
        "",
        "| configuration | train img/s | ratio to PyTorch¹ | note | rounds |",
        "|---|---|---|---|---|",
    ]
    ref = torch_reference(speed["rows"])
    for row in speed["rows"]:
        ips = row.get("images_per_second")
        ratio = f"{ips / ref:.2f}" if ips and ref else "–"
        lines.append(
            f"| {row['name']} | {_num(ips, 1)} | {ratio} | "
            f"{row.get('note', '')} | "
            + ", ".join(_num(v, 1) for v in row.get("rounds", []))
            + " |"
        )
    lines += [
        "",
        "¹ Ratio to the faster of the two PyTorch fp32 loops (NCHW or "
        "channels-last), so the reference is PyTorch at its best here.",
    ]
    lat = speed.get("saved_model_latency")
    if lat:
        lines += [
            "",
            "Exported SavedModel (`ferzoo.export.export_saved_model`, loaded "
            "with `tf.saved_model.load`, `serve`), median of "
            f"{lat['repeats']} calls after warm-up:",
            "",
            "| batch | latency (ms) | images/s |",
            "|---|---|---|",
        ]
        for b, ms in lat["milliseconds"].items():
            lines.append(f"| {b} | {ms:.1f} | {1000 * int(b) / ms:.0f} |")
    lines += [""]
    if ref:
        keras_best = fastest(speed["rows"], "keras")
        if keras_best:
            ratio = keras_best / ref
            lines.append(
                f"Target (Keras at least as fast as PyTorch): the fastest "
                f"Keras configuration runs at {ratio:.2f}x the faster "
                "PyTorch fp32 loop ("
                + (
                    "met)."
                    if ratio >= 1
                    else f"missed by {100 * (1 - ratio):.0f}%)."
                )
            )
            lines.append("")
    by_name = {r["name"]: r.get("images_per_second") for r in speed["rows"]}
    plain = by_name.get("keras-tensorflow fp32")
    xla = [v for k, v in by_name.items() if v and ("XLA" in k and "fp32" in k)]
    if plain and xla and max(xla) < plain:
        lines += [
            "The XLA rows (TensorFlow with `jit_compile`, JAX) are slower "
            "here than TensorFlow without XLA: XLA compiles the "
            "convolutions with its own CPU code generator, where "
            "TensorFlow without XLA calls oneDNN kernels, as PyTorch does.",
            "",
        ]
    return lines


def _load_note(speed):
    """How busy the machine was when the speed rows started.

    Only the load before the first row says whether other jobs ran: the
    rows run back to back, so each row's load average mostly counts the
    row before it.
    """
    mach = speed["machine"]
    if "load_average" not in mach:
        return (
            "load not recorded (the cores were shared with other jobs, "
            "which slows every row)"
        )
    load = mach["load_average"]
    busy = load > 0.5 * (mach.get("cpu_count") or 1)
    return (
        f"1-minute load average {load:.1f} before the first row; the "
        "configurations ran one after another"
        + (
            ", and other jobs shared the cores, which slows every row"
            if busy
            else ", with no other job running"
        )
    )


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


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
        "symmetric label noise on the train split only. Results JSON and "
        "plots are in `docs/benchmarks/`.",
        "",
        f"Page written {_now():%Y-%m-%d %H:%M} UTC with Keras "
        f"{keras.__version__}.",
        "",
    ]
    for profile in profiles:
        cells = load_cells(assets / "cells", profile)
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
            cells,
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
    lines += speed_section(speed)
    page = out_dir / "benchmarks.md"
    page.write_text("\n".join(lines).rstrip() + "\n")
    click.echo(f"[benchmark] wrote {page}")
    return page


# --- Speed --------------------------------------------------------------
SPEED_CONFIGS = [
    # name, backend, jit_compile, dtype policy
    ("keras-tensorflow fp32", "tensorflow", False, "float32"),
    ("keras-tensorflow mixed bf16", "tensorflow", False, "mixed_bfloat16"),
    ("keras-tensorflow XLA fp32", "tensorflow", True, "float32"),
    ("keras-tensorflow XLA mixed bf16", "tensorflow", True, "mixed_bfloat16"),
    ("keras-jax (XLA) fp32", "jax", True, "float32"),
    ("keras-jax (XLA) mixed bf16", "jax", True, "mixed_bfloat16"),
]
TORCH_CONFIGS = [
    # name, precision, memory format
    ("torch fp32", "fp32", "contiguous"),
    ("torch fp32 channels-last", "fp32", "channels_last"),
    ("torch bf16", "bf16", "channels_last"),
]


def fastest(rows, prefix):
    """The highest img/s of the measured rows whose name starts with it."""
    return max(
        (
            r["images_per_second"]
            for r in rows
            if r["name"].startswith(prefix) and r.get("images_per_second")
        ),
        default=None,
    )


def torch_reference(rows):
    """The fastest PyTorch fp32 row's img/s: the reference of the ratios."""
    return fastest(rows, "torch fp32")


def speed_worker(config, image_size, batch_size, warmup, steps, latency):
    """Runs in a subprocess whose backend is already set; prints JSON."""
    import keras
    import numpy as np

    import ferzoo

    name, _, jit, policy = config
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    n = batch_size * (warmup + steps)
    backbone = ferzoo.backbones.ResNetBackbone.from_name(
        "resnet18", image_shape=(image_size, image_size, 3)
    )
    model = ferzoo.models.Baseline(
        backbone=backbone, num_classes=7, num_samples=n
    )
    model.compile(jit_compile=jit)
    rng = np.random.default_rng(0)
    x = {
        "images": rng.uniform(0, 255, (n, image_size, image_size, 3)).astype(
            "float32"
        ),
        "sample_ids": np.arange(n, dtype="int32"),
    }
    y = rng.integers(0, 7, n).astype("int32")
    stamps = []

    class Stamp(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    model.fit(
        x, y, batch_size=batch_size, epochs=1, verbose=0, callbacks=[Stamp()]
    )
    seconds = stamps[-1] - stamps[warmup - 1]
    out = {
        "name": name,
        "images_per_second": batch_size * (len(stamps) - warmup) / seconds,
        "parameters": int(model.count_params()),
    }
    if latency:
        import tempfile

        import tensorflow as tf

        from ferzoo.export import export_saved_model

        keras.config.set_dtype_policy("float32")
        model32 = ferzoo.models.Baseline(
            backbone=ferzoo.backbones.ResNetBackbone.from_name(
                "resnet18", image_shape=(image_size, image_size, 3)
            ),
            num_classes=7,
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = export_saved_model(model32, pathlib.Path(tmp) / "saved")
            loaded = tf.saved_model.load(str(path))
            ms = {}
            for b in (1, 64):
                images = tf.constant(x["images"][:b])
                for _ in range(3):
                    loaded.serve(images)
                times = []
                for _ in range(latency):
                    t = time.perf_counter()
                    loaded.serve(images).numpy()
                    times.append(1000 * (time.perf_counter() - t))
                ms[str(b)] = float(np.median(times))
        out["saved_model_latency"] = {"repeats": latency, "milliseconds": ms}
    print("SPEED_JSON " + json.dumps(out))


def _speed_commands(image_size, batch_size, warmup, steps, latency):
    """`(name, command, env)` of every configuration, Keras then PyTorch."""
    env_base = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    common = [
        "--speed-size", str(image_size), "--speed-batch", str(batch_size),
        "--speed-warmup", str(warmup), "--speed-steps", str(steps),
    ]  # fmt: skip
    out = []
    for i, (name, backend, _, _) in enumerate(SPEED_CONFIGS):
        cmd = [sys.executable, __file__, "--speed-worker", str(i), *common]
        cmd += ["--speed-latency", str(latency if i == 0 else 0)]
        out.append((name, cmd, dict(env_base, KERAS_BACKEND=backend)))
    for name, precision, layout in TORCH_CONFIGS:
        cmd = [
            sys.executable, str(SCRIPTS / "torch_reference.py"),
            "--image-size", str(image_size), "--batch-size", str(batch_size),
            "--warmup", str(warmup), "--steps", str(steps),
            "--precision", precision, "--memory-format", layout,
        ]  # fmt: skip
        out.append((name, cmd, dict(env_base)))
    return out


def run_speed(
    image_size, batch_size, warmup, steps, latency, out_dir, rounds=2
):
    """Every configuration `rounds` times, round-robin; keeps the best.

    Round-robin spreads a passing disturbance over all configurations
    instead of one; the best round is the least disturbed measurement.
    """
    lat = None
    machine_info = _plain_machine()
    runs = {}
    commands = _speed_commands(image_size, batch_size, warmup, steps, latency)
    for r in range(rounds):
        for name, cmd, env in commands:
            if r and "--speed-latency" in cmd:
                cmd = cmd[:-1] + ["0"]
            click.echo(f"[speed] round {r + 1}/{rounds}: {name} ...")
            load = os.getloadavg()[0]
            row = _speed_subprocess(name, cmd, env)
            row["load_average"] = load
            if "saved_model_latency" in row:
                lat = row.pop("saved_model_latency")
            runs.setdefault(name, []).append(row)
    rows = []
    for name, _, _ in commands:
        measured = [x for x in runs[name] if x.get("images_per_second")]
        best = dict(
            max(measured, key=lambda x: x["images_per_second"])
            if measured
            else runs[name][-1]
        )
        best["rounds"] = [x.get("images_per_second") for x in runs[name]]
        best["load_average"] = max(x["load_average"] for x in runs[name])
        rows.append(best)
    notes = {
        "keras-tensorflow fp32": "tf.function, no XLA",
        "torch fp32": "eager, plain training loop (NCHW)",
        "torch fp32 channels-last": "eager, channels_last memory format",
        "torch bf16": "torch.autocast(cpu, bfloat16), channels_last",
    }
    for row in rows:
        if row["name"] in notes and "note" not in row:
            row["note"] = notes[row["name"]]
        if row["name"].endswith("bf16") and "note" not in row:
            row["note"] = "bfloat16 compute, float32 weights"
    speed = {
        "model": "Baseline, ResNet-18 (ImageNet stem), 7 classes",
        "image_size": image_size,
        "batch_size": batch_size,
        "warmup_steps": warmup,
        "steps": steps,
        "rounds": rounds,
        "rows": rows,
        "saved_model_latency": lat,
        "machine": machine_info,
        "command": " ".join(["python", "scripts/benchmark.py", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }
    assets = pathlib.Path(out_dir) / "benchmarks"
    assets.mkdir(parents=True, exist_ok=True)
    (assets / "speed.json").write_text(json.dumps(speed, indent=1) + "\n")
    ref = torch_reference(rows)
    for row in rows:
        ips = row.get("images_per_second")
        ratio = f"{ips / ref:5.2f}x torch" if ips and ref else ""
        click.echo(f"{row['name']:34s} {_num(ips, 1):>8s} img/s  {ratio}")
    if lat:
        for b, ms in lat["milliseconds"].items():
            click.echo(f"SavedModel serve, batch {b:>2s}: {ms:.1f} ms")
    return speed


def _plain_machine():
    return {
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": os.getloadavg()[0],
    }


def _speed_subprocess(name, cmd, env):
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=900
        )
    except subprocess.TimeoutExpired:
        return {"name": name, "images_per_second": None, "note": "timed out"}
    for line in proc.stdout.splitlines():
        if line.startswith("SPEED_JSON "):
            row = json.loads(line[len("SPEED_JSON ") :])
            row["name"] = name
            return row
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
    note = "failed: " + (tail[0][:150] if tail else f"exit {proc.returncode}")
    return {"name": name, "images_per_second": None, "note": note}


# --- CLI ----------------------------------------------------------------
@click.command()
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    default="cpu",
    show_default=True,
    help="Grid profile: backbone, subset, epochs and noise rates.",
)
@click.option(
    "--data",
    default=DEFAULT_DATA,
    show_default=True,
    help="Data spec KIND:PATH; a .tar.gz path is unpacked to --data-cache.",
)
@click.option(
    "--data-cache",
    default=str(DEFAULT_CACHE / "data"),
    show_default=True,
    help="Folder (outside the repository) where archives are unpacked.",
)
@click.option(
    "--cache-dir",
    default=str(DEFAULT_CACHE / "benchmark"),
    show_default=True,
    help="Folder of the cells' run folders (resume points) and presets.",
)
@click.option(
    "--out-dir",
    default=str(ROOT / "docs"),
    show_default=True,
    help="Folder of benchmarks.md and benchmarks/ (cells, JSON, plots).",
)
@click.option(
    "--noise",
    "noise_rates",
    type=click.FloatRange(0, 1),
    multiple=True,
    help="Noise rate to run (repeatable); defaults to the profile's.",
)
@click.option(
    "--method",
    "only_methods",
    multiple=True,
    help="Method to run (repeatable, lower-case class name); default all.",
)
@click.option(
    "--cell",
    "cells",
    multiple=True,
    help="One cell METHOD:NOISE to run (repeatable), e.g. scn:0.3.",
)
@click.option(
    "--time-budget",
    type=float,
    default=None,
    help="Seconds after which a cell stops at an epoch end (resumable).",
)
@click.option("--report-only", is_flag=True, help="Only rewrite the docs.")
@click.option("--no-report", is_flag=True, help="Run cells, skip the docs.")
@click.option("--speed", is_flag=True, help="Measure speed against PyTorch.")
@click.option("--speed-size", default=112, show_default=True, help="Pixels.")
@click.option("--speed-batch", default=32, show_default=True, help="Images.")
@click.option(
    "--speed-warmup", default=5, show_default=True, help="Untimed steps."
)
@click.option(
    "--speed-steps", default=25, show_default=True, help="Timed steps."
)
@click.option(
    "--speed-rounds",
    default=2,
    show_default=True,
    help="Rounds over all configurations; the best round is reported.",
)
@click.option(
    "--speed-latency",
    default=20,
    show_default=True,
    help="Timed SavedModel calls per batch size (0 skips).",
)
@click.option("--speed-worker", type=int, default=None, hidden=True)
def main(
    profile,
    data,
    data_cache,
    cache_dir,
    out_dir,
    noise_rates,
    only_methods,
    cells,
    time_budget,
    report_only,
    no_report,
    speed,
    speed_size,
    speed_batch,
    speed_warmup,
    speed_steps,
    speed_rounds,
    speed_latency,
    speed_worker,
):
    """Benchmark the methods under label noise, or speed against PyTorch.

    Runs the grid's missing cells (finished ones are cached, interrupted
    ones resume), then writes docs/benchmarks.md, its JSON and plots.

    \b
    Examples:
      python scripts/benchmark.py
      python scripts/benchmark.py --profile gpu --cell scn:0.3 --time-budget 540
      python scripts/benchmark.py --speed
    """
    if speed_worker is not None:
        speed_worker_fn(
            SPEED_CONFIGS[speed_worker],
            speed_size,
            speed_batch,
            speed_warmup,
            speed_steps,
            speed_latency,
        )
        return
    if speed:
        run_speed(
            speed_size,
            speed_batch,
            speed_warmup,
            speed_steps,
            speed_latency,
            out_dir,
            rounds=speed_rounds,
        )
        write_report(out_dir, cache_dir, report_profiles(out_dir))
        return
    cells_dir = pathlib.Path(out_dir) / "benchmarks" / "cells" / profile
    if not report_only:
        spec = PROFILES[profile]
        data_spec = prepare_data(data, data_cache)
        methods = method_classes()
        found = preset_folders(spec["preset_suffix"], cache_dir)
        if cells:
            todo = [parse_cell(c) for c in cells]
        else:
            rates = list(noise_rates) or spec["noise_rates"]
            keys = [m.lower() for m in only_methods] or list(methods)
            # Highest noise first: the cells the targets compare.
            rates = sorted(rates, reverse=True)
            todo = [(m, r) for r in rates for m in keys]
        failed = []
        for method, noise in todo:
            cls = methods.get(method)
            if cls is None:
                raise click.BadParameter(
                    f"{method!r} is not a method of ferzoo.models "
                    f"({', '.join(methods)})"
                )
            if cls.__name__ not in found:
                click.echo(
                    f"[benchmark] {method}: no *_{spec['preset_suffix']} "
                    "preset yet; skipped."
                )
                continue
            try:
                run_cell(
                    method,
                    cls,
                    found[cls.__name__],
                    noise,
                    profile,
                    data_spec,
                    cache_dir,
                    cells_dir,
                    time_budget,
                )
            except Exception as e:  # one broken method must not stop the grid
                import traceback

                traceback.print_exc()
                failed.append(f"{cell_name(method, noise)}: {e}")
        for line in failed:
            click.echo(f"[benchmark] FAILED {line}", err=True)
    if not no_report:
        write_report(out_dir, cache_dir, report_profiles(out_dir, profile))


def report_profiles(out_dir, current=None):
    """`cpu` and `gpu` always; other profiles where they have cells."""
    names = ["cpu", "gpu"]
    cells_root = pathlib.Path(out_dir) / "benchmarks" / "cells"
    for p in PROFILES:
        if p not in names and (p == current or (cells_root / p).is_dir()):
            names.append(p)
    return names


speed_worker_fn = speed_worker

if __name__ == "__main__":
    main()
