"""Cached-trunk training steps in float32 against mixed bfloat16.

`python scripts/ferzoo_bench/dtype_speed.py PRESET_DIR DATA TRUNK_CACHE`
trains the tail of a profile's Baseline preset (e.g. the cpu-full copy a
benchmark run writes) on a seeded subset of the already cached trunk
maps of the training split, under each dtype policy in turn, from the
same seed: the same initial weights, batches and order. It prints one
JSON line per fit: the per-epoch training loss and accuracy and the
median seconds per step (steps after the first `skip` of each fit).
Fits run in the order float32, mixed_bfloat16, then again in the
reverse order for timing, so a change in the machine's load between
them shows. The cache must exist: it is opened, never built (the
frozen trunk computes in float32 under either policy, so both share
its key).
"""

import argparse
import json
import os
import pathlib
import time


def subset(model, data, trunk_cache, size, samples, seed):
    """`(views, labels)` of `samples` seeded rows of the training cache."""
    import numpy as np

    from ferzoo.data import load_split
    from ferzoo.data import trunk_cache as cache_lib

    _, info = load_split(
        data, "train", image_size=size, training=False, stream=True
    )
    cache = cache_lib.TrunkCache(trunk_cache, model, info, size)
    if not cache.exists():
        raise SystemExit(f"no trunk cache at {cache.folder}: build it first")
    rows = np.sort(
        np.random.default_rng(seed).choice(
            info.num_samples, samples, replace=False
        )
    )
    views = np.asarray(cache.load()[rows])
    return views, np.asarray(info.labels)[rows], str(cache.folder)


def fit(folder, policy, block, views, labels, epochs, skip, seed):
    """Train one policy; the row printed for it."""
    import keras
    import numpy as np

    from ferzoo.data import trunk_cache as cache_lib
    from ferzoo.models import NoisyLabelClassifier
    from ferzoo.models.noisy_label_classifier import DEFAULT_RECIPE

    meta = json.loads((pathlib.Path(folder) / "metadata.json").read_text())
    recipe = {**DEFAULT_RECIPE, **meta["recipe"]}
    keras.utils.set_random_seed(seed)
    model = NoisyLabelClassifier.from_preset(
        folder,
        num_samples=len(labels),
        freeze_until=block,
        dtype=policy,
    )
    model.recipe = recipe
    model.compile()
    batch = int(recipe["batch_size"])
    ds = cache_lib.map_batches(
        views, labels, batch, True, recipe.get("augment"), seed, (0, epochs)
    )
    times = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, step, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, step, logs=None):
            times.append(time.perf_counter() - self.start)

    history = model.fit(
        ds,
        epochs=epochs,
        steps_per_epoch=-(-len(labels) // batch),
        verbose=0,
        callbacks=[Timer()],
    )
    steps = len(times) // epochs
    timed = [t for i, t in enumerate(times) if i % steps >= skip]
    return {
        "policy": policy,
        "backend": keras.backend.backend(),
        "tail_compute_dtype": model.trunk_split.tail.layers[-1].compute_dtype,
        "steps_per_epoch": steps,
        "batch_size": batch,
        "median_step_seconds": float(np.median(timed)),
        "mean_step_seconds": float(np.mean(timed)),
        "loss": [float(v) for v in history.history["loss"]],
        "accuracy": [float(v) for v in history.history["accuracy"]],
        "load_average": os.getloadavg()[0],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("preset")
    parser.add_argument("data")
    parser.add_argument("trunk_cache")
    parser.add_argument("--block", default="conv256_1")
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--skip", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from ferzoo.models import NoisyLabelClassifier

    meta = json.loads((pathlib.Path(args.preset) / "metadata.json").read_text())
    size = int(meta["recipe"]["image_size"])
    # The bfloat16 model's cache key must be the float32 cache's.
    probe = NoisyLabelClassifier.from_preset(
        args.preset,
        num_samples=1,
        freeze_until=args.block,
        dtype="mixed_bfloat16",
    )
    views, labels, folder = subset(
        probe, args.data, args.trunk_cache, size, args.samples, args.seed
    )
    print(json.dumps({"cache": folder, "samples": len(labels)}), flush=True)
    order = ["float32", "mixed_bfloat16", "mixed_bfloat16", "float32"]
    for policy in order:
        row = fit(
            args.preset,
            policy,
            args.block,
            views,
            labels,
            args.epochs,
            args.skip,
            args.seed,
        )
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
