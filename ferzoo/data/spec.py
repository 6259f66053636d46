"""What data a run reads: a data spec and its label noise, as values.

`DataSpec` holds what `ferzoo.data.read_data` needs to turn a data spec
string (`"fer2013:/data/fer2013"`) into a split's samples and labels: the
reader's arguments and the `NoiseSpec` of the training split. Both are
frozen and serialisable (`to_dict`, `from_dict`), so a run specification
can embed them and a resume can compare them field by field. What batches
the samples (batch size, augmentation, shuffle seed, epochs) is the
recipe's, not the data's.
"""

import dataclasses
import os

NOISE_TYPES = ("symmetric", "pair")


def _from_dict(cls, values, what):
    """`cls(**values)`, naming unknown keys in a `ValueError`."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(
            f"unknown {what} field(s) {unknown}; expected some of "
            f"{sorted(names)}"
        )
    return cls(**values)


@dataclasses.dataclass(frozen=True)
class NoiseSpec:
    """Label noise of the training split: a seeded rate, or a noise file.

    Args:
        rate: float. Fraction of each class to flip, in `[0, 1]`.
            Defaults to `0.0` (no noise).
        type: str. `"symmetric"` (to a uniform other class) or `"pair"`
            (to the next class). Defaults to `"symmetric"`.
        seed: int. Seed of the flips. Defaults to `0`.
        file: str or None. An EAC-style (RAF-DB list format) noisy label
            file; excludes `rate`.

    Example:
    >>> from ferzoo.data import NoiseSpec
    >>> NoiseSpec(rate=0.3, seed=1).to_dict()
    {'rate': 0.3, 'type': 'symmetric', 'seed': 1, 'file': None}
    """

    rate: float = 0.0
    type: str = "symmetric"
    seed: int = 0
    file: object = None

    def __post_init__(self):
        if self.type not in NOISE_TYPES:
            raise ValueError(
                "`noise_type` must be 'symmetric' or 'pair'. "
                f"Received: noise_type={self.type!r}"
            )
        if not 0.0 <= float(self.rate) <= 1.0:
            raise ValueError(
                "`noise_rate` must be in [0, 1]. "
                f"Received: noise_rate={self.rate}"
            )
        if self.file is not None and self.rate:
            raise ValueError(
                "Pass either `noise_rate` or `noise_file`, not both. "
                f"Received: noise_rate={self.rate}, "
                f"noise_file={self.file!r}"
            )

    @property
    def active(self):
        """Whether any label is to be changed (a rate or a file)."""
        return self.file is not None or bool(self.rate)

    def to_dict(self):
        values = dataclasses.asdict(self)
        if self.file is not None:
            values["file"] = os.fspath(self.file)
        return values

    @classmethod
    def from_dict(cls, values):
        return _from_dict(cls, dict(values), "noise")


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """The data of a run: which samples, at which size, with which noise.

    Args:
        data: str. `"KIND:PATH"` (see `ferzoo.data.load_split`).
        image_size: int or `(height, width)`. Defaults to `48`.
        on_error: str. `"raise"` or `"skip"` bad samples.
        limit_per_class: int or None. A seeded per-class cap.
        subset_seed: int. Seed of the `limit_per_class` subset.
        classes: tuple of str, or None. The class order of `imagefolder`
            or `rafdb` data.
        stream: bool or None. Decode images inside tf.data from their
            files; `None` streams file-backed splits above
            `ferzoo.data.streaming.STREAM_THRESHOLD`.
        noise: NoiseSpec. Noise of the training split.

    Example:
    >>> from ferzoo.data import DataSpec
    >>> spec = DataSpec.from_kwargs("synthetic:70", noise_rate=0.2)
    >>> spec.noise.rate, DataSpec.from_dict(spec.to_dict()) == spec
    (0.2, True)
    """

    data: str = "synthetic"
    image_size: object = 48
    on_error: str = "raise"
    limit_per_class: object = None
    subset_seed: int = 0
    classes: object = None
    stream: object = None
    noise: NoiseSpec = NoiseSpec()

    def __post_init__(self):
        # Lists (from JSON or a caller) become tuples: the spec hashes.
        if isinstance(self.image_size, list):
            object.__setattr__(self, "image_size", tuple(self.image_size))
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(self.classes))
        if not isinstance(self.noise, NoiseSpec):
            raise TypeError(
                f"`noise` must be a `NoiseSpec`. Received: noise={self.noise!r}"
            )

    @classmethod
    def from_kwargs(
        cls,
        data,
        noise_rate=0.0,
        noise_type="symmetric",
        noise_seed=0,
        noise_file=None,
        **fields,
    ):
        """The spec of `load_split`'s keywords: flat `noise_*`, the fields."""
        noise = NoiseSpec(noise_rate, noise_type, noise_seed, noise_file)
        return cls(data, noise=noise, **fields)

    def to_dict(self):
        """A JSON-ready dict (`noise` nested); `from_dict` reverses it."""
        values = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self)
        }
        if isinstance(self.image_size, tuple):
            values["image_size"] = list(self.image_size)
        if self.classes is not None:
            values["classes"] = list(self.classes)
        values["noise"] = self.noise.to_dict()
        return values

    @classmethod
    def from_dict(cls, values):
        values = dict(values)
        values["noise"] = NoiseSpec.from_dict(values.get("noise") or {})
        return _from_dict(cls, values, "data")
