import keras
import numpy as np
import pytest

import ferzoo.data

FULL = {
    "flip": True,
    "crop_padding": 4,
    "rotation": 10,
    "zoom": 0.1,
    "brightness": 0.1,
    "contrast": 0.2,
    "erasing": 0.5,
}


def test_every_recipe_key_runs_in_tf_data_on_this_backend():
    assert keras.backend.backend() in ("tensorflow", "jax")
    x = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), "uint8")
    a = ferzoo.data.augment_images(x, FULL, seed=3)
    b = ferzoo.data.augment_images(x, FULL, seed=3)
    c = ferzoo.data.augment_images(x, FULL, seed=4)
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert 0 <= a.min() and a.max() <= 255


@pytest.mark.large
def test_randaugment_runs_in_tf_data():
    # Slow under KERAS_BACKEND=jax (about 10 s to build and trace).
    x = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), "uint8")
    recipe = {"randaugment": {"num_ops": 2, "factor": 0.3}}
    out = ferzoo.data.augment_images(x, recipe, seed=0)
    assert out.shape == x.shape and not np.array_equal(out, x)


def test_flip_only_flips():
    x = np.random.default_rng(0).integers(0, 255, (16, 8, 8, 3), "uint8")
    out = ferzoo.data.augment_images(x, {"flip": True}, seed=0)
    flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)]
    kept = [np.array_equal(o, i) for o, i in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 0 < sum(flipped) < 16


def test_crop_padding_shifts_within_padding():
    x = np.zeros((8, 16, 16, 3), "uint8")
    x[:, 8, 8] = 255
    out = ferzoo.data.augment_images(x, {"crop_padding": 2}, seed=0)
    for image in out:
        ys, xs = np.nonzero(image[..., 0])
        assert len(ys) <= 1
        if len(ys):
            assert abs(ys[0] - 8) <= 2 and abs(xs[0] - 8) <= 2


def test_bad_recipes():
    with pytest.raises(ValueError, match="unknown key.*'flp'"):
        ferzoo.data.Augmenter({"flp": True})
    with pytest.raises(ValueError, match="resize_then_crop"):
        ferzoo.data.Augmenter({"resize_then_crop": [200, 224]})
