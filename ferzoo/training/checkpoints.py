"""Atomic writes, crash-consistent checkpoints and the run folder's files.

`save_checkpoint` writes `last.keras`, `best.keras` and `state.json` as one
step; `recover_checkpoint` finishes an interrupted one.
"""

import hashlib
import json
import os
import pathlib
import shutil

import keras
import numpy as np

from ferzoo.errors import DataError
from ferzoo.spec import SPEC_FILE

RESULTS_FILE = "results.json"
STATE_FILE = "state.json"


def atomic_write_json(path, obj):
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(obj, indent=2, default=_json_default) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def atomic_save_model(model, path):
    """`model.save(path)` through a temporary file and `os.replace`."""
    path = pathlib.Path(path)
    tmp = path.with_name(".tmp-" + path.name)
    model.save(tmp)
    _fsync(tmp)
    os.replace(tmp, path)


def _fsync(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def file_digest(path, algorithm="sha256"):
    """The hex digest of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256(path):
    return file_digest(path)


def _write_point(name, epoch):
    """Called between the writes of a checkpoint (a no-op; the kill tests
    replace it to stop the process at each point)."""


CHECKPOINTS = ("last", "best")


def save_checkpoint(out, model, state, best_improved, previous=None):
    """Write `last.keras`, `best.keras` (if improved) and `state.json` as
    one crash-consistent step.

    The models go to new files (`.last-EPOCH.keras`), then `state.json` is
    replaced atomically, naming them with their SHA-256 (the commit
    point), then they are renamed to `last.keras` / `best.keras`. A crash
    before the commit leaves the previous state and checkpoint; after it,
    `recover_checkpoint` finishes the renames. `previous` is the former
    state's `checkpoint` entry (for a `best.keras` not rewritten).
    """
    out = pathlib.Path(out)
    epoch = int(state["epoch"])
    entries = dict(previous or {})
    for key in CHECKPOINTS:
        if key == "best" and not best_improved:
            continue
        tmp = out / f".{key}-{epoch:05d}.keras"
        model.save(tmp)
        _fsync(tmp)
        entries[key] = {"file": tmp.name, "sha256": _sha256(tmp)}
        _write_point(f"{key}_saved", epoch)
    state = {**state, "checkpoint": entries}
    atomic_write_json(out / STATE_FILE, state)
    _write_point("state_written", epoch)
    return state


def finish_checkpoint(out, state):
    """After `save_checkpoint`'s commit: rename the new files into place
    (what `recover_checkpoint` does after a crash, without re-hashing)."""
    out = pathlib.Path(out)
    for key in CHECKPOINTS:
        entry = (state.get("checkpoint") or {}).get(key)
        new = None if entry is None else out / entry["file"]
        if new is not None and new.is_file():
            os.replace(new, out / f"{key}.keras")
            _write_point(f"{key}_moved", int(state["epoch"]))


def recover_checkpoint(out, state, names=CHECKPOINTS):
    """Make `last.keras` / `best.keras` the files `state` names.

    Finishes the renames of an interrupted `save_checkpoint` and removes
    its stale temporary files. A checkpoint that is neither in place nor
    among the new files (truncated, changed or missing) is a `DataError`
    that points at `--no-resume`.
    """
    out = pathlib.Path(out)
    entries = state.get("checkpoint") or {}
    for key in names:
        entry = entries.get(key)
        if entry is None:
            continue
        target = out / f"{key}.keras"
        if target.is_file() and _sha256(target) == entry["sha256"]:
            continue
        new = out / entry["file"]
        if new.is_file() and _sha256(new) == entry["sha256"]:
            os.replace(new, target)
            _write_point(f"{key}_moved", int(state["epoch"]))
            continue
        if key == "best" and not target.exists():
            continue  # a worker's private copy holds only last.keras
        raise DataError(
            f"{key}.keras is truncated or is not the checkpoint "
            f"{STATE_FILE} records (epoch {int(state['epoch']) + 1}); the "
            "run cannot resume from it. Start over with --no-resume "
            "(resume=False), or pass another --output-dir",
            path=target,
        )
    # Every named checkpoint is in place: the new files left are stale.
    for key in CHECKPOINTS:
        for stale in out.glob(f".{key}-[0-9][0-9][0-9][0-9][0-9].keras"):
            stale.unlink(missing_ok=True)


def load_checkpoint(path, hint=None):
    """`keras.saving.load_model(path)`, or a `DataError` naming the file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError("no such checkpoint", path=path)
    try:
        return keras.saving.load_model(path)
    except Exception as e:  # Keras raises many types on a bad archive
        message = (
            "not a readable .keras checkpoint (truncated or corrupt?): "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        )
        raise DataError(message + (f". {hint}" if hint else ""), path=path)


def write_history(path, records):
    """`history.csv` (as Keras' CSVLogger writes it) from the records."""
    keys = sorted({k for r in records for k in r if k != "epoch"})
    lines = [",".join(["epoch", *keys])]
    for r in records:
        lines.append(",".join(str(r.get(k, "")) for k in ["epoch", *keys]))
    path = pathlib.Path(path)
    tmp = path.with_name(".tmp-" + path.name)
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


# What a training run writes; a fresh start (`resume=False`) removes these.
RUN_FILES = (
    STATE_FILE,
    "last.keras",
    "best.keras",
    "history.csv",
    RESULTS_FILE,
    "confusion_matrix.png",
    "confusion_matrix.json",
    SPEC_FILE,
)


def _remove_run_files(out):
    """Delete a previous run's files (by name; other files are kept).

    Only for a folder that `ferzoo.outputs` says is a ferzoo run folder.
    """
    for name in RUN_FILES:
        path = out / name
        if path.is_file():
            path.unlink()
    for key in CHECKPOINTS:
        for stale in out.glob(f".{key}-[0-9][0-9][0-9][0-9][0-9].keras"):
            stale.unlink(missing_ok=True)
    shutil.rmtree(out / "logs", ignore_errors=True)


# What an older ferzoo (before output-folder markers) left in a run folder.
_UNMARKED_RUN_FILES = set(RUN_FILES) | {
    "logs",
    "config.json",
    "metadata.json",
    "model.weights.h5",
}


def _is_unmarked_run(folder):
    """A run folder from before markers: only ferzoo's run files, with a
    `state.json` (settings and records) and its `last.keras`."""
    names = {n for n in os.listdir(folder) if not n.startswith(".tmp-")}
    if not names <= _UNMARKED_RUN_FILES or "last.keras" not in names:
        return False
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and {"epoch", "records", "config"} <= set(
        state
    )


def _read_state(path):
    """The resume state in `path`, or None for an older ferzoo's state
    without its `last.keras`."""
    try:
        state = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
        int(state["epoch"]), state["records"], state["best"]
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(
            f"unreadable resume state ({type(e).__name__}: {e}); start over "
            "with --no-resume (resume=False), or pass another --output-dir",
            path=path,
        ) from None
    if "checkpoint" not in state and not (path.parent / "last.keras").is_file():
        return None
    return state
