"""Measure how FER2013's crops compare with OpenCV's Haar face box.

Each image of a FER2013 split (ImageFolder layout, 48 x 48 gray) is
upscaled, padded by replicating its border, and given to the same Haar
cascade `ferzoo-predict` uses; the ratio crop side / box side tells which
margin makes a photo's face crop look like FER2013's (margin per side =
(ratio - 1) / 2). The result fixes `ferzoo.predict.DEFAULT_MARGIN`.

    python scripts/haar_margin.py --data-dir /work/data/fer2013/test --every 10
"""

import pathlib

import click
import numpy as np


@click.command()
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="A FER2013 split folder with one subfolder per class.",
)
@click.option(
    "--every",
    default=10,
    show_default=True,
    help="Use every N-th image (sorted by path).",
)
@click.option("--scale", default=4, show_default=True, help="Upscaling factor.")
def main(data_dir, every, scale):
    """Print the median FER2013 crop / Haar box ratio over a split."""
    import cv2
    from PIL import Image

    from ferzoo.predict import images

    files = sorted(pathlib.Path(data_dir).glob("*/*.jpg"))[::every]
    ratios = []
    for path in files:
        gray = Image.open(path).convert("L")
        side = gray.size[0] * scale
        gray = np.asarray(gray.resize((side, side), Image.BILINEAR))
        pad = side // 2
        padded = cv2.copyMakeBorder(gray, *[pad] * 4, cv2.BORDER_REPLICATE)
        boxes = images.detect_faces(np.stack([padded] * 3, -1))
        if boxes:
            width = max(boxes, key=lambda b: b[2] * b[3])[2]
            ratios.append(side / width)
    ratios = np.array(ratios)
    q25, median, q75 = np.percentile(ratios, [25, 50, 75])
    click.echo(
        f"{len(ratios)} of {len(files)} images with a face; crop/box ratio "
        f"median {median:.3f} (quartiles {q25:.3f}, {q75:.3f}); margin per "
        f"side {(median - 1) / 2:.3f}"
    )


if __name__ == "__main__":
    main()
