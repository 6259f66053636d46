import numpy as np
import pytest

from ferzoo.data import noise
from ferzoo.errors import DataError


def _labels():
    return np.repeat(np.arange(7), [50, 9, 40, 70, 33, 48, 31]).astype("int32")


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.2, 0.3, 0.45])
def test_symmetric_exact_per_class_counts(rate):
    labels = _labels()
    result = noise.symmetric_noise(labels, rate, 7, seed=3)
    for c, (n, k) in enumerate(result.per_class()):
        assert n == np.sum(labels == c)
        assert k == round(rate * n)
    np.testing.assert_array_equal(result.clean_labels, labels)
    np.testing.assert_array_equal(result.mask, result.labels != labels)
    assert result.labels.dtype == np.int32
    assert "flipped" in result.summary()


def test_symmetric_flips_go_to_other_classes_uniformly():
    labels = np.zeros(7000, "int32")
    result = noise.symmetric_noise(labels, 0.6, 7, seed=0)
    targets = result.labels[result.mask]
    assert targets.size == 4200 and np.all(targets != 0)
    counts = np.bincount(targets, minlength=7)[1:]
    assert counts.min() > 600 and counts.max() < 800


def test_noise_is_deterministic_per_seed():
    labels = _labels()
    a = noise.symmetric_noise(labels, 0.3, 7, seed=1)
    b = noise.symmetric_noise(labels, 0.3, 7, seed=1)
    c = noise.symmetric_noise(labels, 0.3, 7, seed=2)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.mask, c.mask)


def test_pair_noise_default_and_custom_mapping():
    labels = _labels()
    result = noise.pair_noise(labels, 0.2, 7, seed=0)
    flipped = result.mask
    np.testing.assert_array_equal(
        result.labels[flipped], (labels[flipped] + 1) % 7
    )
    assert result.per_class()[3] == (70, 14)
    custom = noise.pair_noise(labels, 0.5, 7, mapping={0: 6, 3: 4})
    assert set(custom.labels[custom.mask & (labels == 0)]) == {6}
    assert set(custom.labels[custom.mask & (labels == 3)]) == {4}
    assert custom.mask[(labels != 0) & (labels != 3)].sum() == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="Received: rate=1.5"):
        noise.symmetric_noise([0, 1], 1.5, 7)
    with pytest.raises(ValueError, match="labels"):
        noise.symmetric_noise([0, 9], 0.1, 7)
    with pytest.raises(ValueError, match="mapping"):
        noise.pair_noise([0, 1], 0.1, 7, mapping=[1, 2])


def test_noise_file_round_trip(tmp_path):
    names = [f"train_{i:05d}.jpg" for i in range(1, 15)]
    fer_order = ["angry", "disgust", "fear", "happy", "neutral", "sad",
                 "surprise"]  # fmt: skip
    labels = np.arange(14) % 7
    path = tmp_path / "noise03.txt"
    noise.write_noise_file(path, names, labels, class_names=fer_order)
    lines = path.read_text().splitlines()
    # FER "angry" (0) is RAF label 6 (anger); "surprise" (6) is RAF 1.
    assert lines[0] == "train_00001.jpg 6" and lines[6] == "train_00007.jpg 1"
    aligned = [n.replace(".jpg", "_aligned.jpg") for n in names]
    back = noise.read_noise_file(path, aligned, class_names=fer_order)
    np.testing.assert_array_equal(back, labels)
    raf = noise.read_noise_file(path, names)  # RAF order: label - 1
    assert raf[0] == 5 and raf[6] == 0


@pytest.mark.parametrize(
    "bad_line", ["train_00003.jpg", "train_00003.jpg x", "train_00003.jpg 8"]
)
def test_noise_file_malformed_line(tmp_path, bad_line):
    path = tmp_path / "noise.txt"
    path.write_text(f"train_00001.jpg 1\n\ntrain_00002.jpg 2\n{bad_line}\n")
    with pytest.raises(DataError, match="noise.txt, line 4") as info:
        noise.read_noise_file(path, ["train_00001.jpg"])
    assert info.value.line == 4


def test_noise_file_missing_name(tmp_path):
    path = tmp_path / "noise.txt"
    path.write_text("train_00001.jpg 1\n")
    with pytest.raises(DataError, match="train_00002"):
        noise.read_noise_file(path, ["train_00002.jpg"])
    out = noise.read_noise_file(path, ["train_00002.jpg"], strict=False)
    assert out.tolist() == [-1]
