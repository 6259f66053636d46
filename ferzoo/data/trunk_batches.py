"""Batches of cached trunk maps, and what augmentation they allow.

`ferzoo.data.trunk_cache` keeps the frozen trunk's map of every image and
of its horizontal flip; `map_batches` batches them the way
`ferzoo.data.make_dataset` batches images (seeded per epoch).

What can be augmented on cached maps (`feature_augment`): the flip (the
cached map of the flipped image is used, not a mirrored map:
convolutions are not mirror-equivariant), a random shift of the map by
up to `crop_padding` pixels rounded to whole cells (at least one) with
zero fill, and random erasing of a rectangle of cells. Pixel-space
transforms (rotation, zoom, colour, RandAugment, resize-then-crop)
cannot be cached and are refused.
"""

import numpy as np

from ferzoo.seeding import epoch_seed

# Recipe keys that have a feature-map version (the rest are refused).
FEATURE_AUGMENT_KEYS = ("flip", "crop_padding", "erasing")


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
