"""Readers for ImageFolder trees, Kaggle's fer2013.csv and RAF-DB.

Each reader lists its samples, takes the optional class-stratified subset,
then decodes the images with PIL into memory (resized, grayscale
replicated to 3 channels) and returns a `Records`. Problems raise a
`DataError` naming the file and line, or are counted in
`records.skipped` with `on_error="skip"`.
"""

import csv
import os

import numpy as np

from ferzoo.data.noise import RAFDB_CLASS_NAMES
from ferzoo.data.noise import parse_label_file
from ferzoo.data.noise import rafdb_label_map
from ferzoo.data.records import ErrorPolicy
from ferzoo.data.records import Item
from ferzoo.data.records import MissingSplitError
from ferzoo.data.records import TextLines
from ferzoo.data.records import build_records
from ferzoo.data.records import list_class_folders
from ferzoo.data.records import list_images
from ferzoo.errors import DataError

FER2013_CLASS_NAMES = [
    "angry",
    "disgust",
    "fear",
    "happy",
    "neutral",
    "sad",
    "surprise",
]
# Kaggle's fer2013.csv `emotion` codes 0..6, in the csv's own order; mapped
# to `FER2013_CLASS_NAMES` (alphabetical, like the ImageFolder layout) by name.
FER2013_CSV_CODES = [
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
]
FER2013_USAGE = {
    "train": "Training",
    "val": "PublicTest",
    "test": "PrivateTest",
}


def read_image_folder(
    root,
    image_size=48,
    class_names=None,
    on_error="raise",
    limit_per_class=None,
    seed=0,
):
    """Read `root/<class_name>/<image>` into memory.

    Class indices follow the sorted class folder names, or `class_names`
    when given (a class folder not in it is an error naming the folder;
    a listed class may have no folder). Samples are sorted by
    `<class folder>/<file name>`, so sample ids are stable; that is also
    each sample's name (for noise files).

    Args:
        root: str. The folder holding one folder per class.
        image_size: int or (height, width). Output size. Defaults to 48.
        class_names: list of str, or None. The class order. Defaults to
            the sorted folder names.
        on_error: str. `"raise"` or `"skip"`. Defaults to `"raise"`.
        limit_per_class: int or None. Keep at most this many samples per
            class (a seeded subset). Defaults to `None` (all).
        seed: int. Seed of the subset. Defaults to `0`.

    Returns:
        A `Records`.

    Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> import ferzoo.data
    >>> root = tempfile.mkdtemp()
    >>> for name in ["happy", "sad"]:
    ...     os.makedirs(os.path.join(root, name))
    ...     Image.new("L", (40, 40)).save(os.path.join(root, name, "a.png"))
    >>> records = ferzoo.data.read_image_folder(root, image_size=32)
    >>> records.images.shape, records.class_names
    ((2, 32, 32, 3), ['happy', 'sad'])
    """
    policy = ErrorPolicy(on_error)
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DataError("image folder not found", path=root)
    folders = list_class_folders(root)
    if class_names is None:
        class_names = folders
    class_names = list(class_names)
    index = {name: i for i, name in enumerate(class_names)}
    items = []
    for folder in folders:
        path = os.path.join(root, folder)
        if folder not in index:
            policy.fail(
                f"unknown class folder {folder!r}; expected one of "
                f"{class_names}",
                path,
            )
            continue
        for name in list_images(path):
            file = os.path.join(path, name)
            items.append(
                Item(file, None, f"{folder}/{name}", index[folder], file)
            )
    return build_records(
        items, class_names, image_size, policy, root, limit_per_class, seed
    )


def _open_csv(path, required):
    """Open a csv; return (file, reader, column index) after a check."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError("csv file not found", path=path)
    f = open(path, "rb")
    reader = CheckedRows(csv.reader(TextLines(f, path)), path)
    try:
        header = next(reader, None)
    except DataError:
        f.close()
        raise
    columns = {name.strip(): i for i, name in enumerate(header or [])}
    missing = [c for c in required if c not in columns]
    if missing:
        f.close()
        raise DataError(
            f"missing column(s) {missing}; found {list(columns)}",
            path=path,
            line=1,
        )
    return f, reader, columns


class CheckedRows:
    """A csv reader whose errors are `DataError`s naming file and line."""

    def __init__(self, reader, path):
        self.reader, self.path = reader, path

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self.reader)
        except csv.Error as e:
            raise DataError(
                f"malformed csv ({e})",
                path=self.path,
                line=self.reader.line_num,
            ) from None


def parse_pixels(text):
    """Parse a space-separated square grayscale image."""
    pixels = np.array(text.split(), dtype="int64")
    side = int(round(np.sqrt(pixels.size)))
    if pixels.size == 0 or side * side != pixels.size:
        raise ValueError(f"{pixels.size} pixels is not a square image")
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError("pixel values must be in [0, 255]")
    return pixels.astype("uint8").reshape(side, side)


def parsed_rows(opened, path, policy, parse):
    """Yield `(line, parse(row, columns))` of an opened csv's rows.

    `opened` is `_open_csv`'s `(file, reader, columns)`; the file is
    closed at the end. Empty rows are passed over; a row `parse` rejects
    (`ValueError`, `IndexError`) goes to `policy.fail` as malformed,
    naming `path` and the line.
    """
    f, reader, col = opened
    with f:
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                value = parse(row, col)
            except (ValueError, IndexError) as e:
                policy.fail(f"malformed row: {e}", path, line)
                continue
            yield line, value


def iter_fer2013_csv(path, policy, num_classes=7):
    """Yield `(line, usage, label, pixels)` of valid fer2013.csv rows."""

    def parse(row, col):
        label = int(row[col["emotion"]])
        if not 0 <= label < num_classes:
            raise ValueError(
                f"emotion {label} is out of range [0, {num_classes})"
            )
        return label, parse_pixels(row[col["pixels"]]), row[col["Usage"]]

    opened = _open_csv(path, ["emotion", "pixels", "Usage"])
    for line, (label, pixels, usage) in parsed_rows(
        opened, path, policy, parse
    ):
        yield line, usage.strip(), label, pixels


def read_fer2013_csv(
    path,
    split="train",
    image_size=48,
    on_error="raise",
    limit_per_class=None,
    seed=0,
):
    """Read one split of Kaggle's `fer2013.csv` (`emotion,pixels,Usage`).

    Splits map to Usage: train -> Training, val -> PublicTest, test ->
    PrivateTest. Kaggle's emotion codes 0..6 (angry, disgust, fear, happy,
    sad, surprise, neutral) are mapped by name onto `FER2013_CLASS_NAMES`
    (alphabetical), the class order of the FER2013 ImageFolder layout, so
    both give the same labels.

    Args:
        path: str. The csv file.
        split: str. `"train"`, `"val"` or `"test"`. Defaults to `"train"`.
        image_size: int or (height, width). Defaults to `48`.
        on_error: str. `"raise"` or `"skip"`. Defaults to `"raise"`.
        limit_per_class: int or None. Seeded per-class cap. Defaults to
            `None`.
        seed: int. Seed of the subset. Defaults to `0`.

    Returns:
        A `Records` whose sources are `path:line`.
    """
    if split not in FER2013_USAGE:
        raise ValueError(
            f"`split` must be one of {list(FER2013_USAGE)}. "
            f"Received: split={split!r}"
        )
    policy = ErrorPolicy(on_error)
    path = os.fspath(path)
    to_class = [FER2013_CLASS_NAMES.index(n) for n in FER2013_CSV_CODES]
    items = [
        Item(path, line, f"row{line - 1:05d}", to_class[code], pixels)
        for line, usage, code, pixels in iter_fer2013_csv(path, policy)
        if usage == FER2013_USAGE[split]
    ]
    return build_records(
        items,
        FER2013_CLASS_NAMES,
        image_size,
        policy,
        f"{path} (Usage={FER2013_USAGE[split]})",
        limit_per_class,
        seed,
    )


# Where the label list and the aligned faces lie, relative to the `basic`
# folder: RAF-DB's archive first (`EmoLabel/`, `Image/aligned/`), then older
# hand-made layouts.
_RAFDB_LABEL_DIRS = ("EmoLabel", "EmotionLabel", "")
_RAFDB_IMAGE_DIRS = ("Image/aligned", "aligned", "Image")


def find_rafdb_files(root):
    """Return `(label_file, image_dir)` of a RAF-DB basic folder.

    `root` is RAF-DB's `basic` folder (`EmoLabel/list_patition_label.txt`,
    `Image/aligned/`) or the folder holding `basic/`.
    """
    root = os.fspath(root)
    for base in (root, os.path.join(root, "basic")):
        for sub in _RAFDB_LABEL_DIRS:
            label_file = os.path.join(base, sub, "list_patition_label.txt")
            if not os.path.isfile(label_file):
                continue
            for images in _RAFDB_IMAGE_DIRS:
                image_dir = os.path.join(base, images)
                if os.path.isdir(image_dir):
                    return label_file, image_dir
    raise DataError(
        "not a RAF-DB basic folder: expected "
        "EmoLabel/list_patition_label.txt and Image/aligned/",
        path=root,
    )


def read_rafdb(
    root,
    split="train",
    image_size=100,
    class_names=None,
    on_error="raise",
    limit_per_class=None,
    seed=0,
):
    """Read one split of RAF-DB basic (aligned 100x100 faces).

    Labels 1..7 of `list_patition_label.txt` are in RAF-DB order
    (surprise, fear, disgust, happiness, sadness, anger, neutral); they
    are shifted to 0..6 and, by default, kept in that order with
    `class_names = RAFDB_CLASS_NAMES`. Pass `class_names` (e.g.
    `FER2013_CLASS_NAMES`) to map them to another order. The layout is
    RAF-DB's `basic` archive: `EmoLabel/list_patition_label.txt` lists
    `train_00001.jpg 5`, read from `Image/aligned/train_00001_aligned.jpg`
    (or `train_00001.jpg`); an older `EmotionLabel/` folder also works.
    The split is the file-name prefix.

    Args:
        root: str. The RAF-DB `basic` folder, or the folder holding it.
        split: str. `"train"` or `"test"`. RAF-DB has no validation
            split: `"val"` raises `MissingSplitError`. Defaults to
            `"train"`.
        image_size: int or (height, width). Defaults to `100`.
        class_names: list of str, or None. Defaults to RAF-DB order.
        on_error: str. `"raise"` or `"skip"`. Defaults to `"raise"`.
        limit_per_class: int or None. Seeded per-class cap.
        seed: int. Seed of the subset. Defaults to `0`.

    Returns:
        A `Records` whose `names` are the list file's image names.
    """
    if split == "val":
        raise MissingSplitError(
            "RAF-DB has no val split (only train and test)", path=root
        )
    if split not in ("train", "test"):
        raise ValueError(
            "`split` must be 'train' or 'test' (RAF-DB has no validation "
            f"split). Received: split={split!r}"
        )
    class_names = list(class_names or RAFDB_CLASS_NAMES)
    label_map = rafdb_label_map(class_names)
    label_file, image_dir = find_rafdb_files(root)
    policy = ErrorPolicy(on_error)
    items = []
    for name, label, line in parse_label_file(label_file):
        if not name.startswith(split + "_"):
            continue
        stem, ext = os.path.splitext(name)
        path = os.path.join(image_dir, f"{stem}_aligned{ext}")
        if not os.path.isfile(path):
            path = os.path.join(image_dir, name)
        if not os.path.isfile(path):
            policy.fail(
                f"image {name!r} not found in {image_dir}", label_file, line
            )
            continue
        items.append(Item(path, None, name, int(label_map[label]), path))
    return build_records(
        items,
        class_names,
        image_size,
        policy,
        f"{label_file} (split={split})",
        limit_per_class,
        seed,
    )
