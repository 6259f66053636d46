"""Readers for FERPlus (majority vote) and AffectNet (folders or csv)."""

import os

import numpy as np

from ferzoo.data.readers import FER2013_USAGE
from ferzoo.data.readers import _open_csv
from ferzoo.data.readers import iter_fer2013_csv
from ferzoo.data.readers import parsed_rows
from ferzoo.data.readers import read_image_folder
from ferzoo.data.records import ErrorPolicy
from ferzoo.data.records import Item
from ferzoo.data.records import MissingSplitError
from ferzoo.data.records import build_records
from ferzoo.errors import DataError

# FERPlus vote columns, in fer2013new.csv order.
FERPLUS_COLUMNS = [
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
]
FERPLUS_CLASS_NAMES = [
    "neutral",
    "happy",
    "surprise",
    "sad",
    "angry",
    "disgust",
    "fear",
    "contempt",
]
# AffectNet's expression codes 0..7 (8 none, 9 uncertain, 10 no face).
AFFECTNET_CLASS_NAMES = [
    "neutral",
    "happy",
    "sad",
    "surprise",
    "fear",
    "disgust",
    "angry",
    "contempt",
]
_FERPLUS_FOLDERS = {
    "train": "FER2013Train",
    "val": "FER2013Valid",
    "test": "FER2013Test",
}


def _check_args(split, num_classes):
    if split not in FER2013_USAGE:
        raise ValueError(
            f"`split` must be one of {list(FER2013_USAGE)}. "
            f"Received: split={split!r}"
        )
    if num_classes not in (7, 8):
        raise ValueError(
            f"`num_classes` must be 7 or 8. Received: num_classes={num_classes}"
        )


def read_ferplus(
    path,
    split="train",
    image_size=48,
    num_classes=8,
    images=None,
    on_error="raise",
    limit_per_class=None,
    seed=0,
):
    """Read one split of FERPlus by majority vote of its 10 annotators.

    Each `fer2013new.csv` row (`Usage, Image name, neutral, happiness,
    surprise, sadness, anger, disgust, fear, contempt, unknown, NF`) gets
    the class with the most votes. Rows whose top vote is tied, is
    `unknown` or `NF`, has no votes or no image name, or (with
    `num_classes=7`) is `contempt`, are dropped and counted in
    `records.dropped`. Images come from `fer2013.csv` (row i of both
    files is the same face) or from a folder of the named images
    (`FER2013Train/fer0000000.png`, ... or flat).

    Args:
        path: str. `fer2013new.csv`, or a folder holding it (and
            `fer2013.csv` or the `FER2013*` image folders).
        split: str. `"train"`, `"val"` or `"test"`. Defaults to `"train"`.
        image_size: int or (height, width). Defaults to `48`.
        num_classes: int. 8 (with contempt) or 7. Defaults to `8`.
        images: str or None. `fer2013.csv` or an image folder. Defaults
            to what is found next to `fer2013new.csv`.
        on_error: str. `"raise"` or `"skip"`. Defaults to `"raise"`.
        limit_per_class: int or None. Seeded per-class cap.
        seed: int. Seed of the subset. Defaults to `0`.

    Returns:
        A `Records` with classes `FERPLUS_CLASS_NAMES[:num_classes]`.
    """
    _check_args(split, num_classes)
    path = os.fspath(path)
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    label_csv = os.path.join(path, "fer2013new.csv") if path == folder else path
    if images is None:
        candidate = os.path.join(folder, "fer2013.csv")
        images = candidate if os.path.isfile(candidate) else folder
    images = os.fspath(images)
    policy = ErrorPolicy(on_error)
    items = _ferplus_items(label_csv, images, split, num_classes, policy)
    return build_records(
        items,
        FERPLUS_CLASS_NAMES[:num_classes],
        image_size,
        policy,
        f"{label_csv} (Usage={FER2013_USAGE[split]})",
        limit_per_class,
        seed,
    )


def _ferplus_items(label_csv, images, split, num_classes, policy):
    """The `Item`s of `split`'s rows whose majority vote is a class."""
    usage = FER2013_USAGE[split]
    pixels = None
    if os.path.isfile(images):
        pixels = {
            line: (u, p)
            for line, u, _, p in iter_fer2013_csv(images, ErrorPolicy("skip"))
        }
    opened = _open_csv(label_csv, ["Usage", "Image name"])
    missing = [c for c in FERPLUS_COLUMNS if c not in opened[2]]
    if missing:
        opened[0].close()
        raise DataError(f"missing vote column(s) {missing}", label_csv, 1)

    def parse(row, col):
        row_usage = row[col["Usage"]].strip()
        name = row[col["Image name"]].strip()
        votes = [float(row[col[c]] or 0) for c in FERPLUS_COLUMNS]
        return row_usage, name, np.array(votes)

    items = []
    rows = parsed_rows(opened, label_csv, policy, parse)
    for line, (row_usage, name, votes) in rows:
        if row_usage != usage:
            continue
        label = _majority(votes, name, num_classes, policy)
        if label is None:
            continue
        if pixels is None:
            file = os.path.join(images, _FERPLUS_FOLDERS[split], name)
            if not os.path.isfile(file):
                file = os.path.join(images, name)
            items.append(Item(file, None, name, label, file))
        elif line not in pixels or pixels[line][0] != usage:
            policy.fail(
                f"no matching {usage} row {line} in {images}", label_csv, line
            )
        else:
            items.append(Item(images, line, name, label, pixels[line][1]))
    return items


def _majority(votes, name, num_classes, policy):
    """The class of the votes, or None (the reason counted as dropped)."""
    top = np.flatnonzero(votes == votes.max())
    if not name:
        policy.drop("no image")
    elif votes.max() <= 0:
        policy.drop("no votes")
    elif top.size > 1:
        policy.drop("tie")
    elif top[0] >= num_classes:
        policy.drop(f"majority {FERPLUS_COLUMNS[top[0]]}")
    else:
        return int(top[0])
    return None


def read_affectnet(
    path,
    split="train",
    image_size=112,
    num_classes=7,
    on_error="raise",
    limit_per_class=None,
    seed=0,
):
    """Read one split of AffectNet from class folders or its csv.

    Folder layout: `path/<split>/<class>/` (or `path/<class>/`), with
    class folders named by `AFFECTNET_CLASS_NAMES` or by expression code
    `0`..`7`. Csv layout: `path/training.csv` (train) and
    `path/validation.csv` (test: AffectNet's test set is not public, so
    its validation set is the test split, and there is no val split:
    `"val"` raises `MissingSplitError` and training holds a val set out
    of the training split instead), with `subDirectory_filePath` and
    `expression` columns and images under `path/Manually_Annotated_Images/`
    (or `path/`). Codes 8 (none), 9 (uncertain), 10 (no face) and, with
    `num_classes=7`, 7 (contempt) are dropped and counted in
    `records.dropped`.

    Args:
        path: str. The AffectNet folder, or one of its csv files.
        split: str. `"train"`, `"val"` or `"test"`. Defaults to `"train"`.
        image_size: int or (height, width). Defaults to `112`.
        num_classes: int. 7 or 8 (with contempt). Defaults to `7`.
        on_error, limit_per_class, seed: as in `read_ferplus`.

    Returns:
        A `Records` with classes `AFFECTNET_CLASS_NAMES[:num_classes]`.
    """
    _check_args(split, num_classes)
    path = os.fspath(path)
    class_names = AFFECTNET_CLASS_NAMES[:num_classes]
    csv_name = "training.csv" if split == "train" else "validation.csv"
    if os.path.basename(path) in ("training.csv", "validation.csv"):
        path = os.path.dirname(path)  # the folder: each split its own csv
    is_csv = os.path.isfile(os.path.join(path, csv_name))
    if split == "val" and (is_csv or os.path.isfile(path)):
        raise MissingSplitError(
            "AffectNet's csv release has no val split (validation.csv is "
            "the test split)",
            path=path,
        )
    if os.path.isfile(path):
        csv_path, root = path, os.path.dirname(path)
    elif os.path.isfile(os.path.join(path, csv_name)):
        csv_path, root = os.path.join(path, csv_name), path
    else:
        folder = path
        for sub in (split, "valid" if split == "val" else split):
            if os.path.isdir(os.path.join(path, sub)):
                folder = os.path.join(path, sub)
                break
        return _read_affectnet_folder(
            folder, class_names, image_size, on_error, limit_per_class, seed
        )
    image_root = os.path.join(root, "Manually_Annotated_Images")
    if not os.path.isdir(image_root):
        image_root = root
    policy = ErrorPolicy(on_error)

    def parse(row, col):
        rel = row[col["subDirectory_filePath"]].strip()
        code = int(row[col["expression"]])
        if not 0 <= code <= 10:
            raise ValueError(f"expression {code} is out of [0, 10]")
        return rel, code

    opened = _open_csv(csv_path, ["subDirectory_filePath", "expression"])
    items = []
    for _, (rel, code) in parsed_rows(opened, csv_path, policy, parse):
        if code >= num_classes:
            policy.drop(f"expression {code}")
            continue
        file = os.path.join(image_root, rel)
        items.append(Item(file, None, rel, code, file))
    return build_records(
        items, class_names, image_size, policy, csv_path, limit_per_class, seed
    )


def _read_affectnet_folder(
    folder, class_names, image_size, on_error, limit_per_class, seed
):
    if not os.path.isdir(folder):
        raise DataError("AffectNet folder or csv not found", path=folder)
    subdirs = [d for d in os.listdir(folder) if not d.startswith(".")]
    if subdirs and all(d.isdigit() for d in subdirs):
        # Folders named by code: "0".."7" -> class order by code.
        names = [str(i) for i in range(len(class_names))]
        records = read_image_folder(
            folder, image_size, names, on_error, limit_per_class, seed
        )
        records.class_names = list(class_names)
        return records
    return read_image_folder(
        folder, image_size, class_names, on_error, limit_per_class, seed
    )
