import json

import numpy as np
import pytest

from ferzoo.data import DataSpec
from ferzoo.data import NoiseSpec
from ferzoo.data import read_data
from ferzoo.data import read_training_data
from tests.data.splits_test import PER_CODE
from tests.data.splits_test import rafdb


def test_spec_round_trips_through_json():
    spec = DataSpec(
        "imagefolder:/data/faces",
        image_size=[40, 48],
        limit_per_class=5,
        classes=["sad", "happy"],
        stream=True,
        noise=NoiseSpec(rate=0.2, type="pair", seed=3),
    )
    assert spec.to_dict() == {
        "data": "imagefolder:/data/faces",
        "image_size": [40, 48],
        "on_error": "raise",
        "limit_per_class": 5,
        "subset_seed": 0,
        "classes": ["sad", "happy"],
        "stream": True,
        "noise": {"rate": 0.2, "type": "pair", "seed": 3, "file": None},
    }
    back = DataSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back == spec and hash(back) == hash(spec)
    assert back.classes == ("sad", "happy") and back.image_size == (40, 48)
    # A spec without noise reads back the default NoiseSpec.
    assert DataSpec.from_dict({"data": "synthetic"}).noise == NoiseSpec()


def test_spec_refuses_bad_noise_and_unknown_fields():
    with pytest.raises(ValueError, match="noise_type"):
        NoiseSpec(type="open")
    with pytest.raises(ValueError, match="noise_rate` must be in"):
        NoiseSpec(rate=1.5)
    with pytest.raises(ValueError, match="not both"):
        DataSpec.from_kwargs("synthetic", noise_rate=0.1, noise_file="n.txt")
    with pytest.raises(ValueError, match=r"unknown data field\(s\) \['seed'\]"):
        DataSpec.from_dict({"data": "synthetic", "seed": 1})
    with pytest.raises(ValueError, match=r"noise field\(s\) \['kind'\]"):
        NoiseSpec.from_dict({"kind": "pair"})
    with pytest.raises(TypeError, match="NoiseSpec"):
        DataSpec("synthetic", noise={"rate": 0.1})


def test_read_data_flips_a_fraction_of_each_class_of_train_only():
    spec = DataSpec.from_kwargs("synthetic:70", image_size=16, noise_rate=0.3)
    train = read_data(spec)
    clean = train.info.clean_labels
    assert np.bincount(clean).tolist() == [10] * 7
    # round(0.3 * 10) = 3 flips per class, and only those labels differ.
    flipped = np.bincount(clean[train.info.noise_mask], minlength=7)
    assert flipped.tolist() == [3] * 7
    assert np.array_equal(train.info.noise_mask, train.info.labels != clean)
    assert train.info.noise == {"type": "symmetric", "rate": 0.3, "seed": 0}
    assert train.pixels.shape == (70, 16, 16, 3) and not train.streamed
    test = read_data(spec, "test")
    assert test.info.clean_labels is None and test.info.noise == {}


def test_read_training_data_carves_val_from_the_noisy_labels(tmp_path):
    spec = DataSpec.from_kwargs(
        rafdb(tmp_path)[0], image_size=8, noise_rate=0.5, noise_seed=4
    )
    full = read_data(spec)
    data = read_training_data(spec, val_fraction=0.25, val_seed=1)
    assert data.selection["type"] == "carved"
    train, val = data.train.info, data.val.info
    # The two parts partition the training split, row for row.
    assert sorted(train.names + val.names) == sorted(full.info.names)
    assert not set(train.names) & set(val.names)
    rows = [full.info.names.index(n) for n in val.names]
    np.testing.assert_array_equal(val.labels, full.info.labels[rows])
    np.testing.assert_array_equal(data.val.pixels, full.pixels[rows])
    # Stratified by the noisy labels: round(0.25 * n_c) of each class.
    noisy = np.bincount(full.info.labels, minlength=7)
    want = [min(round(0.25 * n), n - 1) for n in noisy]
    assert np.bincount(val.labels, minlength=7).tolist() == want
    assert sum(PER_CODE) == train.num_samples + val.num_samples
