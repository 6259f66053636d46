"""Each reader's label codes land under the right class *name*.

The files are written the way the real ones are laid out, and the expected
names are copied from each data set's own documentation, not from the
reader's constants. Every image has its own grey level, so the test can
tell which row it came from after decoding (JPEG is lossy: levels are 30
apart and read back rounded).
"""

from ferzoo.data import ferplus
from ferzoo.data import readers
from tests.data.readers_test import fer_csv
from tests.data.readers_test import make_rafdb
from tests.data.readers_test import pixels
from tests.data.readers_test import write_png


def level(i):
    return 30 * i + 15


def row_of(image):
    return int(round((float(image.mean()) - 15) / 30))


def names_by_row(records):
    """`{row: class name}` of each decoded image."""
    return {
        row_of(image): records.class_names[label]
        for image, label in zip(records.images, records.labels)
    }


# RAF-DB README: "1: Surprise 2: Fear 3: Disgust 4: Happiness 5: Sadness
# 6: Anger 7: Neutral".
RAFDB_CODES = {
    1: "surprise",
    2: "fear",
    3: "disgust",
    4: "happy",
    5: "sad",
    6: "angry",
    7: "neutral",
}


def test_rafdb_codes(tmp_path):
    codes = [5, 1, 7, 3, 2, 6, 4]
    entries = [(f"train_{i + 1:05d}.jpg", c) for i, c in enumerate(codes)]
    values = [level(i) for i in range(len(codes))]
    basic = make_rafdb(tmp_path, entries, values)
    records = readers.read_rafdb(basic, image_size=8)
    expected = {i: RAFDB_CODES[c] for i, c in enumerate(codes)}
    assert names_by_row(records) == expected
    # Mapped to the FER2013 class order: same names.
    fer = readers.read_rafdb(
        basic, image_size=8, class_names=readers.FER2013_CLASS_NAMES
    )
    assert names_by_row(fer) == expected


# FERPlus fer2013new.csv header (Microsoft/FERPlus README):
# Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,
# contempt,unknown,NF.
FERPLUS_HEADER = (
    "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,"
    "fear,contempt,unknown,NF"
)
FERPLUS_VOTE_NAMES = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprise",
    "sadness": "sad",
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "contempt": "contempt",
}


def test_ferplus_vote_columns(tmp_path):
    columns = FERPLUS_HEADER.split(",")[2:]
    # Row i has its majority (6 of 10 votes) in emotion column order[i].
    order = [3, 0, 7, 5, 1, 6, 2, 4]
    votes, faces = [], []
    for i, column in enumerate(order):
        counts = [0] * len(columns)
        counts[column] = 6
        counts[(column + 1) % 8] = 3
        counts[-2] = 1  # one "unknown" vote
        votes.append(f"Training,fer{i:07d}.png," + ",".join(map(str, counts)))
        faces.append(f"0,{pixels(level(i))},Training")
    (tmp_path / "fer2013new.csv").write_text(
        "\n".join([FERPLUS_HEADER] + votes) + "\n"
    )
    fer_csv(tmp_path / "fer2013.csv", faces)
    records = ferplus.read_ferplus(tmp_path, image_size=4)
    expected = {i: FERPLUS_VOTE_NAMES[columns[c]] for i, c in enumerate(order)}
    assert names_by_row(records) == expected
    seven = ferplus.read_ferplus(tmp_path, image_size=4, num_classes=7)
    del expected[order.index(7)]  # contempt is dropped with 7 classes
    assert names_by_row(seven) == expected


# AffectNet paper / README: "0: Neutral, 1: Happiness, 2: Sadness,
# 3: Surprise, 4: Fear, 5: Disgust, 6: Anger, 7: Contempt, 8: None,
# 9: Uncertain, 10: No-Face".
AFFECTNET_CODES = {
    0: "neutral",
    1: "happy",
    2: "sad",
    3: "surprise",
    4: "fear",
    5: "disgust",
    6: "angry",
    7: "contempt",
}
AFFECTNET_HEADER = (
    "subDirectory_filePath,face_x,face_y,face_width,face_height,"
    "facial_landmarks,expression,valence,arousal"
)


def test_affectnet_csv_codes(tmp_path):
    codes = [6, 2, 0, 7, 4, 1, 5, 3, 9]
    rows = [AFFECTNET_HEADER]
    for i, code in enumerate(codes):
        rel = f"{100 + i}/{i:040x}.jpg"
        write_png(tmp_path / "Manually_Annotated_Images" / rel,
                  value=(level(i),) * 3, mode="RGB", size=(40, 40))  # fmt: skip
        rows.append(f"{rel},3,3,34,34,9.1;12.5;10.0;20.7,{code},0.5,-0.25")
    (tmp_path / "training.csv").write_text("\n".join(rows) + "\n")
    records = ferplus.read_affectnet(tmp_path, image_size=8, num_classes=8)
    expected = {i: AFFECTNET_CODES[c] for i, c in enumerate(codes) if c < 8}
    assert names_by_row(records) == expected
    assert records.dropped == {"expression 9": 1}


def test_affectnet_code_folders(tmp_path):
    for code in range(8):
        write_png(tmp_path / "train" / str(code) / "a.jpg",
                  value=(level(code),) * 3, mode="RGB")  # fmt: skip
    records = ferplus.read_affectnet(tmp_path, image_size=8, num_classes=8)
    assert names_by_row(records) == AFFECTNET_CODES
