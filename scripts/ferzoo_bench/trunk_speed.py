"""Cached-trunk training against full fine-tuning, in one run.

`python scripts/benchmark.py --profile cpu-full --trunk-speed` trains the
profile's Baseline preset both ways in one command, each in its own
subprocess (so each has its own peak memory), one after the other:
full fine-tuning (every layer trainable, images in, the recipe's
augmentation) and the cached mode (the tail on the cached maps of the
whole training split). Each runs `warmup` untimed and `steps` timed
batches; the epoch time over all training faces is extrapolated from the
timed steps. The cache's one-off build cost comes from its `trunk.json`.
Writes `docs/benchmarks/trunk-speed.json`; the page renders it in the
profile's section.
"""

import json
import os
import pathlib
import resource
import subprocess
import sys
import time

MODES = ("full", "cached")


def worker(mode, folder, block, data, trunk_cache, batch, warmup, steps):
    """Train `steps` timed batches one way; print a JSON line."""
    import numpy as np

    from ferzoo.data import load_split
    from ferzoo.data import trunk_cache as cache_lib
    from ferzoo.models import NoisyLabelClassifier
    from ferzoo.models.noisy_label_classifier import DEFAULT_RECIPE

    meta = json.loads((pathlib.Path(folder) / "metadata.json").read_text())
    recipe = {**DEFAULT_RECIPE, **meta["recipe"]}
    size = int(recipe["image_size"])
    kwargs = {} if mode == "full" else {"freeze_until": block}
    model = NoisyLabelClassifier.from_preset(
        folder, num_samples=28709, **kwargs
    )
    model.recipe = recipe
    model.compile()
    if mode == "full":
        ds, info = load_split(
            data,
            "train",
            image_size=size,
            batch_size=batch,
            augment=recipe.get("augment"),
            limit_per_class=(warmup + steps) * batch // 7 + 1,
            epochs=(0, 50),
        )
    else:
        maps, info, _ = cache_lib.split_maps(
            model, data, "train", size, trunk_cache, batch, verbose=False
        )
        ds = cache_lib.map_batches(
            maps, info.labels, batch, True, recipe.get("augment"), 0, (0, 50)
        )
    it = iter(ds)
    for _ in range(warmup):
        model.train_on_batch(*next(it))
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(*next(it))
    seconds = time.perf_counter() - start
    images = steps * batch
    print(
        json.dumps(
            {
                "mode": mode,
                "images_per_second": images / seconds,
                "timed_steps": steps,
                "batch_size": batch,
                "trainable_parameters": int(
                    sum(np.prod(v.shape) for v in model.trainable_variables)
                ),
                "peak_rss_bytes": resource.getrusage(
                    resource.RUSAGE_SELF
                ).ru_maxrss
                * 1024,
            }
        )
    )


def run(folder, block, data, trunk_cache, out_path, batch, warmup, steps):
    """Both modes, each in a subprocess; write the JSON; return it."""
    from ferzoo_bench.machine import machine

    rows = {}
    for mode in MODES:
        cmd = [
            sys.executable,
            __file__,
            mode,
            str(folder),
            block,
            data,
            str(trunk_cache),
            str(batch),
            str(warmup),
            str(steps if mode == "cached" else max(4, steps // 5)),
        ]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            raise RuntimeError(f"{mode}: {proc.stderr[-3000:]}")
        rows[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    from ferzoo.data import trunk_cache as cache_lib

    builds = []
    for marker in pathlib.Path(trunk_cache).glob(f"*/{cache_lib.MARKER}"):
        info = json.loads(marker.read_text())
        if (info.get("parts") or {}).get("num_samples") == 28709:
            builds.append(info)
    n = 28709
    result = {
        "num_train": n,
        "modes": rows,
        "epoch_seconds": {
            m: n / r["images_per_second"] for m, r in rows.items()
        },
        "ratio": rows["cached"]["images_per_second"]
        / rows["full"]["images_per_second"],
        "cache_build": builds[0] if builds else None,
        "load_average": os.getloadavg()[0],
        "machine": machine(),
        "command": " ".join(["python", "scripts/benchmark.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
    }
    pathlib.Path(out_path).write_text(json.dumps(result, indent=1) + "\n")
    return result


def section(path):
    """The page's lines on cached vs full fine-tuning ([] if unmeasured)."""
    path = pathlib.Path(path)
    if not path.is_file():
        return []
    r = json.loads(path.read_text())
    full, cached = r["modes"]["full"], r["modes"]["cached"]
    es = r["epoch_seconds"]
    lines = [
        "",
        "### Speed: cached trunk against full fine-tuning",
        "",
        f"Measured in one command (`{r['command']}`, {r['date']}), the "
        "Baseline preset of this profile trained both ways, each in its own "
        f"process; epoch times are over all {r['num_train']:,} training "
        "faces, extrapolated from the timed steps "
        f"({full['timed_steps']} full, {cached['timed_steps']} cached, "
        f"batch {cached['batch_size']}, after warm-up); 1-minute load "
        f"average {r['load_average']:.1f} on {r['machine']['cpu_count']} "
        "cores at the end (the machine was shared, so both are upper "
        "bounds; the ratio is what compares).",
        "",
        "| mode | trainable parameters | img/s | epoch | peak memory |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in (("full fine-tuning", full), ("cached trunk", cached)):
        mode = "full" if row is full else "cached"
        lines.append(
            f"| {name} | {row['trainable_parameters']:,} | "
            f"{row['images_per_second']:.0f} | {es[mode] / 60:.1f} min | "
            f"{row['peak_rss_bytes'] / 2**30:.1f} GiB |"
        )
    lines += ["", f"Cached epochs are {r['ratio']:.1f}x faster (target: 8x)."]
    build = r.get("cache_build")
    if build:
        lines.append(
            f"The one-off cache of the training split (each face and its "
            f"flip, float16, {build['bytes'] / 2**30:.2f} GiB on disk) took "
            f"{build['seconds'] / 60:.0f} minutes "
            f"({build['images_per_second']:.0f} faces/s, both views)."
        )
    return lines + [""]


if __name__ == "__main__":
    mode, folder, block, data, cache, batch, warmup, steps = sys.argv[1:9]
    worker(
        mode, folder, block, data, cache, int(batch), int(warmup), int(steps)
    )
