"""Regenerate docs/images/ferzoo_predict_example.jpg (the README's photo).

Runs `ferzoo-predict grace_hopper.jpg --output-dir OUT --cam` on the
public-domain photo matplotlib ships (`mpl-data/sample_data/`), in a
temporary folder, and puts the annotated photo and the first face's
class activation map side by side, 300 px high. Prints the command's
table. Invocation:
    python scripts/make_readme_example.py
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import matplotlib.cbook
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images" / "ferzoo_predict_example.jpg"


def main():
    photo = matplotlib.cbook.get_sample_data(
        "grace_hopper.jpg", asfileobj=False
    )
    with tempfile.TemporaryDirectory(prefix="ferzoo-readme-") as tmp:
        shutil.copy(photo, f"{tmp}/grace_hopper.jpg")
        command = [sys.executable, "-m", "ferzoo.cli.predict"]
        command += ["grace_hopper.jpg", "--output-dir", "out", "--cam"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's
        done = subprocess.run(
            command, cwd=tmp, capture_output=True, text=True, env=env
        )
        print(done.stdout)
        if done.returncode:
            sys.exit(done.stderr[-2000:])
        left = Image.open(f"{tmp}/out/annotated/grace_hopper.jpg")
        right = Image.open(f"{tmp}/out/cam/grace_hopper_face1.png")
        height = 300
        left = left.resize((round(left.width * height / left.height), height))
        right = right.resize(
            (round(right.width * height / right.height), height)
        )
        sheet = Image.new(
            "RGB", (left.width + 10 + right.width, height), "white"
        )
        sheet.paste(left, (0, 0))
        sheet.paste(right.convert("RGB"), (left.width + 10, 0))
        sheet.save(OUT, quality=90)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
