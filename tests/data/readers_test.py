import numpy as np
import pytest
from PIL import Image

from ferzoo.data import readers
from ferzoo.data.sources import read_split
from ferzoo.errors import DataError


def write_png(path, value=0, size=(20, 20), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def make_folder(root, classes=("happy", "sad"), per_class=3):
    for c, name in enumerate(classes):
        for i in range(per_class):
            write_png(root / name / f"img{i}.png", value=40 * c + i)
    return root


def test_image_folder_reads_sorted_rgb(tmp_path):
    make_folder(tmp_path, classes=("sad", "angry"))
    (tmp_path / "sad" / "notes.txt").write_text("ignored")
    records = readers.read_image_folder(tmp_path, image_size=16)
    assert records.class_names == ["angry", "sad"]
    assert records.images.shape == (6, 16, 16, 3)
    assert records.images.dtype == np.uint8
    assert records.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert records.sources[0].endswith("angry/img0.png")
    # Grayscale replicated to 3 equal channels.
    np.testing.assert_array_equal(
        records.images[..., 0], records.images[..., 2]
    )


def test_image_folder_class_names_and_unknown_class(tmp_path):
    make_folder(tmp_path, classes=("happy", "sad"))
    records = readers.read_image_folder(tmp_path, 8, ["sad", "x", "happy"])
    assert records.labels.tolist() == [2, 2, 2, 0, 0, 0]
    with pytest.raises(DataError, match="unknown class folder 'sad'"):
        readers.read_image_folder(tmp_path, 8, ["happy"])
    skip = readers.read_image_folder(tmp_path, 8, ["happy"], on_error="skip")
    assert len(skip) == 3 and len(skip.skipped) == 1


def test_image_folder_corrupt_image(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "sad" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png.*cannot read image"):
        readers.read_image_folder(tmp_path)
    records = readers.read_image_folder(tmp_path, on_error="skip")
    assert len(records) == 6
    assert records.skipped[0][0].endswith("broken.png")


def test_image_folder_empty_and_limit(tmp_path):
    (tmp_path / "happy").mkdir()
    with pytest.raises(DataError, match="no usable samples"):
        readers.read_image_folder(tmp_path)
    make_folder(tmp_path / "big", per_class=5)
    a = readers.read_image_folder(tmp_path / "big", 8, limit_per_class=2)
    b = readers.read_image_folder(tmp_path / "big", 8, limit_per_class=2)
    assert np.bincount(a.labels).tolist() == [2, 2]
    assert a.sources == b.sources


def fer_csv(path, rows):
    lines = ["emotion,pixels,Usage"] + rows
    path.write_text("\n".join(lines) + "\n")
    return path


def pixels(value, side=4):
    return " ".join([str(value)] * side * side)


def test_fer2013_csv_splits(tmp_path):
    path = fer_csv(
        tmp_path / "fer2013.csv",
        [
            f"0,{pixels(10)},Training",
            f"3,{pixels(20)},Training",
            f"6,{pixels(30)},PublicTest",
            f"4,{pixels(40)},PrivateTest",
            f"5,{pixels(50)},Training",
        ],
    )
    train = readers.read_fer2013_csv(path, "train", image_size=4)
    names = [train.class_names[i] for i in train.labels]
    assert names == ["angry", "happy", "surprise"]
    assert train.images.shape == (3, 4, 4, 3)
    assert train.images[1].max() == 20
    assert train.sources[2] == f"{path}:6"
    val = readers.read_fer2013_csv(path, "val", image_size=8)
    assert val.class_names[val.labels[0]] == "neutral"
    assert val.images.shape == (1, 8, 8, 3)


# Kaggle's fer2013.csv `emotion` codes, from the competition's data page
# ("0=Angry, 1=Disgust, 2=Fear, 3=Happy, 4=Sad, 5=Surprise, 6=Neutral").
KAGGLE_CODES = {
    0: "Angry",
    1: "Disgust",
    2: "Fear",
    3: "Happy",
    4: "Sad",
    5: "Surprise",
    6: "Neutral",
}


def test_fer2013_csv_codes_land_under_their_class_name(tmp_path):
    # One Training row per code, each image a distinct grey value; the
    # rows are written in a shuffled order, as in the real file.
    codes = [4, 0, 6, 2, 5, 1, 3]
    rows = [f"{c},{pixels(30 * c + 5)},Training" for c in codes]
    path = fer_csv(tmp_path / "fer2013.csv", rows)
    records = readers.read_fer2013_csv(path, image_size=4)
    for image, label in zip(records.images, records.labels):
        code = (int(image.max()) - 5) // 30
        assert records.class_names[label] == KAGGLE_CODES[code].lower()


def test_fer2013_csv_and_image_folder_give_the_same_labels(tmp_path):
    # The same seven faces as Kaggle's csv and as the FER2013 image folder
    # layout (`train/<lower-case emotion>/`): same classes, same labels.
    rows = []
    for code, name in KAGGLE_CODES.items():
        rows.append(f"{code},{pixels(30 * code + 5)},Training")
        write_png(
            tmp_path / "images" / "train" / name.lower() / f"{code}.png",
            value=30 * code + 5,
            size=(4, 4),
        )
    fer_csv(tmp_path / "fer2013.csv", rows)
    from_csv = read_split(f"fer2013:{tmp_path / 'fer2013.csv'}", image_size=4)
    from_dir = read_split(f"fer2013:{tmp_path / 'images'}", image_size=4)
    assert from_csv.class_names == from_dir.class_names

    def by_pixel(records):
        pairs = zip(records.images, records.labels)
        return {int(image.max()): int(label) for image, label in pairs}

    assert by_pixel(from_csv) == by_pixel(from_dir)
    assert len(by_pixel(from_csv)) == 7


@pytest.mark.parametrize(
    "row, reason",
    [
        (f"7,{pixels(1)},Training", "out of range"),
        ("2,1 2 3,Training", "not a square"),
        ("x,1 2 3 4,Training", "malformed"),
        ("2", "malformed"),
    ],
)
def test_fer2013_csv_bad_rows(tmp_path, row, reason):
    good = f"0,{pixels(1)},Training"
    path = fer_csv(tmp_path / "fer2013.csv", [good, good, row])
    with pytest.raises(DataError, match=f"fer2013.csv, line 4: .*{reason}"):
        readers.read_fer2013_csv(path, image_size=4)
    records = readers.read_fer2013_csv(path, image_size=4, on_error="skip")
    assert len(records) == 2
    assert records.skipped[0][0] == f"{path}:4"


def test_fer2013_csv_missing_column_and_empty_split(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels\n0,1\n")
    with pytest.raises(DataError, match="bad.csv, line 1: missing"):
        readers.read_fer2013_csv(bad)
    path = fer_csv(tmp_path / "f.csv", [f"0,{pixels(1)},Training"])
    with pytest.raises(DataError, match="no usable samples"):
        readers.read_fer2013_csv(path, "test")


def make_rafdb(root, entries, values=None):
    """RAF-DB's `basic` archive as downloaded, holding `entries`.

    `basic/EmoLabel/list_patition_label.txt` lists `train_00001.jpg 5`
    (train rows first, then `test_0001.jpg`); each face is a 100x100 RGB
    JPEG in `basic/Image/aligned/train_00001_aligned.jpg`, next to the
    uncropped `basic/Image/original/train_00001.jpg`. Returns `basic/`.
    """
    basic = root / "basic"
    (basic / "EmoLabel").mkdir(parents=True)
    lines = [f"{name} {label}" for name, label in entries]
    (basic / "EmoLabel" / "list_patition_label.txt").write_text(
        "\n".join(lines) + "\n"
    )
    values = values or [0] * len(entries)
    for (name, _), value in zip(entries, values):
        stem = name.rsplit(".", 1)[0]
        write_png(basic / "Image" / "aligned" / f"{stem}_aligned.jpg",
                  value=(value,) * 3, mode="RGB", size=(100, 100))  # fmt: skip
        write_png(basic / "Image" / "original" / name,
                  value=(value,) * 3, mode="RGB", size=(180, 120))  # fmt: skip
    return basic


def test_rafdb_reads_split_and_maps_labels(tmp_path):
    entries = [("train_00001.jpg", 1), ("train_00002.jpg", 6),
               ("train_00003.jpg", 7), ("test_0001.jpg", 4)]  # fmt: skip
    basic = make_rafdb(tmp_path, entries)
    train = readers.read_rafdb(basic, "train", image_size=32)
    assert train.class_names == readers.RAFDB_CLASS_NAMES
    assert train.labels.tolist() == [0, 5, 6]
    assert train.names == ["train_00001.jpg", "train_00002.jpg",
                           "train_00003.jpg"]  # fmt: skip
    assert train.sources[0].endswith("aligned/train_00001_aligned.jpg")
    fer = readers.read_rafdb(
        basic, "train", 32, class_names=readers.FER2013_CLASS_NAMES
    )
    assert fer.labels.tolist() == [6, 0, 4]  # surprise, angry, neutral
    assert len(readers.read_rafdb(basic, "test", 32)) == 1
    # The folder holding `basic/` works too.
    assert len(readers.read_rafdb(tmp_path, "test", 32)) == 1


def test_rafdb_older_emotionlabel_layout_still_reads(tmp_path):
    (tmp_path / "EmotionLabel").mkdir()
    (tmp_path / "EmotionLabel" / "list_patition_label.txt").write_text(
        "train_00001.jpg 4\n"
    )
    write_png(tmp_path / "Image" / "aligned" / "train_00001_aligned.jpg")
    records = readers.read_rafdb(tmp_path, image_size=16)
    assert records.labels.tolist() == [3]


def test_rafdb_errors(tmp_path):
    basic = make_rafdb(tmp_path, [("train_00001.jpg", 1),
                                  ("train_00002.jpg", 9)])  # fmt: skip
    labels = basic / "EmoLabel" / "list_patition_label.txt"
    with pytest.raises(DataError, match="list_patition_label.txt, line 2"):
        readers.read_rafdb(basic)
    labels.write_text("train_00001.jpg 1\ntrain_00009.jpg 2\n")
    with pytest.raises(DataError, match="line 2: image 'train_00009.jpg'"):
        readers.read_rafdb(basic)
    assert len(readers.read_rafdb(basic, on_error="skip").skipped) == 1
    with pytest.raises(DataError, match="not a RAF-DB.*EmoLabel"):
        readers.read_rafdb(basic / "EmoLabel")
