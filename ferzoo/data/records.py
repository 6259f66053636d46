"""In-memory records shared by the readers, and image decoding."""

import collections
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import os

import numpy as np

from ferzoo.decode import open_image  # noqa: F401 (re-exported)
from ferzoo.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
# Set by `listing_only()`: `build_records` lists files instead of decoding.
_LISTING_ONLY = contextvars.ContextVar("ferzoo_listing_only", default=False)


class MissingSplitError(DataError):
    """The data set has no such split (e.g. RAF-DB's val, an absent folder).

    Unlike other `DataError`s, a caller may go on without the split: the
    trainer carves a val set out of the training split instead.
    """


@dataclasses.dataclass
class Records:
    """Decoded images with their labels and where each came from.

    Args:
        images: uint8 array `(N, H, W, 3)`. RGB pixels (grayscale
            images are replicated to 3 channels).
        labels: int32 array `(N,)`. Class indices into `class_names`.
        class_names: list of str. The class order.
        sources: list of str. A file, or `file:line`, per sample.
        names: list of str. The image name of each sample (e.g.
            `train_00001.jpg`), used to match noise files.
        skipped: list of `(source, reason)`. Samples dropped because of
            an error when `on_error="skip"`.
        dropped: dict. Counts of samples a protocol drops on purpose
            (e.g. FERPlus ties), by reason.
        listed_names: list of str or None. The names of every sample
            the split lists, before any subset or skip (what a noise
            file may name); None: `names`.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list
    sources: list
    names: list
    skipped: list = dataclasses.field(default_factory=list)
    dropped: dict = dataclasses.field(default_factory=dict)
    listed_names: list = None

    def __len__(self):
        return int(self.labels.shape[0])


class LazyRecords(Records):
    """`Records` whose images are file paths, decoded later (`paths`)."""

    paths: list = None


class NotFiles(Exception):
    """A split listed under `listing_only()` has samples that are not files."""


@contextlib.contextmanager
def listing_only():
    """Within it, `build_records` returns `LazyRecords`, decoding nothing.

    The readers list a split as usual (same subset, order and names);
    a split whose samples are not files (csv rows) raises `NotFiles`.
    """
    token = _LISTING_ONLY.set(True)
    try:
        yield
    finally:
        _LISTING_ONLY.reset(token)


@dataclasses.dataclass
class Item:
    """One sample before decoding: `payload` is a path, bytes or array."""

    path: str
    line: object  # int or None
    name: str
    label: int
    payload: object

    @property
    def source(self):
        return self.path if self.line is None else f"{self.path}:{self.line}"


class ErrorPolicy:
    """Raise a `DataError`, or record the problem and go on."""

    def __init__(self, on_error):
        if on_error not in ("raise", "skip"):
            raise ValueError(
                "`on_error` must be 'raise' or 'skip'. "
                f"Received: on_error={on_error!r}"
            )
        self.on_error = on_error
        self.skipped = []
        self.dropped = collections.Counter()

    def fail(self, message, path, line=None):
        if self.on_error == "raise":
            raise DataError(message, path=path, line=line)
        source = str(path) if line is None else f"{path}:{line}"
        self.skipped.append((source, message))

    def drop(self, reason):
        self.dropped[reason] += 1


class TextLines:
    """The lines of a text file opened in binary mode, decoded as UTF-8.

    Bytes that are not UTF-8, or NUL bytes (a binary file), are a
    `DataError` naming the file and line, not a `UnicodeDecodeError`.
    """

    def __init__(self, f, path):
        self.f, self.path, self.line = f, path, 0

    def __iter__(self):
        return self

    def __next__(self):
        raw = next(self.f)
        self.line += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(
                f"not UTF-8 text ({e.reason}, byte 0x{raw[e.start]:02x});"
                " is it a binary file, or in another encoding?",
                path=self.path,
                line=self.line,
            ) from None
        if "\x00" in text:
            raise DataError(
                "holds NUL bytes: a binary file, not text",
                path=self.path,
                line=self.line,
            )
        return text.removeprefix("\ufeff") if self.line == 1 else text


def check_image_size(image_size):
    if isinstance(image_size, (tuple, list)):
        size = tuple(int(s) for s in image_size)
    else:
        size = (int(image_size), int(image_size))
    if len(size) != 2 or min(size) < 1:
        raise ValueError(
            "`image_size` must be a positive int or (height, width). "
            f"Received: image_size={image_size}"
        )
    return size


def decode_image(payload, size):
    """Decode a path, bytes or array into uint8 `(H, W, 3)` at `size`.

    Reads with `open_image` (the decoder prediction uses too), then
    resizes with PIL bilinear; gray images are replicated to 3 channels.
    """
    from PIL import Image

    image = open_image(payload)
    if image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    array = np.asarray(image, dtype="uint8")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    return array


def stratified_subset(labels, limit_per_class, seed=0):
    """Sorted indices of at most `limit_per_class` samples per class."""
    labels = np.asarray(labels)
    if limit_per_class is None:
        return np.arange(labels.size)
    if int(limit_per_class) < 1:
        raise ValueError(
            "`limit_per_class` must be a positive int or None. "
            f"Received: limit_per_class={limit_per_class}"
        )
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if idx.size > limit_per_class:
            idx = rng.choice(idx, size=int(limit_per_class), replace=False)
        keep.append(idx)
    return np.sort(np.concatenate(keep)) if keep else np.arange(0)


def build_records(
    items,
    class_names,
    image_size,
    policy,
    where,
    limit_per_class=None,
    seed=0,
    num_workers=8,
):
    """Subset, decode and collect `items` into `Records`.

    `where` names the data (folder or file) in the empty-split error.
    Under `listing_only()`, the files are listed, not decoded.
    """
    size = check_image_size(image_size)
    labels = np.array([it.label for it in items], "int32")
    listed = [it.name for it in items]
    items = [items[i] for i in stratified_subset(labels, limit_per_class, seed)]
    if _LISTING_ONLY.get():
        return _listed_records(items, class_names, policy, where, listed)

    def work(item):
        try:
            return decode_image(item.payload, size), None
        except Exception as e:  # PIL raises many types.
            return None, f"cannot read image ({type(e).__name__}: {e})"

    with concurrent.futures.ThreadPoolExecutor(num_workers) as pool:
        decoded = list(pool.map(work, items))
    images, kept = [], []
    for item, (array, error) in zip(items, decoded):
        if error is not None:
            policy.fail(error, item.path, item.line)
            continue
        images.append(array)
        kept.append(item)
    if not kept:
        # No sample at all (none skipped or dropped): the split is absent.
        absent = not items and not policy.skipped and not policy.dropped
        raise (MissingSplitError if absent else DataError)(
            "no usable samples in this split"
            + (f" ({len(policy.skipped)} skipped)" if policy.skipped else ""),
            path=where,
        )
    return _records(
        Records, kept, class_names, policy, listed, np.stack(images)
    )


def _listed_records(items, class_names, policy, where, listed):
    """`LazyRecords` of `items`, whose payloads must be file paths."""
    if any(not isinstance(it.payload, str) for it in items):
        raise NotFiles()
    if not items:
        raise DataError("no usable samples in this split", path=where)
    lazy = _records(LazyRecords, items, class_names, policy, listed, None)
    lazy.paths = [it.payload for it in items]
    return lazy


def _records(cls, items, class_names, policy, listed, images):
    return cls(
        images=images,
        labels=np.array([it.label for it in items], "int32"),
        class_names=list(class_names),
        sources=[it.source for it in items],
        names=[it.name for it in items],
        skipped=list(policy.skipped),
        dropped=dict(policy.dropped),
        listed_names=listed,
    )


def list_class_folders(root):
    """Sorted sub-folder names of `root` (hidden ones ignored)."""
    return sorted(
        d
        for d in os.listdir(root)
        if not d.startswith(".") and os.path.isdir(os.path.join(root, d))
    )


def list_images(folder):
    """Sorted image file names in `folder` (hidden files ignored)."""
    return sorted(
        f
        for f in os.listdir(folder)
        if not f.startswith(".")
        and f.lower().endswith(IMAGE_EXTENSIONS)
        and os.path.isfile(os.path.join(folder, f))
    )
