"""Output folders: ferzoo writes only into folders it owns.

One policy for every command that writes a folder (`ferzoo-train`,
`ferzoo-audit`, `ferzoo-eval --output-dir`, `ferzoo-predict --output-dir`,
`ferzoo-export`, `ferzoo-convert`):

- A folder is ferzoo's when it holds the marker file `.ferzoo-output.json`
  that ferzoo wrote there, naming what wrote it (`kind`: `"train"`,
  `"audit"`, `"export"`, ...). A folder that does not exist, or is empty,
  is claimed (the marker is written first). A non-empty folder without
  the marker, or with another kind's marker, is refused with an
  `OutputFolderError` (exit code 2): ferzoo never deletes or overwrites a
  file it did not write.
- Commands that replace their earlier output wholesale (export, convert)
  need `overwrite=True` to replace a folder of their own kind.
- `claim()` also holds an OS lock (`fcntl.flock` on `.ferzoo-lock` in the
  folder) for as long as the command runs; a crash releases it. A second
  command on the same folder stops with "in use by pid N" (exit code 2).
- The folder must be writable; that is checked at the claim, before any
  data is read.
"""

import contextlib
import errno
import json
import os
import pathlib
import shutil
import tempfile

from ferzoo.errors import OutputFolderError
from ferzoo.version import __version__

MARKER = ".ferzoo-output.json"
LOCK = ".ferzoo-lock"
KINDS = ("train", "audit", "eval", "predict", "export", "convert")


def read_marker(folder):
    """The marker dict of `folder`, or None when it has none."""
    path = pathlib.Path(folder) / MARKER
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def is_ours(folder, kind):
    """Whether `folder` holds a marker of `kind` (written by ferzoo)."""
    marker = read_marker(folder)
    return marker is not None and marker.get("kind") == kind


def _listing(folder):
    return [name for name in os.listdir(folder) if name != LOCK]


def check(folder, kind, overwrite=False, replace=False, adopt=None):
    """Raise `OutputFolderError` unless ferzoo may write `kind` into `folder`.

    Returns `"new"` (missing or empty folder) or `"ours"` (a folder this
    kind of command wrote before). With `replace=True` (the command
    replaces the folder's content), `"ours"` also needs `overwrite=True`.
    `adopt(folder)` may recognise a folder an older ferzoo wrote before
    markers existed (it is then `"ours"`, and `claim` marks it).
    """
    folder = pathlib.Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(folder, "is a file, not a folder")
    if not folder.exists() or not _listing(folder):
        return "new"
    marker = read_marker(folder)
    if marker is None and adopt is not None and adopt(folder):
        return "ours"
    if marker is None:
        raise OutputFolderError(
            folder,
            "is not empty and was not written by ferzoo (no "
            f"{MARKER}); ferzoo never deletes or overwrites files it did "
            "not write. Pass an empty or new folder",
        )
    if marker.get("kind") != kind:
        raise OutputFolderError(
            folder,
            f"holds ferzoo {marker.get('kind')!r} output, not {kind!r} "
            "output; pass another folder",
        )
    if replace and not overwrite:
        raise OutputFolderError(
            folder,
            f"holds an earlier ferzoo {kind} output; pass --overwrite "
            "(overwrite=True) to replace it, or another folder",
        )
    return "ours"


def _check_writable(folder):
    """Raise `OutputFolderError` if no file can be created in `folder`."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".ferzoo-probe-")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise OutputFolderError(
            folder, f"is not writable ({e.strerror or e})"
        ) from None


def _first_missing_parent(folder):
    folder = pathlib.Path(os.path.abspath(folder))
    top = None
    while not folder.exists():
        top = folder
        folder = folder.parent
    return top, folder


def prepare(folder, kind):
    """Create `folder` if needed and write the marker.

    Returns the topmost folder it created (None if `folder` existed), for
    `release(..., remove=True)` to take away again.
    """
    folder = pathlib.Path(folder)
    created, existing = _first_missing_parent(folder)
    if created is not None:
        _check_writable(existing)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputFolderError(
                folder, f"cannot be created ({e.strerror or e})"
            ) from None
    _check_writable(folder)
    if read_marker(folder) is None:
        write_marker(folder, kind)
    return created


def write_marker(folder, kind):
    """Write (atomically) the marker that says ferzoo owns `folder`."""
    path = pathlib.Path(folder) / MARKER
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps({"kind": kind, "ferzoo_version": __version__})
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)


class FolderLock:
    """An exclusive OS lock on a folder (`fcntl.flock` on `.ferzoo-lock`).

    The kernel releases it when the process ends, crash or kill included.
    Where `fcntl` is missing (Windows) no lock is taken.
    """

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.path = self.folder / LOCK
        self.fd = None

    def acquire(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover (Windows)
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(fd)
                raise
            try:
                holder = os.read(fd, 64).decode(errors="replace").strip()
            finally:
                os.close(fd)
            raise OutputFolderError(
                self.folder,
                f"is in use by pid {holder or '?'} (another ferzoo command "
                "writes there); wait for it to finish or pass another folder",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = None


class Claim:
    """A locked output folder; `release()` unlocks it (and may remove it)."""

    def __init__(self, folder, kind, state, created, lock):
        self.folder = pathlib.Path(folder)
        self.kind = kind
        self.state = state  # "new" or "ours"
        self.created = created  # topmost folder made by the claim, or None
        self.lock = lock

    def release(self, remove=False):
        """Unlock; with `remove=True`, take away what the claim made.

        A folder the claim created is removed whole; a folder that was
        empty loses only the marker and lock files (everything else in it
        was written by this command, and its caller removes that).
        """
        if remove and self.created is not None:
            self.lock.release()
            shutil.rmtree(self.created, ignore_errors=True)
            return
        if remove and self.state == "new":
            for name in (MARKER, LOCK):
                with contextlib.suppress(OSError):
                    os.remove(self.folder / name)
        self.lock.release()
        if not remove:
            with contextlib.suppress(OSError):
                os.remove(self.folder / LOCK)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.release()
        return False


def claim(folder, kind, overwrite=False, replace=False, lock=True, adopt=None):
    """Check, create, mark and lock an output folder (see module docs).

    Args:
        folder: str or path. The output folder.
        kind: str. What writes it (one of `KINDS`).
        overwrite: bool. Allow replacing an earlier output of this kind
            (for `replace=True` commands).
        replace: bool. The command replaces the folder's content.
        lock: bool. Hold the folder's OS lock until `release()`.
        adopt: callable or None. Recognises an unmarked folder an older
            ferzoo wrote (see `check`).

    Returns:
        A `Claim` (also a context manager that releases the lock).

    Raises:
        OutputFolderError: the folder is not ferzoo's `kind` output, is in
            use by another process, or is not writable.
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}. Received: {kind!r}")
    folder = pathlib.Path(folder)
    state = check(folder, kind, overwrite, replace, adopt)
    created = prepare(folder, kind)
    folder_lock = FolderLock(folder)
    if lock:
        try:
            folder_lock.acquire()
        except BaseException:
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            raise
    return Claim(folder, kind, state, created, folder_lock)


def check_replaceable(path, kind, overwrite=False):
    """For commands that write a whole folder elsewhere and rename it into
    place: raise unless `path` is missing, empty, or (with `overwrite`)
    an earlier output of `kind`. Also checks the parent is writable."""
    path = pathlib.Path(path)
    state = check(path, kind, overwrite=overwrite, replace=True)
    created, existing = _first_missing_parent(path.parent)
    _check_writable(existing if created is not None else path.parent)
    return state


def replace_folder(new, path):
    """Move the finished folder `new` to `path`, replacing an earlier
    output there (checked with `check_replaceable`) with two renames."""
    new, path = pathlib.Path(new), pathlib.Path(path)
    old = None
    if path.exists():
        if _listing(path):
            old = path.with_name(f".old-{path.name}-{os.getpid()}")
            os.replace(path, old)
        else:
            with contextlib.suppress(OSError):
                os.remove(path / LOCK)
            os.rmdir(path)
    os.replace(new, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def owned(folder, kind, **kwargs):
    """`claim()` for the life of a `with` block; a block that fails
    leaves no folder it created, and no marker in a folder that was empty.

    `folder=None` claims nothing (yields None).
    """
    if folder is None:
        yield None
        return
    held = claim(folder, kind, **kwargs)
    try:
        yield held
    except BaseException:
        held.release(remove=held.state == "new")
        raise
    held.release()
