import pytest

from ferzoo.data import MissingSplitError
from ferzoo.data import ferplus
from ferzoo.errors import DataError
from tests.data.readers_test import fer_csv
from tests.data.readers_test import pixels
from tests.data.readers_test import write_png

HEADER = (
    "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,"
    "fear,contempt,unknown,NF"
)
VOTES = [
    "Training,fer0000000.png,10,0,0,0,0,0,0,0,0,0",  # neutral
    "Training,fer0000001.png,0,6,4,0,0,0,0,0,0,0",  # happy
    "Training,fer0000002.png,5,5,0,0,0,0,0,0,0,0",  # tie -> dropped
    "Training,fer0000003.png,0,0,0,0,0,0,0,0,8,2",  # unknown -> dropped
    "PublicTest,fer0000004.png,0,0,0,0,0,0,0,9,1,0",  # contempt
    "Training,,0,0,0,0,0,0,0,0,0,10",  # no image -> dropped
]


def make_ferplus(tmp_path, votes=VOTES, with_csv=True):
    (tmp_path / "fer2013new.csv").write_text("\n".join([HEADER] + votes))
    usages = [v.split(",")[0] for v in votes]
    if with_csv:
        rows = [f"0,{pixels(10 * i)},{u}" for i, u in enumerate(usages)]
        fer_csv(tmp_path / "fer2013.csv", rows)
    return tmp_path


def test_ferplus_majority_vote_from_fer2013_csv(tmp_path):
    make_ferplus(tmp_path)
    records = ferplus.read_ferplus(tmp_path, "train", image_size=4)
    assert records.labels.tolist() == [0, 1]
    assert records.images[1].max() == 10  # row 2 of fer2013.csv
    assert records.dropped == {"tie": 1, "majority unknown": 1, "no image": 1}
    val = ferplus.read_ferplus(tmp_path, "val", image_size=4)
    assert val.labels.tolist() == [7] and val.class_names[7] == "contempt"
    with pytest.raises(DataError, match="no usable samples"):
        ferplus.read_ferplus(tmp_path, "val", num_classes=7)


def test_ferplus_image_folder_and_errors(tmp_path):
    make_ferplus(tmp_path, with_csv=False)
    write_png(tmp_path / "FER2013Train" / "fer0000000.png")
    with pytest.raises(DataError, match="fer0000001.png"):
        ferplus.read_ferplus(tmp_path, "train", image_size=8)
    records = ferplus.read_ferplus(tmp_path, image_size=8, on_error="skip")
    assert len(records) == 1 and len(records.skipped) == 1
    make_ferplus(tmp_path, VOTES[:2] + ["Training,fer9.png,1,x,0"])
    with pytest.raises(DataError, match="fer2013new.csv, line 4"):
        ferplus.read_ferplus(tmp_path / "fer2013new.csv")


def test_affectnet_folder_and_csv(tmp_path):
    for split in ("train", "val"):
        for name in ("happy", "neutral", "contempt"):
            write_png(tmp_path / "folders" / split / name / "a.png")
    records = ferplus.read_affectnet(tmp_path / "folders", "val", 16, 8)
    assert records.labels.tolist() == [7, 1, 0]
    with pytest.raises(DataError, match="unknown class folder 'contempt'"):
        ferplus.read_affectnet(tmp_path / "folders", "train", 16, 7)

    root = tmp_path / "csv"
    for i in range(3):
        write_png(root / "Manually_Annotated_Images" / "1" / f"{i}.jpg",
                  mode="RGB")  # fmt: skip
    rows = [
        "subDirectory_filePath,face_x,expression",
        "1/0.jpg,0,1",
        "1/1.jpg,0,7",  # contempt: dropped with 7 classes
        "1/2.jpg,0,9",  # uncertain: dropped
        "1/3.jpg,0,2",  # missing image
    ]
    (root / "training.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match="3.jpg"):
        ferplus.read_affectnet(root, "train", image_size=16)
    records = ferplus.read_affectnet(root, image_size=16, on_error="skip")
    assert records.labels.tolist() == [1]
    assert records.dropped == {"expression 7": 1, "expression 9": 1}
    rows[2] = "1/1.jpg,0,12"
    (root / "training.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match="training.csv, line 3"):
        ferplus.read_affectnet(root, "train", image_size=16)


def test_affectnet_csv_has_no_val_split(tmp_path):
    # AffectNet ships training.csv and validation.csv; the latter is the
    # test split (the real test set is not public), so selecting on it
    # would select on the test set: "val" is missing instead.
    header = "subDirectory_filePath,face_x,expression"
    for i, name in enumerate(["training.csv", "validation.csv"]):
        write_png(tmp_path / "Manually_Annotated_Images" / "1" / f"{i}.jpg")
        (tmp_path / name).write_text(f"{header}\n1/{i}.jpg,0,{i + 1}\n")
    for path in (tmp_path, tmp_path / "training.csv"):
        with pytest.raises(MissingSplitError, match="no val split"):
            ferplus.read_affectnet(path, "val")
        test = ferplus.read_affectnet(path, "test", image_size=8)
        assert test.names == ["1/1.jpg"]  # validation.csv, not training.csv
        assert ferplus.read_affectnet(path, image_size=8).names == ["1/0.jpg"]
