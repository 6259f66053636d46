"""The run specification: what one training run is, as one frozen object.

A `RunSpec` holds the preset and its overrides, the data, the label
noise, the seed, the recipe (epochs, batch size, learning rate, ...), the
model selection (the carved val fraction), the distribution, streaming,
the frozen trunk and (for an audit's fold) the fold. `ferzoo-train`,
`ferzoo-audit` (one spec per fold), `ferzoo-eval` (reads a run's spec) and
the benchmark harness build and read the same object; a training run
writes it to its folder as `spec.json`, and a resume compares the recorded
spec with the requested one field by field (`RunSpec.diff`).

Example:
>>> spec = ferzoo.spec.RunSpec.create("scn_small_cnn_synthetic", noise_rate=0.3)
>>> spec.noise.rate, spec.data.source
(0.3, 'synthetic')
>>> ferzoo.spec.RunSpec.from_json(spec.to_json()) == spec
True
>>> spec.diff(spec.replace(seed=1))
{'seed': (0, 1)}
"""

import dataclasses
import hashlib
import json
import os
import typing

SPEC_FILE = "spec.json"
SPEC_VERSION = 1
RECIPE_KEYS = ("epochs", "batch_size", "learning_rate", "image_size")
# Dtype policies a run may train under: mixed bfloat16 computes in
# bfloat16 and keeps float32 variables, losses and per-sample tables.
DTYPE_POLICIES = ("float32", "mixed_bfloat16")


def check_dtype_policy(policy):
    """`policy` if it is one of `DTYPE_POLICIES`, else a `ValueError`."""
    if policy not in DTYPE_POLICIES:
        raise ValueError(
            f"`dtype_policy` must be one of {', '.join(DTYPE_POLICIES)}. "
            f"Received: dtype_policy={policy!r}"
        )
    return policy


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """The data: `source` (`KIND:PATH`), class order, subset, bad samples.

    `stream` is None (stream large splits), True or False.
    """

    source: str = "synthetic"
    classes: typing.Optional[tuple] = None
    limit_per_class: typing.Optional[int] = None
    on_error: str = "raise"
    stream: typing.Optional[bool] = None

    def __post_init__(self):
        classes = tuple(self.classes) if self.classes else None
        object.__setattr__(self, "classes", classes)


@dataclasses.dataclass(frozen=True)
class NoiseSpec:
    """The label noise injected into the training split (or a file)."""

    rate: float = 0.0
    type: typing.Optional[str] = "symmetric"
    seed: int = 0
    file: typing.Optional[str] = None


@dataclasses.dataclass(frozen=True)
class RecipeSpec:
    """Recipe overrides; None keeps the preset's (resolved at train time).

    `extra` holds further recipe keys (e.g. `{"augment": {}}`), applied
    before the named fields. `dtype_policy` is the Keras dtype policy
    the model trains under (`DTYPE_POLICIES`); None keeps the recipe's
    (float32 when it names none). A resolved spec records a float32
    policy as None, and `to_dict` leaves a None policy out, so a float32
    run's spec is the one it was before the field existed.
    """

    epochs: typing.Optional[int] = None
    batch_size: typing.Optional[int] = None
    learning_rate: typing.Optional[float] = None
    image_size: typing.Optional[int] = None
    extra: dict = dataclasses.field(default_factory=dict)
    dtype_policy: typing.Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "extra", dict(self.extra or {}))
        if self.dtype_policy is not None:
            check_dtype_policy(self.dtype_policy)

    def apply(self, recipe):
        """`recipe` (a dict) with these overrides applied."""
        recipe = {**recipe, **self.extra}
        for key in (*RECIPE_KEYS, "dtype_policy"):
            if getattr(self, key) is not None:
                recipe[key] = getattr(self, key)
        return recipe


@dataclasses.dataclass(frozen=True)
class SelectionSpec:
    """Model selection: with no val split, the fraction of each class of
    the noisy training split held out (0 selects nothing)."""

    val_fraction: float = 0.1


@dataclasses.dataclass(frozen=True)
class FoldSpec:
    """An audit fold: train on every fold but `index` (0-based) of
    `folds`, assigned by `ferzoo.audit.fold_assignment(labels, folds,
    seed)`."""

    index: int
    folds: int
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run (see the module docstring)."""

    preset: str
    data: DataSpec = DataSpec()
    noise: NoiseSpec = NoiseSpec()
    recipe: RecipeSpec = RecipeSpec()
    selection: SelectionSpec = SelectionSpec()
    seed: int = 0
    overrides: dict = dataclasses.field(default_factory=dict)
    distribute: str = "none"
    freeze_until: typing.Optional[str] = None
    trunk_cache: typing.Optional[str] = None
    fold: typing.Optional[FoldSpec] = None

    def __post_init__(self):
        object.__setattr__(self, "overrides", dict(self.overrides or {}))

    @classmethod
    def create(
        cls,
        preset,
        data="synthetic",
        noise_rate=0.0,
        noise_type="symmetric",
        noise_seed=0,
        noise_file=None,
        epochs=None,
        batch_size=None,
        learning_rate=None,
        seed=0,
        limit_per_class=None,
        on_error="raise",
        overrides=None,
        classes=None,
        val_fraction=0.1,
        distribute="none",
        stream=None,
        freeze_until=None,
        trunk_cache=None,
        image_size=None,
        recipe=None,
        fold=None,
        dtype_policy=None,
    ):
        """A spec from `ferzoo.training.train`'s keyword arguments."""
        return cls(
            preset=str(preset),
            data=DataSpec(
                str(data), classes, limit_per_class, on_error, stream
            ),
            noise=NoiseSpec(
                float(noise_rate or 0.0), noise_type, noise_seed, noise_file
            ),
            recipe=RecipeSpec(
                epochs,
                batch_size,
                learning_rate,
                image_size,
                recipe,
                dtype_policy=dtype_policy,
            ),
            selection=SelectionSpec(float(val_fraction)),
            seed=seed,
            overrides=overrides,
            distribute=distribute,
            freeze_until=freeze_until,
            trunk_cache=trunk_cache,
            fold=fold,
        )

    def replace(self, **changes):
        """A copy with top-level fields changed (`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """The JSON-able dict (tuples become lists; no `recipe.dtype_policy`
        when it is None)."""
        d = dataclasses.asdict(self)
        if d["recipe"]["dtype_policy"] is None:
            del d["recipe"]["dtype_policy"]
        return _plain({"version": SPEC_VERSION, **d})

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d):
        d = {k: v for k, v in d.items() if k != "version"}
        nested = {
            "data": DataSpec,
            "noise": NoiseSpec,
            "recipe": RecipeSpec,
            "selection": SelectionSpec,
            "fold": FoldSpec,
        }
        for key, kind in nested.items():
            if isinstance(d.get(key), dict):
                d[key] = kind(**d[key])
        return cls(**d)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    def write(self, folder):
        """Write `spec.json` into `folder` (atomically)."""
        path = os.path.join(folder, SPEC_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.to_json() + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, folder):
        """The spec in `folder`'s `spec.json`, or None when it has none."""
        path = os.path.join(folder, SPEC_FILE)
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())

    def flat(self):
        """`{dotted.name: value}` of every leaf field (JSON values)."""
        return _flatten(self.to_dict())

    def hash(self):
        """A stable hex digest of the spec (the same in every process)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __hash__(self):
        return int(self.hash(), 16)

    def __eq__(self, other):
        # As JSON: an override `(24, 24, 3)` equals its JSON `[24, 24, 3]`.
        if not isinstance(other, RunSpec):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def diff(self, other, fields=None):
        """`{dotted.name: (mine, theirs)}` of the fields that differ.

        `fields`: only these dotted names (or their prefixes, e.g.
        `"noise"`); default every field.
        """
        mine, theirs = self.flat(), other.flat()
        names = sorted(set(mine) | set(theirs))
        if fields is not None:
            names = [n for n in names if _selected(n, fields)]
        return {
            n: (mine.get(n), theirs.get(n))
            for n in names
            if mine.get(n) != theirs.get(n)
        }


def _selected(name, fields):
    return any(name == f or name.startswith(f + ".") for f in fields)


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return obj.item()  # a NumPy scalar
    return obj


def _flatten(d, prefix=""):
    out = {}
    for key, value in d.items():
        name = prefix + key
        if key == "version":
            continue
        if isinstance(value, dict) and key not in ("overrides", "extra"):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out
