"""Cached trunk maps (`ferzoo.trunk`): the cache on disk and its batches.

With `freeze_until`, `ferzoo.training.train` computes the frozen trunk's
map of every image and of its horizontal flip once (`TrunkCache`, float16
on disk, keyed by the trunk's weights, the image size, the data and the
block) and trains on batches of those maps (`map_batches`).

What can be augmented on cached maps (`feature_augment`): the flip (the
cached map of the flipped image is used, not a mirrored map:
convolutions are not mirror-equivariant), a random shift of the map by
up to `crop_padding` pixels rounded to whole cells (at least one) with
zero fill, and random erasing of a rectangle of cells. Pixel-space
transforms (rotation, zoom, colour, RandAugment, resize-then-crop)
cannot be cached and are refused.
"""

import hashlib
import json
import os
import pathlib

import numpy as np

from ferzoo.seeding import epoch_seed

CACHE_VERSION = 1
MARKER = "trunk.json"
# Recipe keys that have a feature-map version (the rest are refused).
FEATURE_AUGMENT_KEYS = ("flip", "crop_padding", "erasing")


def default_cache_dir():
    """`$FERZOO_CACHE/trunks`, else `~/.cache/ferzoo/trunks`."""
    root = os.environ.get("FERZOO_CACHE") or "~/.cache/ferzoo"
    return pathlib.Path(root).expanduser() / "trunks"


# --- Augmentation of cached maps -----------------------------------------
def feature_augment(augment):
    """The map-space version of an augmentation recipe.

    `flip` (the cached flipped view), `crop_padding` (pixels, converted
    by the caller to cells: at least one cell when set) and `erasing`
    (probability) carry over; any other active key raises `ValueError`,
    since it cannot be applied to cached maps.
    """
    augment = dict(augment or {})
    other = sorted(
        k for k, v in augment.items() if v and k not in FEATURE_AUGMENT_KEYS
    )
    if other:
        from ferzoo.errors import PresetError

        raise PresetError(
            f"augmentation {other} works on pixels and cannot be applied to "
            "cached trunk maps; with `freeze_until` the recipe may use "
            f"{', '.join(FEATURE_AUGMENT_KEYS)} only (drop the others from "
            "the recipe's `augment`)."
        )
    return {k: augment[k] for k in FEATURE_AUGMENT_KEYS if augment.get(k)}


def cells_of_padding(padding_px, image_size, map_size):
    """Pixel `crop_padding` as whole map cells (at least 1 when set)."""
    if not padding_px:
        return 0
    return max(1, int(round(padding_px * map_size / image_size)))


def _shift(maps, dy, dx):
    """Shift each map by `(dy, dx)` cells with zero fill (a pad-and-crop)."""
    out = np.zeros_like(maps)
    h, w = maps.shape[1:3]
    for i in range(len(maps)):
        y, x = int(dy[i]), int(dx[i])
        src = maps[i, max(0, -y) : h - max(0, y), max(0, -x) : w - max(0, x)]
        out[i, max(0, y) : max(0, y) + src.shape[0]][
            :, max(0, x) : max(0, x) + src.shape[1]
        ] = src
    return out


def _erase(maps, rng, probability):
    """Zero one random rectangle of cells (2-33% of the map) with `p`."""
    h, w = maps.shape[1:3]
    for i in np.nonzero(rng.random(len(maps)) < probability)[0]:
        area = rng.uniform(0.02, 0.33) * h * w
        ratio = np.exp(rng.uniform(np.log(0.3), np.log(3.3)))
        eh = int(min(h, max(1, round(np.sqrt(area * ratio)))))
        ew = int(min(w, max(1, round(np.sqrt(area / ratio)))))
        y, x = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
        maps[i, y : y + eh, x : x + ew] = 0
    return maps


# --- Batches from maps (or images) ---------------------------------------
def epoch_plan(n, batch_size, seed, epoch, shuffle=True, flip=False):
    """The epoch's batches: `[(ids, flipped)]`, from `(seed, epoch)` only.

    The same plan drives cached maps and, in tests, images through the
    live frozen trunk, so the two see the same order and flips.
    """

    rng = np.random.default_rng(epoch_seed(seed, epoch))
    order = rng.permutation(n) if shuffle else np.arange(n)
    flips = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    flips = flips[order]
    return rng, [
        (order[i : i + batch_size], flips[i : i + batch_size])
        for i in range(0, n, batch_size)
    ]


def map_batches(
    views,
    labels,
    batch_size,
    training=False,
    augment=None,
    seed=0,
    epochs=None,
    padding_cells=0,
):
    """`tf.data` batches of cached maps: `({"features", "features_flipped",
    "sample_ids"}, labels)`.

    `views` is `(N, 2, h, w, c)` (the image's map and its flipped
    image's map), e.g. a `TrunkCache` array, or a dict of such arrays:
    `"features"` and extra frozen tensors of a method (DWMCA's), each
    batched as `extra_<name>` (the flipped image's for a flipped
    sample; shifts and erasing apply to `features` only). Training
    batches cover
    epochs `epochs = (first, last)` back to back, each shuffled and
    augmented from `(seed, epoch)` alone (as `ferzoo.data.make_dataset`),
    so a resumed run sees the epoch it would have seen. A flipped sample
    swaps its two views; crops and erasing apply to its map only.
    """
    import tensorflow as tf

    extras = {}
    if isinstance(views, dict):
        extras = {k: v for k, v in views.items() if k != "features"}
        views = views["features"]
    labels = np.asarray(labels, "int32")
    n = len(labels)
    shape = tuple(views.shape[2:])
    aug = feature_augment(augment) if training else {}
    first, last = epochs if (training and epochs) else (0, 1)

    def batches():
        for epoch in range(int(first), int(last)):
            rng, plan = epoch_plan(
                n, batch_size, seed, epoch, training, bool(aug.get("flip"))
            )
            for ids, flipped in plan:
                # Sorted reads of a memory-mapped file are much faster.
                rows = np.argsort(ids)
                pair = np.empty((len(ids), 2, *shape), views.dtype)
                pair[rows] = views[ids[rows]]
                swap = flipped[:, None, None, None]
                a = np.where(swap, pair[:, 1], pair[:, 0])
                b = np.where(swap, pair[:, 0], pair[:, 1])
                if padding_cells:
                    dy, dx = rng.integers(
                        -padding_cells, padding_cells + 1, (2, len(ids))
                    )
                    a = _shift(a, dy, dx)
                    b = _shift(b, dy, -dx)  # the flipped view mirrors x
                if aug.get("erasing"):
                    a = _erase(a.copy(), rng, float(aug["erasing"]))
                x = {
                    "features": a,
                    "features_flipped": b,
                    "sample_ids": ids.astype("int32"),
                }
                for name, array in extras.items():
                    both = np.empty((len(ids), *array.shape[1:]), array.dtype)
                    both[rows] = array[ids[rows]]
                    view = flipped.astype("int64")
                    x[f"extra_{name}"] = both[np.arange(len(ids)), view]
                yield x, labels[ids]

    spec = tf.TensorSpec((None, *shape), tf.as_dtype(views.dtype))
    signature = (
        {
            "features": spec,
            "features_flipped": spec,
            "sample_ids": tf.TensorSpec((None,), tf.int32),
            **{
                f"extra_{k}": tf.TensorSpec(
                    (None, *v.shape[2:]), tf.as_dtype(v.dtype)
                )
                for k, v in extras.items()
            },
        },
        tf.TensorSpec((None,), tf.int32),
    )
    ds = tf.data.Dataset.from_generator(batches, output_signature=signature)
    steps = -(-n // int(batch_size)) * (int(last) - int(first))
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    return ds.prefetch(4)


# --- The cache on disk ---------------------------------------------------
def weights_hash(weights):
    """SHA-1 of weight values (names excluded)."""
    digest = hashlib.sha1()
    for weight in weights:
        value = np.ascontiguousarray(np.asarray(weight.numpy()))
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def data_fingerprint(info):
    """SHA-1 of a split's samples: data spec, sources in order, file stats.

    Labels and noise are left out (they do not change a map), so every
    noise setting reuses one cache; a changed, added, removed or
    reordered file changes it.
    """
    digest = hashlib.sha1()
    digest.update(json.dumps([info.data, info.split]).encode())
    for source in info.sources or info.names:
        digest.update(str(source).encode())
        path = str(source)
        if os.path.isfile(path):
            stat = os.stat(path)
            digest.update(f":{stat.st_size}:{stat.st_mtime_ns}".encode())
        digest.update(b"\0")
    return digest.hexdigest()


class TrunkCache:
    """The trunk's float16 maps of one split, on disk, keyed.

    The key hashes the frozen weights (`model.trunk_weights()`), the
    image size, the split's data fingerprint and the block (and the
    shapes stored); a change to any of them is another key, so another
    folder. A folder holds `trunk.json` (the key's parts; ferzoo's
    marker), `maps.npy`, `(N, 2, h, w, c)` float16, view 0 the image's
    map and view 1 its flipped image's, and one `extra-<name>.npy` per
    extra tensor of the method (`model.trunk_outputs`, DWMCA's). Files
    are written to temporary names and renamed into place; an existing
    folder without the marker (not written by ferzoo) is never touched.
    """

    def __init__(self, root, model, info, image_size):
        self.model = model
        split = model.trunk_split
        self.parts = {
            "version": CACHE_VERSION,
            "block": split.block,
            "map_shape": list(split.map_shape),
            "image_size": int(image_size),
            "weights_sha1": weights_hash(model.trunk_weights()),
            "data": data_fingerprint(info),
            "num_samples": int(info.num_samples),
        }
        shape = model.backbone.input_shape[1:]
        probe = model.trunk_outputs(np.zeros((1, *shape), "float32"))
        self.extras = {
            k: tuple(int(d) for d in v.shape[1:])
            for k, v in probe.items()
            if k != "features"
        }
        if self.extras:  # only then: a plain trunk's key stays as it was
            self.parts["extras"] = {k: list(v) for k, v in self.extras.items()}
        key = hashlib.sha1(
            json.dumps(self.parts, sort_keys=True).encode()
        ).hexdigest()[:16]
        self.folder = pathlib.Path(root).expanduser() / key
        self.path = self.folder / "maps.npy"

    def _paths(self):
        names = {"features": self.path}
        for name in self.extras:
            names[name] = self.folder / f"extra-{name}.npy"
        return names

    def exists(self):
        marker = self.folder / MARKER
        if not marker.is_file():
            return False
        if not all(p.is_file() for p in self._paths().values()):
            return False
        try:
            return json.loads(marker.read_text()).get("parts") == self.parts
        except (ValueError, OSError):
            return False

    def load(self):
        """The maps (memory-mapped); a dict with the extras if any."""
        arrays = {
            name: np.load(path, mmap_mode="r")
            for name, path in self._paths().items()
        }
        return arrays if self.extras else arrays["features"]

    def build(self, dataset, verbose=True, batch_size=64):
        """Run the trunk over `dataset`'s images (in order) and store them.

        `dataset` yields `({"images", "sample_ids"}, labels)` batches of
        the split without shuffling or augmentation. Returns the stats
        (seconds, images per second, bytes).
        """
        import time

        from ferzoo.errors import DataError

        marker = self.folder / MARKER
        if self.folder.exists() and not marker.is_file():
            raise DataError(
                "exists and was not written by ferzoo (no trunk.json); "
                "remove it or choose another --trunk-cache",
                path=self.folder,
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        if not marker.is_file():
            _atomic_text(marker, json.dumps({"parts": None}))
        n = self.parts["num_samples"]
        shapes = {"features": self.model.trunk_split.map_shape, **self.extras}
        tmps = {
            name: path.with_name(f".{path.stem}-{os.getpid()}.npy.tmp")
            for name, path in self._paths().items()
        }
        outs = {
            name: np.lib.format.open_memmap(
                tmps[name], "w+", np.float16, (n, 2, *shapes[name])
            )
            for name in tmps
        }
        trunk = self.model.trunk_split.trunk
        start, done = time.perf_counter(), 0
        try:
            for x, _ in dataset:
                images = np.asarray(x["images"])
                ids = np.asarray(x["sample_ids"])
                both = np.concatenate([images, images[:, :, ::-1]], 0)
                if self.extras:
                    values = self.model.trunk_outputs(both)
                else:  # compiled, for the one array
                    values = {"features": trunk.predict_on_batch(both)}
                k = len(images)
                for name, out in outs.items():
                    value = np.asarray(values[name])
                    out[ids, 0] = value[:k].astype(np.float16)
                    out[ids, 1] = value[k:].astype(np.float16)
                done += k
                if verbose and (done // k) % 50 == 0:
                    rate = done / (time.perf_counter() - start)
                    print(
                        f"[ferzoo] trunk cache {done}/{n} images "
                        f"({rate:.0f}/s)",
                        flush=True,
                    )
            if done != n:
                raise DataError(
                    f"the split gave {done} images for {n} samples",
                    path=self.folder,
                )
            for name, out in outs.items():
                out.flush()
            outs.clear()
            for name, path in self._paths().items():
                os.replace(tmps[name], path)
        except BaseException:
            outs.clear()
            for tmp in tmps.values():
                tmp.unlink(missing_ok=True)
            raise
        seconds = time.perf_counter() - start
        stats = {
            "seconds": seconds,
            "images_per_second": n / seconds if seconds else None,
            "bytes": sum(p.stat().st_size for p in self._paths().values()),
        }
        _atomic_text(marker, json.dumps({"parts": self.parts, **stats}))
        return stats

    def stats(self):
        marker = json.loads((self.folder / MARKER).read_text())
        return {k: v for k, v in marker.items() if k != "parts"}


def _atomic_text(path, text):
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


# --- From a data spec -------------------------------------------------------
def split_maps(
    model,
    data,
    split,
    image_size,
    cache_dir=None,
    batch_size=64,
    verbose=True,
    **load_kwargs,
):
    """`(maps, info, stats)`: the cached maps of a whole split.

    Builds the cache on first use (the split in file order, no noise, no
    augmentation); later calls with the same key only open it
    (memory-mapped). `load_kwargs` go to `ferzoo.data.load_split`
    (`limit_per_class`, `on_error`, `classes`).
    """
    from ferzoo.data import load_split

    split_obj = model.trunk_split
    if split_obj is None:
        raise ValueError("the model has no frozen trunk (`freeze_until`)")
    # Streamed from the files where the data has them: a split is read
    # once, and holding it in memory at the trunk's input size would not
    # fit (28,709 FER2013 faces at 208 px are 3.7 GB).
    load_kwargs.setdefault("stream", True)
    ds, info = load_split(
        data,
        split,
        image_size=image_size,
        batch_size=batch_size,
        training=False,
        **load_kwargs,
    )
    cache = TrunkCache(
        cache_dir or default_cache_dir(), model, info, image_size
    )
    if not cache.exists():
        if verbose:
            print(
                f"[ferzoo] caching the trunk's maps (up to {split_obj.block},"
                f" {'x'.join(map(str, split_obj.map_shape))}) of the "
                f"{split} split ({info.num_samples} images and their flips) "
                f"in {cache.folder}",
                flush=True,
            )
        cache.build(ds, verbose=verbose)
    elif verbose:
        print(f"[ferzoo] trunk cache of the {split} split: {cache.folder}")
    return cache.load(), info, dict(cache.stats(), folder=str(cache.folder))


def take_rows(maps, rows):
    """`maps[rows]` (an array or a dict of arrays); all rows: as is."""
    if isinstance(maps, dict):
        return {k: take_rows(v, rows) for k, v in maps.items()}
    if np.array_equal(rows, np.arange(len(maps))):
        return maps
    return maps[np.sort(rows)][np.argsort(np.argsort(rows))]


def rows_of(info, full_info):
    """Rows of `full_info`'s split that hold `info`'s samples, in order."""
    where = {s: i for i, s in enumerate(full_info.sources)}
    try:
        return np.array([where[s] for s in info.sources], "int64")
    except KeyError as e:
        raise ValueError(
            f"sample {e} of the {info.split} split is not in the cached "
            f"{full_info.split} split"
        ) from None


def cached_datasets(
    model,
    data,
    infos,
    recipe,
    seed,
    epochs,
    cache_dir=None,
    verbose=True,
    **load_kwargs,
):
    """Training, val and test batches of cached maps for `train`.

    `infos` maps `"train"`, `"val"`, `"test"` to the `DatasetInfo` of
    what `train` loaded (None where absent); each one's samples are
    looked up by source in its split's cache (a val split carved from
    the training split in the training split's). Returns the three
    datasets (None where absent) and a report of the caches.
    """
    size = int(recipe["image_size"])
    batch = int(recipe["batch_size"])
    caches, report = {}, {}

    def maps_for(info):
        for split in dict.fromkeys([info.split, "train"]):
            if split not in caches:
                kwargs = dict(load_kwargs)
                if split != "train":  # the subset is the training split's
                    kwargs.pop("limit_per_class", None)
                caches[split] = split_maps(
                    model, data, split, size, cache_dir, batch, verbose,
                    **kwargs,
                )  # fmt: skip
                report[split] = caches[split][2]
            maps, full, _ = caches[split]
            try:
                rows = rows_of(info, full)
            except ValueError:
                continue
            return take_rows(maps, rows)
        raise ValueError(f"no cached split holds the {info.split} samples")

    h = model.trunk_split.map_shape[0]
    padding = (recipe.get("augment") or {}).get("crop_padding")
    out = []
    for name in ("train", "val", "test"):
        info = infos.get(name)
        if info is None:
            out.append(None)
            continue
        training = name == "train"
        out.append(
            map_batches(
                maps_for(info),
                info.labels,
                batch,
                training=training,
                augment=recipe.get("augment") if training else None,
                seed=seed,
                epochs=epochs if training else None,
                padding_cells=cells_of_padding(padding, size, h)
                if training
                else 0,
            )
        )
    return (*out, report)
