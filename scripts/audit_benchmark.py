r"""Measure ferzoo-audit against cleanlab alone, where the flips are known.

For each noise setting (seeded symmetric or pair flips of the train
split) and each method preset, runs `ferzoo.audit` (K folds, out-of-fold
probabilities; resumable in `--cache-dir`) and scores, against the flip
mask, the top-k of each ranking (k = the true number of flips: precision,
recall, F1) and its ROC-AUC:

- (a) `cleanlab`: `cleanlab.filter.find_label_issues` on the out-of-fold
  probabilities of the plain Baseline (the first preset, which must be a
  Baseline); both its own flagged set (`cleanlab set`, whatever its
  size) and the top-k of its ranking by self-confidence;
- (b) `<method> score`: each method's own clean score (lowest first);
- (c) `<method> audit`: the ferzoo-audit combination on that method's
  folds (`rank_average`, the default; `flagged_first` too), and cleanlab on
  that method's own out-of-fold probabilities.

With `--retrain`, each audit's corrected label file is trained on with
`ferzoo.training.train` (the same preset, recipe and subset) and its
test accuracy (FER2013: PrivateTest) compared with training on the noisy
labels; `--retrain-preset P` limits that to some presets (two trainings
per preset and noise setting).

`--subset-per-class N` trains on the fixed class-stratified subset of
the train split that the benchmark's `cpu-pretrained` profile uses
(`scripts/ferzoo_bench/profiles.py`: `limit_per_class`, drawn with
subset seed 0 by the same reader; N = 800 is that profile's very
subset), and adapts each preset as that profile does
(`profile_preset`: `--epochs`, else the profile's 12, with warm-up
epochs scaled by the same factor; the pretrained weights kept). Pair
noise uses the benchmark's class mapping (`--pair-mapping`, default
`fer-confusions`: angry <-> disgust, fear <-> surprise, sad <-> neutral,
happy -> neutral), written as a label file by the harness's own
`write_pair_noise`; `next-class` is the loader's `c -> c + 1` (the
mapping of the synthetic numbers in the README).

Writes `<out-dir>/<name>.json` (`--name`, default the data kind): the
rows, the retrain accuracies, the command, date, machine and wall time.
`scripts/benchmark.py` renders every `docs/benchmarks/audit/*.json` as
the "ferzoo-audit vs cleanlab" section of `docs/benchmarks.md`; the same
table is printed and written to the cache folder as `<name>.md`.

Invocations:
    python scripts/audit_benchmark.py --data synthetic:1400 --epochs 8 \
        --image-size 32 --pair-mapping next-class   # the CPU-size run
    python scripts/audit_benchmark.py --data fer2013:/data/fer2013 \
        --preset baseline_dlib_resnet29_fer2013 \
        --preset dual_branch_dlib_resnet29_fer2013 --subset-per-class 300 \
        --epochs 3 --folds 3 --retrain --out-dir docs/benchmarks/audit
    python scripts/audit_benchmark.py --preset baseline_small_cnn_synthetic \
        --preset scn_small_cnn_synthetic --noise pair:0.3
"""

import argparse
import hashlib
import json
import os
import pathlib
import shlex
import sys
import time

import numpy as np

SCRIPTS = pathlib.Path(__file__).resolve().parent
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

from ferzoo_bench.audit_rows import block  # noqa: E402
from ferzoo_bench.audit_rows import markdown  # noqa: E402
from ferzoo_bench.audit_rows import rows_for  # noqa: E402
from ferzoo_bench.audit_rows import write  # noqa: E402
from ferzoo_bench.profiles import DEFAULT_CACHE  # noqa: E402
from ferzoo_bench.profiles import PAIR_MAPPINGS  # noqa: E402
from ferzoo_bench.profiles import PROFILES  # noqa: E402

METHODS = ("baseline", "scn", "dual_branch", "dwmca", "afcn", "dacfer")
# The profile whose training subset and preset adaptation
# `--subset-per-class` reuses.
SUBSET_PROFILE = "cpu-pretrained"
NEXT_CLASS = "next-class"


def parse_noise(text):
    kind, _, rate = text.partition(":")
    if kind not in ("symmetric", "pair") or not rate:
        raise argparse.ArgumentTypeError(
            f"--noise must be symmetric:RATE or pair:RATE, got {text!r}"
        )
    return kind, float(rate)


def method_of(preset):
    """`dual_branch` of `dual_branch_dlib_resnet29_fer2013`."""
    for method in sorted(METHODS, key=len, reverse=True):
        if preset.startswith(method + "_"):
            return method
    return preset


def run_name(args):
    return args.name or args.data.partition(":")[0]


# The settings that define the audits (and their cache folder).
AUDIT_KEYS = (
    "data", "folds", "epochs", "batch_size", "learning_rate", "image_size",
    "subset_per_class", "seed", "noise_seed", "pair_mapping",
)  # fmt: skip


def earlier_runs(path, args, presets):
    """Wall seconds of earlier runs of the same audits into `path`.

    A run resumed from cached folds (e.g. the same command again with
    `--retrain`) takes minutes where the first took hours; the page adds
    the earlier runs' time so it states what the whole result cost.
    """
    if not path.is_file():
        return []
    try:
        prev = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    same = prev.get("presets") == presets and all(
        prev.get("settings", {}).get(k) == getattr(args, k) for k in AUDIT_KEYS
    )
    if not same:
        return []
    return list(prev.get("earlier_runs_seconds") or []) + [
        prev.get("wall_seconds") or 0.0
    ]


def cache_folder(args, presets):
    """`--cache-dir`, else a folder keyed by every setting of the audits."""
    if args.cache_dir:
        return pathlib.Path(args.cache_dir)
    settings = {k: getattr(args, k) for k in AUDIT_KEYS}
    settings["presets"] = presets
    if args.subset_per_class and subset_profile(args)["recipe"]:
        settings["profile_recipe"] = subset_profile(args)["recipe"]
    digest = hashlib.sha1(
        json.dumps(settings, sort_keys=True).encode()
    ).hexdigest()[:10]
    return DEFAULT_CACHE / "audit_benchmark" / f"{run_name(args)}-{digest}"


def subset_profile(args):
    """The `cpu-pretrained` profile with `--subset-per-class` (and epochs)."""
    profile = dict(PROFILES[SUBSET_PROFILE])
    profile["limit_per_class"] = args.subset_per_class
    if args.epochs:
        profile["epochs"] = args.epochs
    profile["pair_mapping"] = args.pair_mapping
    return profile


def prepare_preset(preset, args, cache):
    """The preset folder the audit and retraining use.

    With `--subset-per-class`, the profile's copy (`profile_preset`: its
    epochs, warm-up epochs scaled, weights linked); with `--image-size`,
    a copy at that size.
    """
    from ferzoo.presets import resolve_preset

    if args.subset_per_class:
        from ferzoo_bench.profiles import profile_preset

        folder, _, _ = profile_preset(
            preset,
            resolve_preset(preset),
            subset_profile(args),
            cache / "presets" / preset,
        )
        preset = str(folder)
    if args.image_size:
        preset = sized_preset(
            preset, args.image_size, cache / "presets" / f"{preset}-sized"
        )
    return preset


def noise_kwargs(args, noise_type, rate, folder):
    """The audit's and training's noise arguments of one noise setting.

    Pair noise with a named mapping is the harness's label file
    (`write_pair_noise`) of the same subset.
    """
    if noise_type != "pair" or args.pair_mapping == NEXT_CLASS:
        return dict(
            noise_rate=rate, noise_type=noise_type, noise_seed=args.noise_seed
        )
    from ferzoo_bench.cells import Cell
    from ferzoo_bench.cells import write_pair_noise

    folder.mkdir(parents=True, exist_ok=True)
    path = write_pair_noise(
        folder / "pair-noise.txt",
        Cell("audit", rate, "pair", args.noise_seed),
        args.data,
        {
            "limit_per_class": args.subset_per_class,
            "pair_mapping": args.pair_mapping,
        },
        48,  # the labels and names do not depend on the size
    )
    return dict(noise_file=str(path))


def results_header(args, presets, path, name):
    """The results dict before any audit: settings, machine, subset."""
    from ferzoo_bench.machine import machine

    results = {
        "name": name,
        "command": shlex.join(
            ["python", "scripts/audit_benchmark.py", *args.argv]
        ),
        "date": None,
        "machine": machine(),
        "wall_seconds": None,
        "settings": {k: v for k, v in vars(args).items() if k != "argv"},
        "presets": presets,
        "subset": None,
        "pair_mapping": (
            None
            if args.pair_mapping == NEXT_CLASS
            else PAIR_MAPPINGS[args.pair_mapping]
        ),
        "noise": {},
        "complete": False,
    }
    results["earlier_runs_seconds"] = earlier_runs(path, args, presets)
    if args.subset_per_class:
        results["subset"] = {
            "profile": SUBSET_PROFILE,
            "limit_per_class": args.subset_per_class,
            "subset_seed": 0,
            "epochs": subset_profile(args)["epochs"],
            # The profile's recipe entries over the presets' own.
            "recipe": subset_profile(args)["recipe"],
        }
    return results


def audit_rows(args, preset, folder, noise, short, i):
    """Audit one preset (resuming): its table rows, flips and seconds."""
    import ferzoo

    start = time.time()
    df = ferzoo.audit(
        preset=preset,
        folds=args.folds,
        output_dir=folder,
        top=args.top,
        image_size=args.image_size,
        verbose="auto",
        **run_settings(args),
        **noise,
    )
    saved = np.load(folder / "probabilities.npz")
    by_id = df.sort_values("sample_id")
    flipped = by_id["flipped"].to_numpy()
    rows = rows_for(
        df,
        saved["probs"],
        saved["labels"],
        saved["method_rank"],
        flipped,
        short,
        is_baseline=i == 0,
        combined=df.attrs["summary"].get("score_combined", True),
    )
    if i > 0:
        rows = [r for r in rows if not r["ranking"].startswith("(a)")]
    return rows, flipped, round(time.time() - start, 1)


def run(args):
    from ferzoo import training

    started = time.time()
    presets = args.preset or [f"{m}_{args.suffix}" for m in METHODS]
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = run_name(args)
    cache = cache_folder(args, presets)
    cache.mkdir(parents=True, exist_ok=True)
    print(f"[audit-bench] cache: {cache}", file=sys.stderr)
    results = results_header(args, presets, out / f"{name}.json", name)
    prepared = {p: prepare_preset(p, args, cache) for p in presets}
    noises = args.noise or [("symmetric", 0.3), ("pair", 0.3)]
    for noise_type, rate in noises:
        key = f"{noise_type}:{rate}"
        table, retrain = [], []
        noise = noise_kwargs(args, noise_type, rate, cache / key)
        for i, preset in enumerate(presets):
            short = method_of(preset)
            folder = cache / f"{noise_type}_{rate}" / preset
            rows, flipped, seconds = audit_rows(
                args, prepared[preset], folder, noise, short, i
            )
            for r in rows:
                r["preset"] = preset
                r["seconds"] = seconds
            table.extend(rows)
            print(
                f"[audit-bench] {key} {preset}: "
                + ", ".join(f"{r['ranking']} F1 {r['f1']:.3f}" for r in rows),
                file=sys.stderr,
            )
            if args.retrain and (
                not args.retrain_preset or preset in args.retrain_preset
            ):
                # What is done so far, in case the retraining is cut off.
                block(results, noise_type, rate, flipped, table, retrain)
                write(training, out / f"{name}.json", results, started)
                retrain.append(
                    retrain_row(
                        training, args, preset, prepared[preset], folder, noise
                    )
                )
            block(results, noise_type, rate, flipped, table, retrain)
            write(training, out / f"{name}.json", results, started)
    results["complete"] = True
    write(training, out / f"{name}.json", results, started)
    text = markdown(results, presets)
    (cache / f"{name}.md").write_text(text)
    print(text)
    print(f"[audit-bench] wrote {out / f'{name}.json'}", file=sys.stderr)
    return results


def run_settings(args):
    """The run settings shared by the audits and the retraining runs."""
    return dict(
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        limit_per_class=args.subset_per_class,
    )


def retrain_row(training, args, name, preset, folder, noise):
    """Test accuracy trained on the noisy vs. the corrected labels."""
    common = dict(run_settings(args), verbose=0)
    row = {"preset": name}
    start = time.time()
    for which, labels in (
        ("noisy", noise),
        ("corrected", dict(noise_file=str(folder / "corrected_labels.txt"))),
    ):
        test = _train(
            training, preset, folder / f"retrain_{which}", {**common, **labels}
        )
        row[which] = test.get("final", {}).get("accuracy")
        row[f"{which}_best_on_val"] = test.get("best_on_val_accuracy")
    row["gain"] = (
        None
        if row["noisy"] is None or row["corrected"] is None
        else row["corrected"] - row["noisy"]
    )
    row["seconds"] = round(time.time() - start, 1)
    return row


def sized_preset(preset, size, folder):
    """A copy of `preset` at another image size (recipe and backbone).

    `training.train` reads the image size from the preset's recipe and
    the model's input shape from its config; the copy keeps them in step.
    """
    import shutil

    from ferzoo import presets as preset_utils

    source = preset_utils.resolve_preset(preset)
    folder = pathlib.Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(source, folder)
    config = json.loads((folder / "config.json").read_text())
    config["config"]["backbone"]["config"]["image_shape"] = [size, size, 3]
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    meta_path = folder / "metadata.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    meta.setdefault("recipe", {})["image_size"] = size
    meta_path.write_text(json.dumps(meta, indent=2))
    return str(folder)


def _train(training, preset, folder, kwargs):
    import keras

    keras.backend.clear_session()
    results = training.train(preset, output_dir=str(folder), **kwargs)
    return results.get("test") or {}


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data", default="synthetic:1400")
    parser.add_argument(
        "--preset",
        action="append",
        help="Preset to audit (repeatable; the first must be a Baseline). "
        "Default: every method with --suffix.",
    )
    parser.add_argument(
        "--suffix",
        default="small_cnn_synthetic",
        help="Preset suffix of the default presets (every method's).",
    )
    parser.add_argument(
        "--noise",
        action="append",
        type=parse_noise,
        help="symmetric:RATE or pair:RATE (repeatable; default both at 0.3)",
    )
    parser.add_argument("--noise-seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--image-size", type=int)
    parser.add_argument(
        "--subset-per-class",
        type=int,
        help="Train on the benchmark's fixed class-stratified subset of "
        f"the train split (at most N per class; N = "
        f"{PROFILES[SUBSET_PROFILE]['limit_per_class']} is the "
        f"`{SUBSET_PROFILE}` profile's) with presets adapted as that "
        "profile does. Default: the whole split, presets as they are.",
    )
    parser.add_argument(
        "--pair-mapping",
        choices=[*PAIR_MAPPINGS, NEXT_CLASS],
        default="fer-confusions",
        help="Class mapping of pair noise (default: the benchmark's).",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=48)
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="Train each preset on its audit's corrected labels and on the "
        "noisy labels; report the test accuracy of both.",
    )
    parser.add_argument(
        "--retrain-preset",
        action="append",
        help="With --retrain, retrain only these presets (repeatable; "
        "default: every --preset). A retraining run costs two full "
        "trainings per noise setting.",
    )
    parser.add_argument(
        "--out-dir",
        default="runs/audit_benchmark",
        help="Folder of <name>.json; docs/benchmarks/audit for the page.",
    )
    parser.add_argument(
        "--name", help="Name of the results file (default: the data kind)."
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="Folder of the audits and retraining runs (resumable); "
        f"default: under {DEFAULT_CACHE / 'audit_benchmark'}, keyed by "
        "the settings.",
    )
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run(args)


if __name__ == "__main__":
    main()
