"""Cached trunk maps (`ferzoo.trunk`): the cache on disk and its batches.

With `freeze_until`, `ferzoo.training.train` computes the frozen trunk's
map of every image and of its horizontal flip once (`TrunkCache`, float16
on disk, keyed by the trunk's weights, the image size, the data and the
block) and trains on batches of those maps (`map_batches`, in
`ferzoo.data.trunk_batches` with the augmentations maps allow).
"""

import hashlib
import json
import os
import pathlib

import numpy as np

from ferzoo.data.trunk_batches import FEATURE_AUGMENT_KEYS  # noqa: F401
from ferzoo.data.trunk_batches import cells_of_padding
from ferzoo.data.trunk_batches import epoch_plan  # noqa: F401 (re-exported)
from ferzoo.data.trunk_batches import feature_augment  # noqa: F401
from ferzoo.data.trunk_batches import map_batches

CACHE_VERSION = 1
MARKER = "trunk.json"


def default_cache_dir():
    """`$FERZOO_CACHE/trunks`, else `~/.cache/ferzoo/trunks`."""
    root = os.environ.get("FERZOO_CACHE") or "~/.cache/ferzoo"
    return pathlib.Path(root).expanduser() / "trunks"


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
