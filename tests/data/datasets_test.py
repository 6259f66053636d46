import numpy as np
import pytest

import ferzoo.data
from ferzoo.errors import DataError
from tests.data.readers_test import make_folder


def _collect(ds):
    xs, ids, ys = [], [], []
    for x, y in ds:
        xs.append(x["images"].numpy())
        ids.append(x["sample_ids"].numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ids), np.concatenate(ys)


def test_make_dataset_structure():
    images = np.arange(10 * 8 * 8, dtype="uint8").reshape(10, 8, 8)
    labels = np.arange(10, dtype="int32") % 7
    ds = ferzoo.data.make_dataset(images, labels, batch_size=4)
    x, y = next(iter(ds))
    assert set(x) == {"images", "sample_ids"}
    assert x["images"].dtype.name == "uint8" and y.dtype.name == "int32"
    assert x["sample_ids"].dtype.name == "int32"
    assert tuple(x["images"].shape) == (4, 8, 8, 3)
    xs, ids, ys = _collect(ds)
    np.testing.assert_array_equal(ids, np.arange(10))
    np.testing.assert_array_equal(xs[..., 1], images)
    np.testing.assert_array_equal(ys, labels)


def test_training_shuffle_keeps_ids_aligned_and_is_seeded():
    images = np.arange(20, dtype="uint8")[:, None, None, None] * np.ones(
        (1, 4, 4, 3), "uint8"
    )
    labels = np.arange(20, dtype="int32") % 7
    ds = ferzoo.data.make_dataset(images, labels, 8, training=True, seed=1)
    xs, ids, ys = _collect(ds)
    assert sorted(ids.tolist()) == list(range(20))
    assert ids.tolist() != list(range(20))
    np.testing.assert_array_equal(xs[:, 0, 0, 0], ids)  # image follows id
    np.testing.assert_array_equal(ys, labels[ids])
    again = ferzoo.data.make_dataset(images, labels, 8, training=True, seed=1)
    np.testing.assert_array_equal(_collect(again)[1], ids)
    epoch2 = _collect(ds)[1]
    assert epoch2.tolist() != ids.tolist()  # reshuffled each epoch


def test_augmented_dataset_is_deterministic_and_changes_images():
    images, labels = ferzoo.data.make_synthetic_faces(16, image_size=32)
    recipe = {"flip": True, "crop_padding": 4, "erasing": 0.5}

    def run(seed):
        ds = ferzoo.data.make_dataset(
            images, labels, 8, training=True, augment=recipe, seed=seed
        )
        return _collect(ds)

    a, ids, _ = run(0)
    b, _, _ = run(0)
    c, _, _ = run(1)
    assert a.dtype == np.float32 and a.shape == (16, 32, 32, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.abs(a - images[ids][..., None]).mean() > 5
    # Evaluation datasets are not augmented.
    plain = ferzoo.data.make_dataset(images, labels, 8, augment=recipe)
    np.testing.assert_array_equal(_collect(plain)[0][..., 0], images)


def test_resize_then_crop_shapes():
    images = np.zeros((4, 48, 48, 3), "uint8")
    recipe = {"resize_then_crop": [56, 48]}
    train = ferzoo.data.make_dataset(
        images, np.zeros(4, "int32"), 4, training=True, augment=recipe
    )
    test = ferzoo.data.make_dataset(images, np.zeros(4, "int32"), 4,
                                    augment=recipe)  # fmt: skip
    assert next(iter(train))[0]["images"].shape == (4, 48, 48, 3)
    assert next(iter(test))[0]["images"].shape == (4, 48, 48, 3)
    with pytest.raises(ValueError, match="unknown key"):
        ferzoo.data.make_dataset(images, np.zeros(4, "int32"), augment={"x": 1})


def test_load_split_synthetic_with_noise():
    ds, info = ferzoo.data.load_split(
        "synthetic:140", image_size=32, batch_size=32, noise_rate=0.3,
        noise_seed=5,
    )  # fmt: skip
    assert ds.ferzoo_info is info
    assert info.num_samples == 140
    assert np.bincount(info.clean_labels).tolist() == [20] * 7
    assert info.class_names == ferzoo.data.SYNTHETIC_CLASS_NAMES
    assert int(info.noise_mask.sum()) == 42
    np.testing.assert_array_equal(
        info.noise_mask, info.labels != info.clean_labels
    )
    _, ids, ys = _collect(ds)
    np.testing.assert_array_equal(ys, info.labels[ids])  # noisy in batches
    _, again = ferzoo.data.load_split(
        "synthetic:140", image_size=32, noise_rate=0.3, noise_seed=5
    )
    np.testing.assert_array_equal(again.labels, info.labels)
    _, test = ferzoo.data.load_split("synthetic:140", "test", noise_rate=0.3)
    assert test.clean_labels is None and test.num_samples == 35
    assert "noise" in info.summary() and '"num_samples": 140' in info.to_json()


def test_load_split_imagefolder_and_fer2013_layouts(tmp_path):
    make_folder(tmp_path / "train", classes=("happy", "sad"), per_class=4)
    make_folder(tmp_path / "val", classes=("happy", "sad"), per_class=1)
    _, info = ferzoo.data.load_split(f"imagefolder:{tmp_path}", "val")
    assert info.num_samples == 2 and info.class_names == ["happy", "sad"]
    with pytest.raises(DataError, match="no 'test' split"):
        ferzoo.data.load_split(f"imagefolder:{tmp_path}", "test")
    ds, info = ferzoo.data.load_split(
        f"fer2013:{tmp_path}", limit_per_class=2, image_size=16
    )
    assert info.num_classes == 7 and info.counts == [0, 0, 0, 2, 0, 2, 0]
    assert next(iter(ds))[0]["images"].shape == (4, 16, 16, 3)


def test_load_split_noise_file(tmp_path):
    make_folder(tmp_path / "d", classes=("happy", "sad"), per_class=2)
    spec = f"fer2013:{tmp_path / 'd'}"
    _, info = ferzoo.data.load_split(spec)
    # RAF-DB labels: happiness = 4, sadness = 5; flip the first to sad.
    noise = tmp_path / "noise.txt"
    noise.write_text(
        "\n".join(f"{n} {r}" for n, r in zip(info.names, [5, 4, 5, 5]))
    )
    _, noisy = ferzoo.data.load_split(spec, noise_file=noise)
    assert noisy.labels.tolist() == [5, 3, 5, 5]
    assert noisy.clean_labels.tolist() == [3, 3, 5, 5]
    assert noisy.noise_mask.tolist() == [True, False, False, False]
    _, folder = ferzoo.data.load_split(f"imagefolder:{tmp_path / 'd'}")
    with pytest.raises(ValueError, match="RAF-DB classes"):
        ferzoo.data.load_split(
            f"imagefolder:{tmp_path / 'd'}", noise_file=noise
        )


def test_bad_specs():
    with pytest.raises(ValueError, match="synthetic.*imagefolder.*fer2013"):
        ferzoo.data.load_split("mnist:/tmp")
    with pytest.raises(ValueError, match="needs a path"):
        ferzoo.data.load_split("rafdb")
    with pytest.raises(ValueError, match="Received: split='dev'"):
        ferzoo.data.load_split("synthetic", "dev")
    with pytest.raises(ValueError, match="noise_type"):
        ferzoo.data.load_split("synthetic", noise_type="open")


def test_imagefolder_splits_share_the_train_class_list(tmp_path):
    # An extra `train/contempt/` folder: the test split must be scored
    # under the train split's 3 classes, not renumbered as its own 2.
    make_folder(tmp_path / "train", classes=("contempt", "happy", "sad"))
    make_folder(tmp_path / "test", classes=("happy", "sad"), per_class=2)
    spec = f"imagefolder:{tmp_path}"
    _, train = ferzoo.data.load_split(spec, image_size=8)
    _, test = ferzoo.data.load_split(spec, "test", image_size=8)
    assert train.class_names == test.class_names == ["contempt", "happy", "sad"]
    names = [test.class_names[i] for i in test.labels]
    assert names == ["happy", "happy", "sad", "sad"]
    # A test class folder the train split does not have is an error that
    # names the folder.
    make_folder(tmp_path / "test", classes=("surprise",), per_class=1)
    bad = str(tmp_path / "test" / "surprise")
    with pytest.raises(DataError, match=f"{bad}: unknown class folder"):
        ferzoo.data.load_split(spec, "test", image_size=8)


def test_imagefolder_explicit_classes(tmp_path):
    make_folder(tmp_path / "train", classes=("happy", "sad"))
    make_folder(tmp_path / "val", classes=("sad",), per_class=1)
    spec = f"imagefolder:{tmp_path}"
    order = ["sad", "neutral", "happy"]  # neutral has no images anywhere
    _, train = ferzoo.data.load_split(spec, image_size=8, classes=order)
    _, val = ferzoo.data.load_split(spec, "val", image_size=8, classes=order)
    assert train.class_names == val.class_names == order
    assert train.labels.tolist() == [2, 2, 2, 0, 0, 0]
    assert val.labels.tolist() == [0] and train.counts == [3, 0, 3]
    with pytest.raises(DataError, match="train/happy: unknown class folder"):
        ferzoo.data.load_split(spec, image_size=8, classes=["sad"])
    with pytest.raises(ValueError, match="imagefolder and rafdb data only"):
        ferzoo.data.load_split("synthetic:14", classes=["a", "b"])


def test_noise_file_naming_unknown_ids_is_refused_or_counted(tmp_path):
    from tests.data.splits_test import rafdb

    spec, entries = rafdb(tmp_path / "raf")
    train = [(name, code) for name, code in entries if name.startswith("tr")]
    lines = [f"{name} {code}" for name, code in train]
    lines += ["../../etc/passwd 1", "nobody/ghost.png 2"]
    path = tmp_path / "noise.txt"
    path.write_text("\n".join(lines) + "\n")
    first_bad = len(train) + 1
    with pytest.raises(DataError, match=f"line {first_bad}: '../../etc/"):
        ferzoo.data.load_training_splits(spec, noise_file=str(path))
    # Skipped and counted; a name outside the per-class subset is known.
    splits = ferzoo.data.load_training_splits(
        spec,
        noise_file=str(path),
        on_error="skip",
        limit_per_class=5,
        val_fraction=0.0,
    )
    unknown = splits.train_info.noise["unknown_ids"]
    assert unknown["count"] == 2
    assert unknown["first"] == [
        f"line {first_bad}: ../../etc/passwd",
        f"line {first_bad + 1}: nobody/ghost.png",
    ]
