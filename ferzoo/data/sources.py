"""Data specs (`"KIND:PATH"`) and reading one split into `Records`."""

import os

import numpy as np

from ferzoo.data import ferplus
from ferzoo.data import readers
from ferzoo.data.records import MissingSplitError
from ferzoo.data.records import Records
from ferzoo.data.records import list_class_folders
from ferzoo.data.records import stratified_subset
from ferzoo.data.synthetic import SYNTHETIC_CLASS_NAMES
from ferzoo.data.synthetic import make_synthetic_faces
from ferzoo.errors import DataError
from ferzoo.errors import UsageError

DATA_KINDS = ("synthetic", "imagefolder", "fer2013", "rafdb", "ferplus")
DATA_KINDS += ("affectnet",)
SPLITS = ("train", "val", "test")
SYNTHETIC_SIZES = {"train": 2800, "val": 700, "test": 700}
_SYNTHETIC_SEEDS = {"train": 0, "val": 1, "test": 2}


def parse_data_spec(data):
    """Split `"KIND:PATH"` into `(kind, path)`; check the kind.

    A bad spec is a `UsageError` (a `ValueError`; exit code 2 on the
    command line) naming `data` (`--data`).
    """
    if not isinstance(data, str) or not data:
        raise UsageError(
            "`data` (--data) must be a string 'KIND:PATH' with KIND one of "
            f"{list(DATA_KINDS)}. Received: data={data!r}"
        )
    kind, _, path = data.partition(":")
    kind = kind.strip().lower()
    if kind not in DATA_KINDS:
        raise UsageError(
            f"`data` (--data) must start with one of {list(DATA_KINDS)} "
            f"(e.g. 'fer2013:/data/fer2013' or 'synthetic'). "
            f"Received: data={data!r}"
        )
    if kind != "synthetic" and not path:
        raise UsageError(
            f"`data` (--data) of kind {kind!r} needs a path: '{kind}:PATH'. "
            f"Received: data={data!r}"
        )
    if kind == "synthetic" and path and not _positive_int(path):
        raise UsageError(
            "`data` (--data) must be 'synthetic' or 'synthetic:N' with N a "
            f"positive number of training samples. Received: data={data!r}"
        )
    return kind, os.path.expanduser(path)


def _positive_int(text):
    try:
        return int(text) > 0
    except ValueError:
        return False


def _split_folder(root, split):
    """`root/<split>` (with val aliases), or `root` if it has no splits.

    A folder without split folders is the train and the test split, but
    not a val split: selecting on the training images is no validation.
    """
    if not os.path.isdir(root):
        raise DataError("data folder not found", path=root)
    aliases = {"val": ("val", "valid", "validation"), "test": ("test",)}
    for name in aliases.get(split, (split,)):
        if os.path.isdir(os.path.join(root, name)):
            return os.path.join(root, name)
    if split == "val" or any(
        os.path.isdir(os.path.join(root, s)) for s in SPLITS
    ):
        raise MissingSplitError(f"no {split!r} split folder", path=root)
    return root


def imagefolder_classes(root, split="train"):
    """The one class list of every split of an ImageFolder tree.

    The class folders of the train split (sorted), so that val and test
    images get the indices, and names, the model was trained with; data
    with no train split (evaluation only) uses `split`'s own folders.
    """
    try:
        folder = _split_folder(root, "train")
    except MissingSplitError:
        folder = _split_folder(root, split)
    return list_class_folders(folder)


def _read_fer2013(path, split, image_size, on_error, limit, seed):
    if os.path.isdir(os.path.join(path, "fer2013")):
        path = os.path.join(path, "fer2013")
    csv_path = os.path.join(path, "fer2013.csv")
    if os.path.isdir(path) and os.path.isfile(csv_path):
        if not os.path.isdir(os.path.join(path, "train")):
            path = csv_path
    if os.path.isfile(path):
        return readers.read_fer2013_csv(
            path, split, image_size, on_error, limit, seed
        )
    return readers.read_image_folder(
        _split_folder(path, split),
        image_size,
        readers.FER2013_CLASS_NAMES,
        on_error,
        limit,
        seed,
    )


def read_split(
    data,
    split="train",
    image_size=48,
    on_error="raise",
    limit_per_class=None,
    subset_seed=0,
    classes=None,
):
    """Read one split of a data spec into a `Records` (no noise, no tf).

    `classes` (a list of class names) sets the class order of
    `imagefolder` data (default: the train split's class folders, sorted;
    the same list for every split) or of `rafdb` data (default: RAF-DB's
    order). Other kinds have a fixed class order.
    """
    if split not in SPLITS:
        raise ValueError(
            f"`split` must be one of {list(SPLITS)}. Received: split={split!r}"
        )
    kind, path = parse_data_spec(data)
    if classes is not None:
        classes = [str(c) for c in classes]
        if kind not in ("imagefolder", "rafdb") or not classes:
            raise ValueError(
                "`classes` sets the class order of imagefolder and rafdb "
                f"data only. Received: classes={classes} for {kind!r} data"
            )
    args = (image_size, on_error, limit_per_class, subset_seed)
    if kind == "synthetic":
        return _synthetic_records(path, split, image_size, limit_per_class)
    if kind == "imagefolder":
        folder = _split_folder(path, split)
        if classes is None:
            classes = imagefolder_classes(path, split)
        return readers.read_image_folder(folder, image_size, classes, *args[1:])
    if kind == "fer2013":
        return _read_fer2013(path, split, *args)
    if kind == "rafdb":
        return readers.read_rafdb(path, split, image_size, classes, *args[1:])
    if kind == "ferplus":
        return ferplus.read_ferplus(path, split, image_size, 8, None, *args[1:])
    return ferplus.read_affectnet(path, split, image_size, 7, *args[1:])


def _synthetic_records(path, split, image_size, limit_per_class):
    size = SYNTHETIC_SIZES[split]
    if path:
        try:
            size = int(path)
        except ValueError:
            raise ValueError(
                "`data` must be 'synthetic' or 'synthetic:N' with N the "
                f"number of training samples. Received: data='synthetic:{path}'"
            ) from None
        size = size if split == "train" else max(size // 4, 7)
    images, labels = make_synthetic_faces(
        size, image_size=image_size, seed=_SYNTHETIC_SEEDS[split]
    )
    keep = stratified_subset(labels, limit_per_class, 0)
    images, labels = images[keep], labels[keep]
    names = [f"synthetic_{split}_{i:05d}" for i in keep]
    return Records(
        images=np.repeat(images[..., None], 3, axis=-1),
        labels=labels,
        class_names=list(SYNTHETIC_CLASS_NAMES),
        sources=[f"synthetic:{split}[{i}]" for i in keep],
        names=names,
    )
