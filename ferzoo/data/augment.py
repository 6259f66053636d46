"""Training augmentation from a recipe dict, with Keras core layers.

The layers run inside `tf.data` (Keras switches its preprocessing layers
to the TensorFlow backend inside a tf.data graph, so this works with
`KERAS_BACKEND=jax` too). Randomness is deterministic and parallel-safe:
each batch gets its own seed from `tf.data.Dataset.random(seed)`, and the
layers draw from that seed instead of their stateful seed generators.

Recipe keys (all optional; a missing key means "off"):

- `flip`: bool. Random horizontal flip.
- `crop_padding`: int. Random shift of up to this many pixels with zero
  fill, i.e. pad-and-random-crop back to the input size.
- `resize_then_crop`: `[resize, crop]`. Resize to `resize` then take a
  random `crop` square (training) or the centre crop (evaluation).
- `rotation`: float. Random rotation of up to this many degrees.
- `zoom`: float. Random zoom in or out by up to this fraction.
- `brightness`, `contrast`: float. Random brightness (fraction of 255)
  and contrast factors.
- `randaugment`: bool or dict. Keras `RandAugment` (dict: `num_ops`,
  `factor`).
- `erasing`: float. Probability of random erasing (applied last).
"""

import numpy as np
import tensorflow as tf

RECIPE_KEYS = (
    "flip",
    "crop_padding",
    "resize_then_crop",
    "rotation",
    "zoom",
    "brightness",
    "contrast",
    "randaugment",
    "erasing",
)


def _seed_generator_from_tensor(seed):
    """A `keras.random.SeedGenerator` whose draws derive from `seed`.

    It holds no variable: the n-th draw returns `seed + [0, n]`, so a
    traced map function gets distinct, fixed offsets per draw site.
    """
    import keras

    class _TensorSeedGenerator(keras.random.SeedGenerator):
        def __init__(self, seed):  # No state variable on purpose.
            self._seed = tf.cast(seed, "int32")
            self._count = 0

        def next(self, ordered=True):
            self._count += 1
            return self._seed + tf.constant([0, 7919], "int32") * self._count

    return _TensorSeedGenerator(seed)


def check_recipe(recipe):
    """Validate a recipe dict; return a plain dict (None -> {})."""
    recipe = dict(recipe or {})
    unknown = sorted(set(recipe) - set(RECIPE_KEYS))
    if unknown:
        raise ValueError(
            f"`augment` has unknown key(s) {unknown}; accepted keys are "
            f"{list(RECIPE_KEYS)}. Received: augment={recipe}"
        )
    crop = recipe.get("resize_then_crop")
    if crop and (len(crop) != 2 or not 0 < int(crop[1]) <= int(crop[0])):
        raise ValueError(
            "`augment['resize_then_crop']` must be [resize, crop] with "
            f"0 < crop <= resize. Received: resize_then_crop={crop}"
        )
    for key in ("crop_padding", "rotation", "zoom", "erasing"):
        if float(recipe.get(key) or 0) < 0:
            raise ValueError(
                f"`augment['{key}']` must be >= 0. "
                f"Received: {key}={recipe[key]}"
            )
    return recipe


class Augmenter:
    """Builds the train and eval transforms of a recipe.

    Args:
        recipe: dict or None. See the module docstring for the keys.
    """

    def __init__(self, recipe=None):
        import keras

        self.recipe = check_recipe(recipe)
        r = self.recipe
        L = keras.layers
        self.train_layers, self.eval_layers = [], []
        crop = r.get("resize_then_crop")
        if crop:
            size, out = int(crop[0]), int(crop[1])
            self.train_layers.append(L.Resizing(size, size))
            self.eval_layers += [L.Resizing(size, size), L.CenterCrop(out, out)]
        if r.get("flip"):
            self.train_layers.append(L.RandomFlip("horizontal"))
        if crop:
            shift = (size - out) / 2 / size
            self.train_layers += [
                L.RandomTranslation(
                    shift, shift, fill_mode="nearest", interpolation="nearest"
                ),
                L.CenterCrop(out, out),
            ]
        self._padding = int(r.get("crop_padding") or 0)
        if r.get("rotation"):
            self.train_layers.append(
                L.RandomRotation(
                    float(r["rotation"]) / 360.0, fill_mode="nearest"
                )
            )
        if r.get("zoom"):
            self.train_layers.append(
                L.RandomZoom(float(r["zoom"]), fill_mode="nearest")
            )
        if r.get("brightness"):
            self.train_layers.append(
                L.RandomBrightness(float(r["brightness"]), value_range=(0, 255))
            )
        if r.get("contrast"):
            self.train_layers.append(
                L.RandomContrast(float(r["contrast"]), value_range=(0, 255))
            )
        if r.get("randaugment"):
            kwargs = r["randaugment"]
            kwargs = kwargs if isinstance(kwargs, dict) else {}
            self.train_layers.append(
                L.RandAugment(value_range=(0, 255), **kwargs)
            )
        if r.get("erasing"):
            self.train_layers.append(
                L.RandomErasing(
                    factor=float(r["erasing"]),
                    value_range=(0, 255),
                    fill_value=0.0,
                )
            )
        self._holder = [None]
        for layer in self.train_layers:
            # Layers draw from the current batch's seed (see module doc).
            layer._get_seed_generator = self._current_seed

    def _current_seed(self, backend=None):
        return self._holder[0]

    @property
    def active(self):
        return bool(self.train_layers or self.eval_layers or self._padding)

    def train(self, images, seed):
        """Augment a batch `(B, H, W, 3)` with a `(2,)` int seed tensor."""
        images = tf.cast(images, "float32")
        self._holder[0] = _seed_generator_from_tensor(seed)
        if self._padding:
            p = self._padding
            h, w = images.shape[1], images.shape[2]
            padded = tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]])
            n = tf.shape(images)[0]
            seeds = tf.random.experimental.stateless_split(
                tf.cast(seed, "int64"), 2
            )
            dy = tf.random.stateless_uniform(
                [n], seeds[0], 0, 2 * p + 1, dtype="int32"
            )
            dx = tf.random.stateless_uniform(
                [n], seeds[1], 0, 2 * p + 1, dtype="int32"
            )
            images = tf.map_fn(
                lambda a: tf.slice(a[0], [a[1], a[2], 0], [h, w, 3]),
                (padded, dy, dx),
                fn_output_signature=tf.float32,
            )
        for layer in self.train_layers:
            images = layer(images, training=True)
        self._holder[0] = None
        return tf.cast(images, "float32")

    def evaluate(self, images):
        """The deterministic eval transform (e.g. resize + centre crop)."""
        if not self.eval_layers:
            return images
        images = tf.cast(images, "float32")
        for layer in self.eval_layers:
            images = layer(images)
        return tf.cast(images, "float32")


def augment_images(images, augment, seed=0):
    """Augment a numpy batch once (for previews and tests).

    Args:
        images: array `(B, H, W, 3)`. RGB pixels in [0, 255].
        augment: dict. A recipe (see the module docstring).
        seed: int. Defaults to `0`.

    Returns:
        A float32 numpy array.

    Example:
    >>> import numpy as np
    >>> import ferzoo.data
    >>> x = np.random.randint(0, 255, (2, 48, 48, 3), "uint8")
    >>> ferzoo.data.augment_images(x, {"flip": True, "crop_padding": 4}).shape
    (2, 48, 48, 3)
    """
    augmenter = Augmenter(augment)
    ds = tf.data.Dataset.from_tensors(np.asarray(images))
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed).batch(2))
    ds = ds.map(lambda x, s: augmenter.train(x, s))
    return next(iter(ds)).numpy()
