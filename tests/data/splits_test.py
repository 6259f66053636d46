import numpy as np
import pytest

import ferzoo.data
from ferzoo.data import readers
from ferzoo.errors import DataError
from tests.data.readers_test import make_folder
from tests.data.readers_test import make_rafdb

# RAF-DB list codes 1..7 (surprise .. neutral), per training image, and the
# number of images per code: 70 training images, 7 test images.
PER_CODE = [12, 10, 10, 14, 10, 6, 8]


def rafdb(tmp_path):
    """A RAF-DB archive whose image i has grey level 3 * i + 2."""
    codes = np.repeat(np.arange(1, 8), PER_CODE)
    codes = np.random.default_rng(7).permutation(codes)
    entries = [(f"train_{i + 1:05d}.jpg", int(c)) for i, c in enumerate(codes)]
    entries += [(f"test_{i + 1:04d}.jpg", i + 1) for i in range(7)]
    values = [3 * i + 2 for i in range(len(entries))]
    make_rafdb(tmp_path, entries, values)
    return f"rafdb:{tmp_path}", entries


def test_carve_val_split_is_stratified_and_seeded():
    labels = np.repeat(np.arange(4), [20, 9, 1, 35])
    labels = np.random.default_rng(0).permutation(labels)
    train, val = ferzoo.data.carve_val_split(labels, 0.2, seed=3)
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(65))
    # round(0.2 * n_c) per class, but a class never loses its last sample.
    assert np.bincount(labels[val], minlength=4).tolist() == [4, 2, 0, 7]
    again = ferzoo.data.carve_val_split(labels, 0.2, seed=3)
    assert np.array_equal(again[1], val)
    other = ferzoo.data.carve_val_split(labels, 0.2, seed=4)
    assert not np.array_equal(other[1], val)
    with pytest.raises(DataError, match="leaves no validation sample"):
        ferzoo.data.carve_val_split(np.arange(5), 0.3)
    with pytest.raises(ValueError, match="fraction"):
        ferzoo.data.carve_val_split(labels, 1.0)


def test_rafdb_has_no_val_split(tmp_path):
    spec, _ = rafdb(tmp_path)
    with pytest.raises(ferzoo.data.MissingSplitError, match="no val split"):
        ferzoo.data.read_split(spec, "val")


def test_carved_val_from_the_noisy_training_split(tmp_path):
    spec, entries = rafdb(tmp_path)
    raf_code = dict(entries)
    splits = ferzoo.data.load_training_splits(
        spec, val_fraction=0.1, val_seed=5, image_size=8, batch_size=16,
        noise_rate=0.3, noise_seed=2,
    )  # fmt: skip
    train, val = splits.train_info, splits.val_info
    assert splits.selection == {
        "type": "carved",
        "fraction": 0.1,
        "seed": 5,
        "num_samples": 7,
        "description": "val carved from train, 7 samples, seed 5",
    }
    # Train and val partition the 70 training images; none of the test.
    names = [name for name, _ in entries[:70]]
    assert sorted(train.names + val.names) == names
    assert not set(train.names) & set(val.names)
    assert train.names == sorted(train.names)  # order kept
    # Noise was applied to the whole training split (30% of each class),
    # before the carve-out: both parts carry those noisy labels, and
    # clean labels are the list file's codes.
    whole = readers.read_rafdb(tmp_path, image_size=8)
    noisy = ferzoo.data.symmetric_noise(whole.labels, 0.3, 7, seed=2).labels
    noisy = dict(zip(whole.names, noisy))
    for part in (train, val):
        assert part.labels.tolist() == [noisy[n] for n in part.names]
        assert part.clean_labels.tolist() == [
            raf_code[n] - 1 for n in part.names
        ]
        np.testing.assert_array_equal(
            part.noise_mask, part.labels != part.clean_labels
        )
    assert int(train.noise_mask.sum() + val.noise_mask.sum()) == 21
    # Stratified by the noisy labels: round(0.1 * n_c) of each.
    counts = np.bincount(list(noisy.values()), minlength=7)
    expected = [min(round(0.1 * n), n - 1) for n in counts]
    assert np.bincount(val.labels, minlength=7).tolist() == expected
    # Batches: sample id i is train.names[i] (its image and noisy label).
    seen = []
    for x, y in splits.train:
        for image, sid, label in zip(
            x["images"].numpy(), x["sample_ids"].numpy(), y.numpy()
        ):
            index = int(round((image.mean() - 2) / 3))
            assert train.names[sid] == f"train_{index + 1:05d}.jpg"
            assert label == train.labels[sid]
            seen.append(int(sid))
    assert sorted(seen) == list(range(63))
    val_ids = np.concatenate([x["sample_ids"].numpy() for x, _ in splits.val])
    assert val_ids.tolist() == list(range(7))  # ids of the val set itself
    # The same call gives the same split.
    again = ferzoo.data.load_training_splits(
        spec, val_fraction=0.1, val_seed=5, image_size=8, noise_rate=0.3,
        noise_seed=2,
    )  # fmt: skip
    assert again.train_info.names == train.names


def test_no_carve_with_val_fraction_zero_or_an_own_val_split(tmp_path):
    spec, _ = rafdb(tmp_path)
    splits = ferzoo.data.load_training_splits(spec, 0, image_size=8)
    assert splits.val is None and splits.val_info is None
    assert splits.train_info.num_samples == 70
    assert splits.selection["type"] == "last_epoch"
    assert splits.selection["description"].startswith("last epoch")
    own = ferzoo.data.load_training_splits("synthetic:70", 0.5, image_size=8)
    assert own.train_info.num_samples == 70 and own.val_info.num_samples == 17
    assert own.selection["description"] == "official val split, 17 samples"


def test_a_folder_without_split_folders_has_no_val_split(tmp_path):
    # Its images are the training split: "validating" on them would be a
    # pick on training accuracy, so a val set is carved out instead.
    make_folder(tmp_path, classes=("happy", "sad"), per_class=10)
    spec = f"imagefolder:{tmp_path}"
    with pytest.raises(ferzoo.data.MissingSplitError, match="no 'val' split"):
        ferzoo.data.read_split(spec, "val")
    splits = ferzoo.data.load_training_splits(spec, 0.2, image_size=8)
    assert splits.selection["type"] == "carved"
    assert splits.val_info.counts == [2, 2]
    assert splits.train_info.counts == [8, 8]
