"""Exceptions raised by ferzoo.

Each error names the file, line or field that caused it, so a user can fix
the input without reading a traceback.
"""


class FerzooError(Exception):
    """Base class of every error ferzoo raises on purpose."""


class DataError(FerzooError, ValueError):
    """A data set, label file or image cannot be used as given.

    Args:
        message: str. What is wrong.
        path: str or None. The file or folder at fault.
        line: int or None. The 1-based line number in `path`, if any.
    """

    def __init__(self, message, path=None, line=None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)


class PresetError(FerzooError, ValueError):
    """A preset name or folder cannot be resolved or loaded."""


class DivergedError(FerzooError, RuntimeError):
    """Training produced a non-finite loss."""


class RunMismatchError(FerzooError, ValueError):
    """An output folder holds a run with other settings than requested.

    Args:
        output_dir: str or path. The folder.
        differences: dict `{field: (recorded, requested)}`.
    """

    def __init__(self, output_dir, differences):
        self.output_dir = str(output_dir)
        self.differences = dict(differences)
        fields = "; ".join(
            f"{key}: {old!r} there, {new!r} now"
            for key, (old, new) in self.differences.items()
        )
        super().__init__(
            f"{output_dir} holds a run with other settings ({fields}), so "
            "it cannot be resumed with these. Start over in that folder with "
            "--no-resume (resume=False; its old run is replaced), or pass "
            "another --output-dir."
        )


class OutputFolderError(FerzooError, ValueError):
    """An output folder that ferzoo must not, or cannot, write into.

    Not ferzoo's (no marker), another command's output, in use by another
    process, or not writable. The command line exits with code 2.

    Args:
        folder: str or path. The folder.
        reason: str. What is wrong, as a phrase after the folder's name.
    """

    def __init__(self, folder, reason):
        self.folder = str(folder)
        super().__init__(f"output folder {folder}: {reason}.")


class UsageError(FerzooError, ValueError):
    """Arguments that do not fit together (the command line exits with 2),
    e.g. a model evaluated on data with other classes."""
