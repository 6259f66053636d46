"""Profiles (what a grid trains), data unpacking, methods and presets."""

import json
import os
import pathlib
import shutil
import sys
import tarfile

import click

from ferzoo.spec import check_dtype_policy

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SCRIPTS = ROOT / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

DEFAULT_DATA = "fer2013:" + os.path.relpath(
    ROOT.parent / "shared" / "data" / "fer2013.tar.gz"
)
DEFAULT_CACHE = pathlib.Path("~/.cache/ferzoo").expanduser()
CANONICAL = {
    "cpu": "python scripts/benchmark.py --profile cpu",
    "cpu-pretrained": "python scripts/benchmark.py --profile cpu-pretrained",
    "gpu": "python scripts/benchmark.py --profile gpu --cell METHOD:NOISE "
    "--time-budget 540  # once per cell, repeated until done",
    "tiny": "python scripts/benchmark.py --profile tiny --data synthetic:70",
    "cpu-full": "python scripts/benchmark.py --profile cpu-full "
    "--data-cache /tmp/ferzoo-data  # resumable",
}

# Pair noise: each class flips to one fixed, plausible confusion. Keyed
# by class name, so it holds for any class order; a missing class is
# never flipped. The mapping is part of a pair cell's signature.
PAIR_MAPPINGS = {
    "fer-confusions": {
        "angry": "disgust",
        "disgust": "angry",
        "fear": "surprise",
        "surprise": "fear",
        "sad": "neutral",
        "neutral": "sad",
        "happy": "neutral",
    },
}

# Keys every profile has; a profile gives only what differs.
DEFAULTS = {
    "backbone": None,
    "backbone_convs": None,
    "limit_per_class": None,
    "epochs": None,
    "batch_size": None,
    "noise_rates": [0.0, 0.3],
    # Pair-noise columns and their mapping (a PAIR_MAPPINGS key).
    "pair_rates": [],
    "pair_mapping": "fer-confusions",
    # Extra seeds (model and noise seed) of the Baseline and the
    # `seed_top` strongest methods at `seed_rates` (symmetric).
    "seeds": [0],
    "seed_rates": [],
    "seed_top": 2,
    # Training-set fit measured every N epochs (and at the last).
    "memorisation_every": 1,
    # "scratch": the first benchmark issue's targets; "pretrained": the
    # pretrained-backbone benchmark's (issue 14).
    "targets": "scratch",
    # Recipe entries that replace the preset's (learning_rate, lr_decay,
    # augment, ...); empty keeps the presets' recipes.
    "recipe": {},
    # Block up to which the backbone is frozen and its maps cached
    # (`ferzoo.trunk`); None fine-tunes the whole backbone.
    "freeze_until": None,
    # Keras dtype policy the cells train under (`ferzoo-train
    # --dtype-policy`): None or "float32" keeps the recipes' (float32,
    # and the cells' signatures as they were); "mixed_bfloat16" computes
    # in bfloat16 (with `freeze_until`, the tail only; the trunk cache is
    # shared with float32).
    "dtype_policy": None,
}

PROFILES = {
    "cpu": dict(
        DEFAULTS,
        description=(
            "2-core CPU: the `<method>_small_cnn_fer2013` presets with the "
            "backbone shrunk to 16-32-64 filters (two convs per stage; the "
            "second stream, if any, unchanged), on a fixed "
            "class-stratified subset of the train split (at most 800 "
            "images per class), 48 px, 15 epochs (warm-up epochs scaled "
            "by the same factor), batch 64; val and test are the full "
            "PublicTest and PrivateTest splits."
        ),
        regime="from scratch",
        preset_suffix="small_cnn_fer2013",
        backbone={"stackwise_num_filters": [16, 32, 64]},
        limit_per_class=800,
        epochs=15,
        batch_size=64,
    ),
    "cpu-pretrained": dict(
        DEFAULTS,
        description=(
            "2-core CPU, pretrained face backbone: the "
            "`<method>_dlib_resnet29_fer2013` presets (dlib's face-"
            "recognition ResNet, 112 px from the 48 px faces) at their "
            "fine-tuning recipes (Adam 1e-4, batch 64, flip, crop and "
            "random erasing) with a slower learning-rate decay (0.97 a "
            "epoch instead of 0.9), on the same fixed class-stratified "
            "subset of the train split as the `cpu` profile (at most 800 "
            "images per class, 5,236 images; subset seed 0 for every "
            "method, noise rate and seed), 24 epochs (warm-up epochs "
            "scaled by the same factor); val and test are the full "
            "PublicTest and PrivateTest splits. Noise: 0/10/20/30% "
            "symmetric and 30% pair noise; seeds 0, 1 and 2 (model and "
            "noise seed) for the Baseline and the two strongest methods "
            "at 0% and 30%. Calibrated 2026-12-05 on the Baseline at 30%: "
            "12 epochs at decay 0.9 left the flipped labels unfitted "
            "(13.3% of them fitted to their wrong label at epoch 2, 12.0% "
            "at epoch 12) and a learning rate of 3e-4 collapsed to chance "
            "in the first epochs; 24 epochs at decay 0.97 fit them more "
            "from epoch 14 on."
        ),
        regime="pretrained",
        preset_suffix="dlib_resnet29_fer2013",
        limit_per_class=800,
        epochs=24,
        noise_rates=[0.0, 0.1, 0.2, 0.3],
        pair_rates=[0.3],
        seeds=[0, 1, 2],
        seed_rates=[0.0, 0.3],
        memorisation_every=2,
        targets="pretrained",
        recipe={"lr_decay": 0.97},
    ),
    "gpu": dict(
        DEFAULTS,
        description=(
            "one accelerator, pretrained face backbone: the "
            "`<method>_dlib_resnet29_fer2013` presets at their own "
            "recipes (epochs, batch size, learning rate as the presets "
            "define them), the full train split; val and test are the "
            "full PublicTest and PrivateTest splits; the same noise "
            "columns and seeds as `cpu-pretrained`."
        ),
        regime="pretrained",
        preset_suffix="dlib_resnet29_fer2013",
        noise_rates=[0.0, 0.1, 0.2, 0.3],
        pair_rates=[0.3],
        seeds=[0, 1, 2],
        seed_rates=[0.0, 0.3],
        memorisation_every=5,
        targets="pretrained",
    ),
    "cpu-full": dict(
        DEFAULTS,
        description=(
            "2-core CPU, the full FER2013 training split (28,709 faces; "
            "PublicTest as val, PrivateTest as test), pretrained face "
            "backbone, fast fine-tuning on a cached trunk: the "
            "`<method>_dlib_resnet29_fer2013` presets at 208 px (a 6x6 "
            "final map, as the 7x7 of the papers' 224-px ResNets, "
            "where the presets' 112 px give 3x3), with dlib's ResNet "
            "frozen up to `conv256_1` and its maps of each face and its "
            "flip cached once in float16; `conv256_2` (1.2M parameters), "
            "a batch normalisation of its output map (`output_norm`), "
            "the method's heads and its losses train on them. The "
            "normalisation is this profile's one change to the "
            "architecture, found in calibration (2026-12-07): without it "
            "the Baseline at 30% had a training accuracy of 18.7, 20.2 and "
            "21.0% and a val accuracy of 28.2, 28.8 and 24.9% after epochs "
            "1-3, since the pooled `conv256_2` features of the faces share "
            "a large offset (mean 0.88, across-face std 0.08 per channel): "
            "a dense layer trained on them for 10 epochs (4,000 faces, "
            "clean labels) fits 26% of them, 49% once they are "
            "standardised, and the Baseline with the normalisation fits "
            "42, 51 and 55% in 3 epochs where it fitted 21, 24 and 25% "
            "without. One recipe "
            "for every method (each method keeps its own loss weights, "
            "margins and thresholds from its preset; warm-up epochs "
            "scaled by the epoch factor): Adam, batch 16, 35 epochs, "
            "learning rate 5e-4 decayed by 0.97 a epoch, no augmentation, "
            "`output_norm` with momentum 0.9 (PyTorch's default). Changes "
            "from the presets' fine-tuning recipe (Adam 1e-4, batch 64, "
            "decay 0.9, flip + 8-px crop + random erasing 0.25, 112 px), "
            "with the reasons: 208 px, for the 6x6 map the CAMs and "
            "DWMCA's attention need; the rest so that the Baseline at 30% "
            "comes to fit the flipped labels (the regime the methods are "
            "meant for), found in calibration (2026-12-07, "
            "`benchmarks/notes/cpu-full.md`): at the presets' 1e-4, batch "
            "64 with flip, it fitted 16.5% of them after 20 epochs; at "
            "1e-3 without flip 22.6% after 15 (1e-3 with Keras' momentum "
            "0.99 blew the normalised map's moving statistics up); at "
            "5e-4, batch 16 (the same rate per sample by the square-root "
            "rule, 4 times the updates), no flip, 12.1, 16.2, 27.2, 30.4, "
            "45.7 and 49.2% after 5-30 epochs, its best-on-val 50.6% at "
            "epoch 6 and its last-5 mean 39.0%; 35 epochs for the last "
            "points to 50%. No crop and no erasing: pixel crops cannot be "
            "cached, a crop of the 6x6 map moves it by whole 35-px cells, "
            "and flip and erasing work against the memorisation the "
            "calibration asks for (the flipped view still reaches the "
            "methods that read it, as DacFER's consistency). The tail "
            "computes in bfloat16 (`mixed_bfloat16`, float32 weights, "
            "losses and tables; the trunk and its cache stay float32): "
            "1.5 times faster steps on this CPU's AVX512_BF16 with the "
            "same loss to 0.6% (`benchmarks/notes/cpu-full.md`, item 7). "
            "Noise: 0, 30 and 40% symmetric and 30% pair noise; seeds 0, "
            "1 and 2 (model and noise seed) for every method at 30% "
            "symmetric, whose cells run first."
        ),
        regime="full, cached trunk",
        preset_suffix="dlib_resnet29_fer2013",
        backbone={
            "image_shape": [208, 208, 3],
            "output_norm": True,
            "output_norm_momentum": 0.9,
        },
        freeze_until="conv256_1",
        dtype_policy="mixed_bfloat16",
        epochs=35,
        batch_size=16,
        noise_rates=[0.0, 0.3, 0.4],
        pair_rates=[0.3],
        seeds=[0, 1, 2],
        seed_rates=[0.3],
        seed_top=5,
        first_rates=[0.3],
        memorisation_every=5,
        targets="full",
        recipe={
            "image_size": 208,
            "learning_rate": 5e-4,
            "lr_decay": 0.97,
            "augment": {},
        },
    ),
    "tiny": dict(
        DEFAULTS,
        description="the test's grid: synthetic faces, 2 epochs.",
        regime="tiny",
        preset_suffix="small_cnn_synthetic",
        backbone={"stackwise_num_filters": [8, 16]},
        backbone_convs=1,
        epochs=2,
        batch_size=35,
        pair_rates=[0.3],
        seeds=[0, 1],
        seed_rates=[0.3],
        seed_top=1,
    ),
}


def derive_profile(name, overrides):
    """Register `name` with `KEY=VALUE` overrides; return the new name.

    For calibrating a profile without editing it: `epochs=24`,
    `limit_per_class=400`, `recipe.learning_rate=3e-4`,
    `recipe.augment={"flip": true}` (values are JSON where they parse,
    else strings). The derived profile is named `NAME~<hash>`, so its
    cells, run folders and presets never mix with the profile's own.
    """
    import hashlib

    spec = json.loads(json.dumps(PROFILES[name]))
    parsed = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"{item!r}: expected KEY=VALUE", param_hint="--override"
            )
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        top, _, sub = key.partition(".")
        if top not in spec or (sub and top != "recipe"):
            known = ", ".join(sorted(k for k in DEFAULTS if k != "recipe"))
            raise click.BadParameter(
                f"{key!r} is not a profile key ({known}, or recipe.NAME)",
                param_hint="--override",
            )
        if top == "recipe" and not sub:
            raise click.BadParameter(
                "give recipe entries one by one: recipe.NAME=VALUE",
                param_hint="--override",
            )
        if sub:
            spec["recipe"][sub] = value
        else:
            spec[top] = value
        parsed.append([key, value])
    digest = hashlib.sha1(
        json.dumps(parsed, sort_keys=True).encode()
    ).hexdigest()[:8]
    derived = f"{name}~{digest}"
    spec["description"] = (
        f"{spec['description']} Overridden: "
        + ", ".join(f"{k}={json.dumps(v)}" for k, v in parsed)
        + "."
    )
    spec["overrides"] = parsed
    PROFILES[derived] = spec
    return derived


def pair_targets(mapping_name, class_names):
    """Target class index of each class under a named pair mapping."""
    mapping = PAIR_MAPPINGS[mapping_name]
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted((set(mapping) | set(mapping.values())) - set(index))
    if unknown:
        raise click.ClickException(
            f"pair mapping {mapping_name!r} names classes {unknown} that "
            f"the data does not have ({list(class_names)})"
        )
    return [
        index[mapping[name]] if name in mapping else i
        for i, name in enumerate(class_names)
    ]


def mapping_text(mapping_name):
    """`fear -> surprise, ...` of a named pair mapping."""
    mapping = PAIR_MAPPINGS[mapping_name]
    return ", ".join(f"{a} -> {b}" for a, b in mapping.items())


# --- Data ---------------------------------------------------------------
def prepare_data(data, data_cache):
    """Unpack a `KIND:ARCHIVE.tar.gz` spec once; return a folder spec."""
    from ferzoo.training.checkpoints import file_digest

    kind, _, path = data.partition(":")
    if not path.endswith((".tar.gz", ".tgz", ".tar")):
        return data
    archive = pathlib.Path(path).expanduser().resolve()
    if not archive.is_file():
        raise click.ClickException(f"{archive}: no such archive")
    # Size and content, not the modification time: a copy of the same
    # archive (a new session's mount) must not unpack it again under jobs
    # that read the folder.
    stamp = f"{archive.stat().st_size}-{file_digest(archive)[:16]}"
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
    """Copy a preset folder with the profile's backbone and recipe.

    Weights (`*.weights.h5`, a pretrained backbone's) are linked, or
    copied where links are not possible, so the copy loads them too.
    """
    folder = pathlib.Path(folder)
    config = json.loads((folder / "config.json").read_text())
    meta = json.loads((folder / "metadata.json").read_text())
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
    recipe.update(profile.get("recipe") or {})
    policy = profile.get("dtype_policy")
    if policy and check_dtype_policy(policy) != "float32":
        recipe["dtype_policy"] = policy
    meta["recipe"] = recipe
    target = pathlib.Path(target)
    target.mkdir(parents=True, exist_ok=True)
    (target / "config.json").write_text(json.dumps(config, indent=2))
    (target / "metadata.json").write_text(json.dumps(meta, indent=2))
    if not profile["backbone"]:  # same architecture: keep the weights
        for weights in folder.glob("*.weights.h5"):
            dest = target / weights.name
            if dest.exists() or dest.is_symlink():
                dest.unlink()
            try:
                dest.symlink_to(weights.resolve())
            except OSError:
                shutil.copy2(weights, dest)
    return target, config, recipe


def report_profiles(out_dir, current=None):
    """The CPU regimes and `gpu` always; others where they have cells."""
    names = ["cpu", "cpu-pretrained", "cpu-full", "gpu"]
    cells_root = pathlib.Path(out_dir) / "benchmarks" / "cells"
    for p in PROFILES:
        if p not in names and (p == current or (cells_root / p).is_dir()):
            names.append(p)
    return names
