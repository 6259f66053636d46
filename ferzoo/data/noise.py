"""Seeded label noise and EAC-style noise files (numpy only).

Every function here uses `np.random.default_rng(seed)`, so the same labels
and seed give the same flips on every backend and machine.
"""

import dataclasses
import os

import numpy as np

from ferzoo.data.records import TextLines
from ferzoo.errors import DataError

# RAF-DB `list_patition_label.txt` order of labels 1..7.
RAFDB_CLASS_NAMES = [
    "surprise",
    "fear",
    "disgust",
    "happy",
    "sad",
    "angry",
    "neutral",
]

# Aliases accepted when matching RAF-DB names to a loader's class names.
_NAME_ALIASES = {
    "happiness": "happy",
    "sadness": "sad",
    "anger": "angry",
    "surprised": "surprise",
    "disgusted": "disgust",
    "fearful": "fear",
}


def _canonical(name):
    name = str(name).strip().lower()
    return _NAME_ALIASES.get(name, name)


@dataclasses.dataclass
class NoiseResult:
    """Noisy labels with the clean labels they came from.

    Args:
        labels: int32 array. The noisy labels.
        clean_labels: int32 array. The labels before noise.
        mask: bool array. `True` where a label was flipped.
        rate: float. The requested noise rate.
        seed: int. The seed used.
        num_classes: int. The number of classes.
        noise_type: str. `"symmetric"`, `"pair"` or `"file"`.
    """

    labels: np.ndarray
    clean_labels: np.ndarray
    mask: np.ndarray
    rate: float
    seed: int
    num_classes: int
    noise_type: str = "symmetric"

    @property
    def actual_rate(self):
        """The fraction of labels that differ from the clean ones."""
        return float(self.mask.mean()) if self.mask.size else 0.0

    def per_class(self):
        """Per clean class: `(num_samples, num_flipped)` as a list."""
        out = []
        for c in range(self.num_classes):
            in_c = self.clean_labels == c
            out.append((int(in_c.sum()), int(self.mask[in_c].sum())))
        return out

    def summary(self, class_names=None):
        """A human-readable per-class table of flipped labels."""
        names = class_names or [str(c) for c in range(self.num_classes)]
        lines = [
            f"{self.noise_type} noise: rate={self.rate} seed={self.seed} "
            f"flipped={int(self.mask.sum())}/{self.mask.size} "
            f"({self.actual_rate:.2%})"
        ]
        for name, (n, k) in zip(names, self.per_class()):
            frac = k / n if n else 0.0
            lines.append(f"  {name:>10}: {k:5d}/{n:<5d} flipped ({frac:.1%})")
        return "\n".join(lines)


def _check_inputs(labels, rate, num_classes):
    labels = np.asarray(labels)
    if labels.ndim != 1 or (
        labels.size and not np.issubdtype(labels.dtype, np.integer)
    ):
        raise ValueError(
            "`labels` must be a 1-D array of ints. Received: "
            f"labels.shape={labels.shape}, labels.dtype={labels.dtype}"
        )
    labels = labels.astype("int32")
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"`rate` must be in [0, 1]. Received: rate={rate}")
    if int(num_classes) < 2:
        raise ValueError(
            f"`num_classes` must be >= 2. Received: num_classes={num_classes}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"`labels` must be in [0, {num_classes}). Received: labels "
            f"in [{labels.min()}, {labels.max()}]"
        )
    return labels


def _pick_per_class(rng, labels, rate, num_classes):
    """Indices of exactly `round(rate * n_c)` samples of each class c."""
    picked = []
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        k = int(round(rate * idx.size))
        if k:
            picked.append((c, rng.choice(idx, size=k, replace=False)))
    return picked


def symmetric_noise(labels, rate, num_classes, seed=0):
    """Flip a fixed fraction of each class to a uniform other class.

    For each class c, exactly `round(rate * n_c)` of its samples (chosen
    uniformly, without replacement) get a label drawn uniformly from the
    other `num_classes - 1` classes. This is the per-class protocol of
    SCN, EAC and RUL.

    Args:
        labels: 1-D int array. Clean labels in `[0, num_classes)`.
        rate: float. Fraction of each class to flip, in `[0, 1]`.
        num_classes: int. The number of classes.
        seed: int. Seed of `np.random.default_rng`. Defaults to `0`.

    Returns:
        A `NoiseResult`.

    Example:
    >>> import numpy as np
    >>> import ferzoo.data
    >>> labels = np.repeat(np.arange(7), 10)
    >>> result = ferzoo.data.symmetric_noise(labels, 0.3, 7)
    >>> int(result.mask.sum()), result.labels.shape
    (21, (70,))
    """
    labels = _check_inputs(labels, rate, num_classes)
    rng = np.random.default_rng(seed)
    noisy = labels.copy()
    for c, idx in _pick_per_class(rng, labels, rate, num_classes):
        shift = rng.integers(1, num_classes, size=idx.size)
        noisy[idx] = (c + shift) % num_classes
    return _result(noisy, labels, rate, seed, num_classes, "symmetric")


def pair_noise(labels, rate, num_classes, seed=0, mapping=None):
    """Flip a fixed fraction of each class c to one fixed other class.

    Asymmetric ("pair") noise: exactly `round(rate * n_c)` samples of
    class c get the label `mapping[c]`, by default `(c + 1) % num_classes`.

    Args:
        labels: 1-D int array. Clean labels in `[0, num_classes)`.
        rate: float. Fraction of each class to flip, in `[0, 1]`.
        num_classes: int. The number of classes.
        seed: int. Seed of `np.random.default_rng`. Defaults to `0`.
        mapping: dict or list, or None. Target class of each class; a
            class mapped to itself (or missing from a dict) is never
            flipped. Defaults to `(c + 1) % num_classes`.

    Returns:
        A `NoiseResult`.

    Example:
    >>> import numpy as np
    >>> import ferzoo.data
    >>> result = ferzoo.data.pair_noise(np.zeros(10, "int32"), 0.2, 7)
    >>> result.labels.tolist().count(1)
    2
    """
    labels = _check_inputs(labels, rate, num_classes)
    if mapping is None:
        targets = [(c + 1) % num_classes for c in range(num_classes)]
    elif isinstance(mapping, dict):
        targets = [int(mapping.get(c, c)) for c in range(num_classes)]
    else:
        targets = [int(t) for t in mapping]
    if len(targets) != num_classes or not all(
        0 <= t < num_classes for t in targets
    ):
        raise ValueError(
            f"`mapping` must give a class in [0, {num_classes}) for each of "
            f"the {num_classes} classes. Received: mapping={mapping}"
        )
    rng = np.random.default_rng(seed)
    noisy = labels.copy()
    for c, idx in _pick_per_class(rng, labels, rate, num_classes):
        noisy[idx] = targets[c]
    return _result(noisy, labels, rate, seed, num_classes, "pair")


def _result(noisy, clean, rate, seed, num_classes, noise_type):
    return NoiseResult(
        labels=noisy,
        clean_labels=clean,
        mask=noisy != clean,
        rate=float(rate),
        seed=int(seed),
        num_classes=int(num_classes),
        noise_type=noise_type,
    )


def noisy_labels(noise, records, on_error="raise"):
    """The training labels of `records` under `noise`, and its record.

    `noise` is a `NoiseSpec` (`rate`, `type`, `seed`, `file`): a noise
    file gives the labels (`apply_noise_file`), else a nonzero rate flips
    a seeded fraction of each class (`symmetric_noise`, `pair_noise`).

    Returns:
        `(labels, record)`: int32 labels, and the dict `results.json`
        and `DatasetInfo.noise` keep (`{}` when no label may change).
    """
    if noise.file is not None:
        return apply_noise_file(
            noise.file,
            records.names,
            records.class_names,
            getattr(records, "listed_names", None),
            on_error,
        )
    if not noise.rate:
        return records.labels, {}
    make = symmetric_noise if noise.type == "symmetric" else pair_noise
    result = make(
        records.labels, noise.rate, len(records.class_names), seed=noise.seed
    )
    record = {"type": noise.type, "rate": noise.rate, "seed": noise.seed}
    return result.labels, record


def rafdb_label_map(class_names):
    """Index in `class_names` of each RAF-DB label 1..7 (minus 1).

    Args:
        class_names: list of str. The loader's class order. Names such as
            "happiness" or "anger" are matched to "happy" and "angry".

    Returns:
        An int32 array `m` of length 7, with `m[raf_label - 1]` the class.
    """
    canon = [_canonical(n) for n in class_names]
    missing = [n for n in RAFDB_CLASS_NAMES if n not in canon]
    if missing:
        raise ValueError(
            "`class_names` must contain the 7 RAF-DB classes "
            f"{RAFDB_CLASS_NAMES}; missing {missing}. "
            f"Received: class_names={list(class_names)}"
        )
    return np.array([canon.index(n) for n in RAFDB_CLASS_NAMES], "int32")


def parse_label_file(path, label_base=1, num_labels=7):
    """Parse a `name label` file; return `[(name, label, line), ...]`.

    Blank lines and lines starting with `#` are ignored. The label is
    returned 0-based (`label - label_base`).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError("label file not found", path=path)
    rows = []
    with open(path, "rb") as f:
        for i, raw in enumerate(TextLines(f, path), start=1):
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            parts = text.split()
            if len(parts) != 2:
                raise DataError(
                    f"expected '<image name> <label>', got {text!r}",
                    path=path,
                    line=i,
                )
            try:
                label = int(parts[1]) - label_base
            except ValueError:
                raise DataError(
                    f"label must be an integer, got {parts[1]!r}",
                    path=path,
                    line=i,
                ) from None
            if not 0 <= label < num_labels:
                lo, hi = label_base, label_base + num_labels - 1
                raise DataError(
                    f"label {parts[1]} is out of range [{lo}, {hi}]",
                    path=path,
                    line=i,
                )
            rows.append((parts[0], label, i))
    return rows


def read_noise_file(path, names, class_names=None, strict=True):
    """Read an EAC-style noise file into labels ordered like `names`.

    The file is in RAF-DB `list_patition_label.txt` format, one
    `train_00001.jpg 5` per line with labels 1..7 in RAF-DB order
    (surprise, fear, disgust, happiness, sadness, anger, neutral). Labels
    are shifted to 0..6 and mapped to `class_names`.

    Args:
        path: str. The noise file (e.g. EAC's `noise03.txt`).
        names: list of str. Image names of the training samples, in
            sample-id order; matched to the file's names (a trailing
            `_aligned` and the extension are ignored). ImageFolder names
            are `<class folder>/<file name>`.
        class_names: list of str, or None. The loader's class order.
            Defaults to RAF-DB order (labels are then just minus 1).
        strict: bool. If `True`, every name in `names` must be in the
            file. Defaults to `True`.

    Returns:
        An int32 array of labels, one per entry of `names` (`-1` for
        names absent from the file when `strict=False`).

    Example:
    >>> import os, tempfile
    >>> import ferzoo.data
    >>> path = os.path.join(tempfile.mkdtemp(), "noise.txt")
    >>> ferzoo.data.write_noise_file(path, ["train_1.jpg"], [0])
    >>> ferzoo.data.read_noise_file(path, ["train_1.jpg"]).tolist()
    [0]
    """
    label_map = rafdb_label_map(class_names or RAFDB_CLASS_NAMES)
    table = {}
    for name, label, _ in parse_label_file(path):
        table[_stem(name)] = int(label_map[label])
    out = np.full(len(names), -1, "int32")
    for i, name in enumerate(names):
        key = _stem(name)
        if key in table:
            out[i] = table[key]
        elif strict:
            raise DataError(
                f"no label for training image {name!r} "
                f"({len(table)} entries in the file)",
                path=path,
            )
    return out


def apply_noise_file(
    path, names, class_names=None, listed_names=None, on_error="raise"
):
    """Labels of the training samples `names` from a noise file, and its
    record for `results.json`.

    Every name in the file must be a sample of the split (`listed_names`:
    all the split's samples before any subset; default `names`): a name
    that is not (`../../etc/passwd`, `nobody/ghost.png`) is a `DataError`
    naming the line, or, with `on_error="skip"`, left out and counted in
    the record's `unknown_ids` (`count` and the first ten).

    Returns:
        `(labels, noise)`: int32 labels like `read_noise_file`'s, and the
        dict `{"type": "file", "file": ..., "unknown_ids": ...}`.
    """
    known = {
        _stem(n) for n in (names if listed_names is None else listed_names)
    }
    unknown = [
        (line, name)
        for name, _, line in parse_label_file(path)
        if _stem(name) not in known
    ]
    if unknown and on_error == "raise":
        line, name = unknown[0]
        raise DataError(
            f"{name!r} is not an image of the training split "
            f"({len(unknown)} such names in the file); fix the file, or "
            "pass --skip-bad-samples (on_error='skip') to leave them out",
            path=path,
            line=line,
        )
    labels = read_noise_file(path, names, class_names)
    noise = {
        "type": "file",
        "file": os.fspath(path),
        "unknown_ids": {
            "count": len(unknown),
            "first": [f"line {line}: {name}" for line, name in unknown[:10]],
        },
    }
    return labels, noise


def write_noise_file(path, names, labels, class_names=None):
    """Write labels as an EAC-style (RAF-DB list format) noise file.

    Args:
        path: str. The file to write.
        names: list of str. Image names, e.g. `train_00001.jpg`.
        labels: 1-D int array. Labels in `class_names` order.
        class_names: list of str, or None. Defaults to RAF-DB order.
    """
    labels = np.asarray(labels)
    if len(names) != len(labels):
        raise ValueError(
            "`names` and `labels` must have the same length. Received: "
            f"len(names)={len(names)}, len(labels)={len(labels)}"
        )
    label_map = rafdb_label_map(class_names or RAFDB_CLASS_NAMES)
    to_raf = {int(c): raf + 1 for raf, c in enumerate(label_map)}
    with open(os.fspath(path), "w", encoding="utf-8") as f:
        for name, label in zip(names, labels):
            f.write(f"{name} {to_raf[int(label)]}\n")


def _stem(name):
    base = os.path.splitext(str(name).replace(os.sep, "/"))[0]
    if base.endswith("_aligned"):
        base = base[: -len("_aligned")]
    return base
