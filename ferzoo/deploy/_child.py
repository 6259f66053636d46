"""Child process of `ferzoo.deploy.export_format` on a non-TF backend.

`python -m ferzoo.deploy._child SPEC.json` (with KERAS_BACKEND=tensorflow)
loads the `.keras` file the parent saved and writes the export.
"""

import json
import pathlib
import sys


def main(spec_path):
    spec = json.loads(pathlib.Path(spec_path).read_text())
    import keras

    from ferzoo import deploy
    from ferzoo import models  # noqa: F401  (registers ferzoo's classes)

    if keras.backend.backend() != "tensorflow":
        raise SystemExit("the export child needs KERAS_BACKEND=tensorflow")
    model = keras.saving.load_model(spec["model"], compile=False)
    for job in spec["jobs"]:
        deploy._export_here(
            model,
            pathlib.Path(job["path"]),
            job["format"],
            job["metadata"],
            spec["verbose"],
        )


if __name__ == "__main__":
    main(sys.argv[1])
