"""Benchmark every ferzoo method on FER2013 under label noise, and speed.

The grid trains each method of `ferzoo.models` (its
`<method>_<backbone>_<dataset>` preset, adjusted by the profile) at each
noise setting of the train split (symmetric rates, and pair noise with a
stated class mapping; seeded per class: every method sees the same
flips), selects on the val split and reports on the test split:
best-on-val and mean-of-last-5 test accuracy and macro-F1, the
noise-detection report (ROC-AUC of the per-sample clean score against
the flip mask; relabel precision) and the training-set fit of the
flipped samples (memorisation). Extra seeds (model and noise seed) of
the Baseline and the strongest methods give the spread the gaps are
judged against. Each finished cell is a small JSON under
`docs/benchmarks/cells/<profile>/`, so a rerun skips it; an interrupted
cell resumes from its run folder (`ferzoo.training.train`'s resume) in
the cache folder. `docs/benchmarks.md`, the results JSON and the PNG
plots are written from those cells only. The code is the package
`scripts/ferzoo_bench/` (profiles, cells, callbacks, sections, targets,
plots, peers, speed, report); this file is its command line.

Profiles: `cpu` (a tiny CNN from scratch on a class-stratified
800-per-class subset of the train split, 2-core CPU), `cpu-pretrained`
(the `<method>_dlib_resnet29_fer2013` presets, 112 px, on the same
subset, 24 epochs at a slower decay; 0/10/20/30% symmetric and 30%
pair noise; seeds 0-2 for the Baseline and the two strongest methods
at 0% and 30%), `gpu`
(the same pretrained presets at their own recipes on the full train
split; one `--cell` per device command, with `--time-budget` to stop and
resume across commands), `cpu-full` (all 28,709 training faces, the
dlib presets at 208 px with the backbone frozen up to `conv256_1` and
its maps cached once: `ferzoo.trunk`; 0/30/40% symmetric and 30% pair
noise; seeds 0-2 of every method at 30%, run first; `--trunk-speed`
times its cached epochs against full fine-tuning), `tiny` (the test's
seconds-long grid).

`--peer NAME[=PATH]` measures a reference model trained elsewhere on the
same test split (`fer-mini-xception`: the `fer` package's
`data/emotion_model.hdf5`; `faceapi-expression`: face-api's expression
net converted to a `.keras` file) into `docs/benchmarks/peers/`.

`scripts/audit_benchmark.py --out-dir docs/benchmarks/audit` writes the
audit's measurement against cleanlab (`<name>.json`); the page renders
each such file as its "ferzoo-audit vs cleanlab" section, and has no
such section while there is none.

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
The gpu grid's cells: METHOD:0, METHOD:0.1, METHOD:0.2, METHOD:0.3 and
METHOD:0.3:pair for the six methods, then baseline:0:seed1 ...
(seeds 1 and 2 at 0 and 0.3 for the Baseline and the two strongest).

FER2013 is read from `../shared/data/fer2013.tar.gz` (or any `--data`,
e.g. `fer2013:/work/data/fer2013`); a tarball is unpacked once under
`--data-cache`, outside the repository.

Invocations:
    python scripts/benchmark.py                      # the cpu grid + docs
    python scripts/benchmark.py --profile cpu-pretrained   # resumable
    python scripts/benchmark.py --profile cpu-full \
        --data-cache /tmp/ferzoo-data                # resumable
    python scripts/benchmark.py --profile cpu-full --trunk-speed
    python scripts/benchmark.py --noise 0.1 --noise 0.2   # add noise rates
    python scripts/benchmark.py --method scn --method dacfer
    python scripts/benchmark.py --cell scn:0.3:pair --cell baseline:0.3:seed1
    python scripts/benchmark.py --report-only        # rewrite the docs
    python scripts/benchmark.py --profile gpu --cell baseline:0.3 \
        --time-budget 540                            # one device command
    python scripts/benchmark.py --peer fer-mini-xception=PATH/emotion_model.hdf5
    python scripts/benchmark.py --speed              # speed vs PyTorch
    python scripts/benchmark.py --profile tiny --data synthetic:70 \
        --out-dir /tmp/bench --cache-dir /tmp/bench-cache   # the test's
"""

import pathlib
import sys

import click

SCRIPTS = pathlib.Path(__file__).resolve().parent
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

from ferzoo_bench import cells as cells_lib  # noqa: E402
from ferzoo_bench import grid  # noqa: E402
from ferzoo_bench.peers import PEERS  # noqa: E402
from ferzoo_bench.peers import measure  # noqa: E402
from ferzoo_bench.profiles import DEFAULT_CACHE  # noqa: E402
from ferzoo_bench.profiles import DEFAULT_DATA  # noqa: E402
from ferzoo_bench.profiles import PROFILES  # noqa: E402
from ferzoo_bench.profiles import ROOT  # noqa: E402
from ferzoo_bench.profiles import method_classes  # noqa: E402
from ferzoo_bench.profiles import prepare_data  # noqa: E402
from ferzoo_bench.profiles import preset_folders  # noqa: E402
from ferzoo_bench.profiles import report_profiles  # noqa: E402
from ferzoo_bench.report import write_report  # noqa: E402
from ferzoo_bench.speed import SPEED_CONFIGS  # noqa: E402
from ferzoo_bench.speed import run_speed  # noqa: E402
from ferzoo_bench.speed import speed_section  # noqa: E402, F401
from ferzoo_bench.speed import speed_worker as speed_worker_fn  # noqa: E402


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
    help="One cell METHOD:NOISE[:pair][:seedN] to run (repeatable), e.g. "
    "scn:0.3, scn:0.3:pair, baseline:0.3:seed1.",
)
@click.option(
    "--time-budget",
    type=float,
    default=None,
    help="Seconds after which a cell stops at an epoch end (resumable).",
)
@click.option(
    "--override",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a profile key for this run (repeatable): epochs=24, "
    "limit_per_class=400, recipe.learning_rate=3e-4. The cells go to a "
    "derived profile NAME~<hash> and the page is not rewritten.",
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
@click.option(
    "--peer",
    "peer_specs",
    multiple=True,
    help="Measure a reference model on the test split: NAME or NAME=PATH "
    f"(repeatable; names: {', '.join(PEERS)}).",
)
@click.option(
    "--trunk-speed",
    is_flag=True,
    help="Time the profile's Baseline cached against full fine-tuning "
    "(a profile with freeze_until), into benchmarks/trunk-speed.json.",
)
@click.option("--trunk-speed-steps", default=40, show_default=True)
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
    overrides,
    report_only,
    no_report,
    speed,
    speed_size,
    speed_batch,
    speed_warmup,
    speed_steps,
    speed_rounds,
    speed_latency,
    peer_specs,
    trunk_speed,
    trunk_speed_steps,
    speed_worker,
):
    """Benchmark the methods under label noise, or speed against PyTorch.

    Runs the grid's missing cells (finished ones are cached, interrupted
    ones resume), then writes docs/benchmarks.md, its JSON and plots.

    \b
    Examples:
      python scripts/benchmark.py
      python scripts/benchmark.py --profile cpu-pretrained
      python scripts/benchmark.py --profile gpu --cell scn:0.3 --time-budget 540
      python scripts/benchmark.py --peer fer-mini-xception=emotion_model.hdf5
      python scripts/benchmark.py --speed
    """
    timing = (speed_size, speed_batch, speed_warmup, speed_steps, speed_latency)
    if speed_worker is not None:
        speed_worker_fn(SPEED_CONFIGS[speed_worker], *timing)
        return
    if speed:
        run_speed(*timing, out_dir, rounds=speed_rounds)
        write_report(out_dir, cache_dir, report_profiles(out_dir))
        return
    if overrides:
        from ferzoo_bench.profiles import derive_profile

        profile = derive_profile(profile, overrides)
        no_report = True
        click.echo(
            f"[benchmark] profile {profile}: "
            + ", ".join(f"{k}={v}" for k, v in PROFILES[profile]["overrides"])
        )
    if trunk_speed:
        run_trunk_speed(
            profile, prepare_data(data, data_cache), cache_dir, out_dir,
            trunk_speed_steps,
        )  # fmt: skip
        return
    if peer_specs:
        run_peers(peer_specs, prepare_data(data, data_cache), out_dir)
        if not no_report:
            write_report(out_dir, cache_dir, report_profiles(out_dir))
        return
    cells_dir = pathlib.Path(out_dir) / "benchmarks" / "cells" / profile
    if not report_only:
        run_grid(
            profile,
            prepare_data(data, data_cache),
            cache_dir,
            cells_dir,
            noise_rates,
            only_methods,
            cells,
            time_budget,
        )
    if not no_report:
        write_report(out_dir, cache_dir, report_profiles(out_dir, profile))


def run_grid(
    profile, data, cache_dir, cells_dir, noise_rates, only_methods, cells,
    budget,
):  # fmt: skip
    """The requested cells, or the grid: seed 0 first, then extra seeds."""
    spec = PROFILES[profile]
    methods = method_classes()
    found = preset_folders(spec["preset_suffix"], cache_dir)
    if cells:
        batches = [[cells_lib.parse_cell(c) for c in cells]]
    else:
        batches = [grid.plan(spec, methods, noise_rates, only_methods)]
        if not noise_rates:
            batches.append(None)  # planned once seed 0 has run
    failed = []
    for todo in batches:
        if todo is None:
            done = cells_lib.load_cells(cells_dir.parent, profile)
            todo = grid.seed_plan(spec, done, only_methods)
        for cell in todo:
            cls = methods.get(cell.method)
            if cls is None:
                raise click.BadParameter(
                    f"{cell.method!r} is not a method of ferzoo.models "
                    f"({', '.join(methods)})"
                )
            if cls.__name__ not in found:
                click.echo(
                    f"[benchmark] {cell.method}: no *_{spec['preset_suffix']} "
                    "preset yet; skipped."
                )
                continue
            try:
                cells_lib.run_cell(
                    cell, cls, found[cls.__name__], profile, data,
                    cache_dir, cells_dir, budget,
                )  # fmt: skip
            except Exception as e:  # one broken cell must not stop the grid
                import traceback

                traceback.print_exc()
                failed.append(f"{cell.name}: {e}")
    for line in failed:
        click.echo(f"[benchmark] FAILED {line}", err=True)


def run_trunk_speed(profile, data, cache_dir, out_dir, steps):
    """Cached against full fine-tuning of the profile's Baseline."""
    from ferzoo_bench import trunk_speed
    from ferzoo_bench.profiles import profile_preset

    spec = PROFILES[profile]
    if not spec.get("freeze_until"):
        raise click.BadParameter(
            f"profile {profile!r} trains no cached trunk (no freeze_until)",
            param_hint="--trunk-speed",
        )
    name, folder = preset_folders(spec["preset_suffix"], cache_dir)["Baseline"]
    target = pathlib.Path(cache_dir) / "presets" / profile / name
    folder, _, recipe = profile_preset(name, folder, spec, target)
    out = pathlib.Path(out_dir) / "benchmarks" / "trunk-speed.json"
    result = trunk_speed.run(
        folder,
        spec["freeze_until"],
        data,
        pathlib.Path(cache_dir) / "trunks",
        out,
        int(recipe.get("batch_size") or 64),
        3,
        steps,
    )
    rate = {m: r["images_per_second"] for m, r in result["modes"].items()}
    click.echo(
        f"[benchmark] cached {rate['cached']:.0f} img/s, full "
        f"{rate['full']:.0f} img/s: {result['ratio']:.1f}x; written to {out}"
    )


def run_peers(specs, data, out_dir):
    """Measure each `NAME[=PATH]` peer into docs/benchmarks/peers/."""
    for spec in specs:
        name, _, path = spec.partition("=")
        peer = PEERS.get(name)
        if peer is None:
            raise click.BadParameter(
                f"{name!r} is not a peer ({', '.join(PEERS)})"
            )
        path = path or (peer.default_path() if peer.default_path else None)
        if not path or not pathlib.Path(path).exists():
            raise click.BadParameter(
                f"{name}: no model file{f' at {path}' if path else ''}; "
                f"pass --peer {name}=PATH"
            )
        out = pathlib.Path(out_dir) / "benchmarks" / "peers" / f"{name}.json"
        result = measure(peer, path, data, out)
        click.echo(
            f"[benchmark] {peer.label}: accuracy {result['accuracy']:.4f}, "
            f"macro-F1 {result['macro_f1']:.4f} on "
            f"{result['num_samples']} test images"
        )


if __name__ == "__main__":
    main()
