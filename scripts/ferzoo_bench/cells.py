"""Cells: one method at one noise setting and seed; run, cache, resume.

A finished cell is `<cells_dir>/<name>.json`; its `signature` hashes what
it was trained from (preset config and recipe, data kind, subset, noise,
seeds, backend; for pair noise its mapping; for presets with weights the
weights' SHA-1), so a rerun skips it while nothing changed. An
unfinished cell resumes from its run folder `<cache>/runs/<profile>/
<name>-<signature>/`. Symmetric seed-0 cells keep the names and
signatures of the first harness, so their cells and run folders stay
valid.
"""

import dataclasses
import datetime
import hashlib
import json
import os
import pathlib
import re
import sys
import time

import click

from ferzoo_bench import callbacks
from ferzoo_bench.machine import machine
from ferzoo_bench.profiles import PAIR_MAPPINGS
from ferzoo_bench.profiles import PROFILES
from ferzoo_bench.profiles import pair_targets
from ferzoo_bench.profiles import profile_preset

NOISE_KINDS = {"symmetric": "noise", "pair": "pair"}


@dataclasses.dataclass(frozen=True)
class Cell:
    """Which cell: method, noise rate and type, seed (model and noise)."""

    method: str
    noise: float
    noise_type: str = "symmetric"
    seed: int = 0

    @property
    def name(self):
        kind = NOISE_KINDS[self.noise_type]
        seed = f"-seed{self.seed}" if self.seed else ""
        return f"{self.method}-{kind}{self.noise:.2f}{seed}"

    @property
    def column(self):
        """`(noise_type, rate)`: the table column of the cell."""
        return (self.noise_type, self.noise)

    @classmethod
    def of(cls, cell_json):
        """The `Cell` of a cell JSON (first-harness cells included)."""
        seed = cell_json.get("seed")
        if seed is None:
            seed = (cell_json.get("signature_detail") or {}).get("seed", 0)
        return cls(
            cell_json["method"],
            float(cell_json["noise_rate"]),
            cell_json.get("noise_type", "symmetric"),
            int(seed),
        )


def epoch_time(cell_json):
    """Seconds of all the cell's epochs (0 for a cell without them)."""
    return sum(cell_json.get("epoch_seconds") or [])


def cell_name(method, noise):
    return Cell(method, noise).name


def parse_cell(text):
    """`METHOD:NOISE[:pair][:seedN]`, e.g. `scn:0.3`, `scn:0.3:pair:seed1`."""
    method, *rest = text.split(":")
    if not rest:
        raise click.BadParameter(
            f"{text!r}: expected METHOD:NOISE[:pair][:seedN]"
        )
    try:
        noise = float(rest[0])
    except ValueError:
        raise click.BadParameter(f"{text!r}: {rest[0]!r} is no rate") from None
    noise_type, seed = "symmetric", 0
    for part in rest[1:]:
        if part in NOISE_KINDS:
            noise_type = part
        elif re.fullmatch(r"seed\d+", part):
            seed = int(part[4:])
        else:
            raise click.BadParameter(
                f"{text!r}: {part!r} is neither a noise type "
                f"({', '.join(NOISE_KINDS)}) nor seedN"
            )
    return Cell(method.lower(), noise, noise_type, seed)


def load_cells(cells_root, profile):
    folder = pathlib.Path(cells_root) / profile
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


_RUN = re.compile(
    r"(?P<method>.+?)-(?P<kind>noise|pair)(?P<rate>[0-9.]+)"
    r"(?:-seed(?P<seed>\d+))?-[0-9a-f]+"
)


def unfinished_runs(cache_dir, profile):
    """`{Cell: epochs done}` of the profile's run folders."""
    out = {}
    kinds = {v: k for k, v in NOISE_KINDS.items()}
    root = pathlib.Path(cache_dir) / "runs" / profile
    for state in root.glob("*/state.json"):
        match = _RUN.fullmatch(state.parent.name)
        if not match:
            continue
        try:
            epochs = int(json.loads(state.read_text())["epoch"]) + 1
            key = Cell(
                match["method"],
                float(match["rate"]),
                kinds[match["kind"]],
                int(match["seed"] or 0),
            )
        except (ValueError, KeyError, json.JSONDecodeError):
            continue
        out[key] = max(out.get(key, 0), epochs)
    return out


def _strip_names(obj):
    if isinstance(obj, dict):
        return {k: _strip_names(v) for k, v in obj.items() if k != "name"}
    if isinstance(obj, list):
        return [_strip_names(v) for v in obj]
    return obj


def _sha1(path):
    from ferzoo.training.checkpoints import file_digest

    return file_digest(path, "sha1")


def signature(
    cell, preset_name, folder, config, recipe, kind, profile, backend=None
):
    """`(digest, detail)` of what the cell trains from.

    Symmetric cells without weights hash exactly the keys of the first
    harness; pair noise and preset weights add keys of their own.
    """
    if backend is None:
        import keras

        backend = keras.backend.backend()
    sig = {
        "preset": preset_name,
        "config": config,
        "recipe": recipe,
        "data": kind,
        "limit_per_class": profile["limit_per_class"],
        "noise_rate": cell.noise,
        "noise_seed": cell.seed,
        "seed": cell.seed,
        "backend": backend,
    }
    if profile.get("freeze_until"):
        sig["freeze_until"] = profile["freeze_until"]
    if cell.noise_type != "symmetric":
        sig["noise_type"] = cell.noise_type
        sig["noise_mapping"] = PAIR_MAPPINGS[profile["pair_mapping"]]
    weights = sorted(pathlib.Path(folder).glob("*.weights.h5"))
    if weights:
        sig["weights_sha1"] = {w.name: _sha1(w) for w in weights}
    # Layer names depend on build order, so they are not part of it.
    stable = dict(sig, config=_strip_names(config))
    digest = hashlib.sha1(
        json.dumps(stable, sort_keys=True).encode()
    ).hexdigest()[:10]
    return digest, {k: v for k, v in sig.items() if k != "config"}


def write_pair_noise(path, cell, data, profile, image_size):
    """The pair-noise labels of the cell's training subset, as a noise file.

    `ferzoo.training.train` takes the file (`noise_file`), so the mapping
    is the profile's, not the loader's default `c -> c + 1`.
    """
    from ferzoo.data import load_split
    from ferzoo.data import pair_noise
    from ferzoo.data import write_noise_file

    _, info = load_split(
        data,
        "train",
        image_size=image_size,
        limit_per_class=profile["limit_per_class"],
    )
    targets = pair_targets(profile["pair_mapping"], info.class_names)
    result = pair_noise(
        info.labels, cell.noise, info.num_classes, cell.seed, targets
    )
    write_noise_file(path, info.names, result.labels, info.class_names)
    return path


def run_cell(
    cell, cls, preset, profile_name, data, cache_dir, cells_dir, budget
):
    """Train one cell (resuming) and write its JSON; None if unfinished."""
    import keras

    from ferzoo import outputs
    from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier
    from ferzoo.training import train

    profile = PROFILES[profile_name]
    name = cell.name
    preset_name, folder = preset
    kind = data.partition(":")[0]
    presets_dir = pathlib.Path(cache_dir) / "presets" / profile_name
    folder, config, recipe = profile_preset(
        preset_name, folder, profile, presets_dir / preset_name
    )
    digest, detail = signature(
        cell, preset_name, folder, config, recipe, kind, profile
    )
    cell_path = pathlib.Path(cells_dir) / f"{name}.json"
    cached = cached_cell(cell_path, digest, detail)
    if cached is not None:
        click.echo(f"[benchmark] {name}: cached")
        return cached
    run_dir = (
        pathlib.Path(cache_dir) / "runs" / profile_name / f"{name}-{digest}"
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    # The harness made this folder and writes its own files beside the run
    # (pair-noise.txt, epoch_times.json, memorisation.json): mark it as a
    # ferzoo training folder, so `train` claims it (and resumes in it).
    outputs.prepare(run_dir, "train")
    # What `train` will use (the signature keeps the preset's own recipe).
    recipe = {**NoisyLabelClassifier.default_recipe, **recipe}
    noise = cell_noise(cell, run_dir, data, profile, recipe)
    timer = callbacks.epoch_timer(run_dir / "epoch_times.json")
    freeze_until = profile.get("freeze_until")
    trunk_cache = pathlib.Path(cache_dir) / "trunks" if freeze_until else None
    fit = _memorisation(
        cell, run_dir, data, profile, recipe, noise, trunk_cache
    )
    extra = [timer, fit]
    if budget:
        extra.append(callbacks.time_budget(budget))
    click.echo(f"[benchmark] {name}: training {preset_name} in {run_dir}")
    start = time.perf_counter()
    keras.backend.clear_session()
    results = train(
        cell_spec(cell, folder, data, profile, noise, trunk_cache),
        output_dir=str(run_dir),
        verbose=2,
        callbacks=extra,
    )
    wall = time.perf_counter() - start
    if results["epochs_run"] < int(recipe["epochs"]):
        click.echo(
            f"[benchmark] {name}: {results['epochs_run']}/{recipe['epochs']} "
            "epochs; rerun the same command to continue."
        )
        return None
    cell_json = summary(cell, cls, profile_name, results, run_dir, timer)
    cell_json.update(
        preset=preset_name,
        signature=digest,
        signature_version=2,
        signature_detail=detail,
        memorisation=fit.records,
        wall_seconds_last_command=wall,
    )
    return write_cell(cell_path, cell, cell_json, profile, results)


def write_cell(cell_path, cell, cell_json, profile, results):
    """Add the profile's keys to a finished cell's JSON and write it."""
    if profile.get("freeze_until"):
        cell_json["freeze_until"] = profile["freeze_until"]
        cell_json["trunk_cache"] = results.get("trunk_cache")
    if cell.noise_type == "pair":
        cell_json["pair_mapping"] = PAIR_MAPPINGS[profile["pair_mapping"]]
    cell_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = cell_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cell_json, indent=1) + "\n")
    os.replace(tmp, cell_path)
    return cell_json


def cached_cell(cell_path, digest, detail):
    """The cell JSON at `cell_path` if its signature is `digest` (or, for a
    first-harness cell, its detail is `detail`); else None."""
    if not cell_path.is_file():
        return None
    cached = json.loads(cell_path.read_text())
    legacy = "signature_version" not in cached
    if cached.get("signature") == digest or (
        legacy and cached.get("signature_detail") == detail
    ):
        return cached
    return None


def _memorisation(cell, run_dir, data, profile, recipe, noise, trunk_cache):
    """The callback recording the fit of the cell's training split."""
    return callbacks.memorisation(
        run_dir / "memorisation.json",
        dict(
            data=data,
            split="train",
            image_size=int(recipe["image_size"]),
            batch_size=int(recipe["batch_size"]),
            augment=recipe.get("augment"),
            seed=cell.seed,
            limit_per_class=profile["limit_per_class"],
            training=False,
            **noise,
        ),
        profile["memorisation_every"],
        int(recipe["epochs"]),
        trunk_cache=trunk_cache,
    )


def cell_noise(cell, run_dir, data, profile, recipe):
    """`train`'s noise keywords: the rate, or the pair-noise file."""
    if cell.noise_type != "pair":
        return {"noise_rate": cell.noise, "noise_seed": cell.seed}
    noise_file = write_pair_noise(
        run_dir / "pair-noise.txt",
        cell,
        data,
        profile,
        int(recipe["image_size"]),
    )
    return {"noise_rate": 0.0, "noise_file": str(noise_file)}


def cell_spec(cell, folder, data, profile, noise, trunk_cache=None):
    """The `RunSpec` a cell trains: the profile's preset folder on `data`
    at the cell's noise and seed (a cell is this spec plus its profile)."""
    from ferzoo.spec import RunSpec

    return RunSpec.create(
        str(folder),
        data=data,
        seed=cell.seed,
        limit_per_class=profile["limit_per_class"],
        freeze_until=profile.get("freeze_until"),
        trunk_cache=None if trunk_cache is None else str(trunk_cache),
        **noise,
    )


def summary(cell, cls, profile_name, results, run_dir, timer):
    """The cell's JSON from `train`'s results (keys in the first order)."""
    epochs = results["epochs_run"]
    times = timer.times[-epochs:]
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
    return {
        "method": cell.method,
        "class": cls.__name__,
        "preset": None,
        "profile": profile_name,
        "noise_rate": cell.noise,
        "noise_type": cell.noise_type,
        "seed": cell.seed,
        "signature": None,
        "signature_version": 2,
        "signature_detail": None,
        "parameter_count": meta.get("parameter_count"),
        "num_train": num_train,
        "epochs": epochs,
        "test": test,
        "final_test_accuracy": final.get("accuracy"),
        "final_test_per_class_accuracy": final.get("per_class_accuracy"),
        "test_accuracy_per_epoch": [
            r.get("test_accuracy") for r in results["history"]
        ],
        "val_accuracy_per_epoch": [
            r.get("val_accuracy") for r in results["history"]
        ],
        "train_accuracy_per_epoch": [
            r.get("accuracy") for r in results["history"]
        ],
        "noise_detection": results.get("noise_detection"),
        "epoch_seconds": [round(t["total_seconds"], 2) for t in times],
        "train_images_per_second": (
            num_train / mean_train if num_train and mean_train else None
        ),
        "wall_seconds_last_command": None,
        "load_average": os.getloadavg()[0],
        "machine": machine(),
        "command": " ".join(["python", "scripts/benchmark.py", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }
