"""Measure FER2013's framing for `ferzoo.predict`'s face crops.

Two numbers sets, printed as the constants they become:

- `--template`: the five alignment points (eye centres, nose tip, mouth
  corners; `ferzoo.predict.align.five_points`) of face-api's landmark net
  on FER2013 training faces (each whole 48 x 48 image is the face box),
  averaged in units of the crop's side and rotated about their centroid
  so the eyes are level: `ferzoo.predict.align.FER2013_TEMPLATE`.
- `--ssd`: how often face-api's SSD (one upright pass, score > 0.5) finds
  a face in FER2013's own crops (none of 1,000 training images: the face
  fills the frame), and, where it does, the medians of crop side / box
  side and of the crop centre's offset from the box centre. The SSD
  framing constants `ferzoo.predict.detect.SSD_FRAME_*` come from pasted
  faces instead: `scripts/detection_check.py --calibrate`.

Training faces only (the test split stays for measuring). Invocation:
    python scripts/calibrate_framing.py --data /tmp/fer2013 \\
        --count 2000 --template --ssd
"""

import pathlib
import sys

import click
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def sample_images(data, split, count, seed):
    files = sorted(pathlib.Path(data, split).glob("*/*"))
    if not files:
        raise click.ClickException(f"no images under {data}/{split}")
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(files), min(count, len(files)), replace=False)
    return [files[i] for i in sorted(picks)]


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True))
@click.option("--split", default="train", show_default=True)
@click.option("--count", default=2000, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--template", is_flag=True)
@click.option("--ssd", is_flag=True)
def main(data, split, count, seed, template, ssd):
    """Print FER2013's alignment template and SSD framing constants."""
    from ferzoo.predict import align
    from ferzoo.predict import detect
    from ferzoo.predict.images import read_image

    files = sample_images(data, split, count, seed)
    images = [read_image(f) for f in files]
    click.echo(f"{len(images)} {split} faces from {data}")
    if template:
        aligner = align.FaceAligner()
        pairs = [(rgb, [(0, 0, *rgb.shape[:2][::-1])]) for rgb in images]
        points = [
            align.five_points(marks[0]) / rgb.shape[:2][::-1]
            for (rgb, _), marks in zip(pairs, aligner.landmarks_many(pairs))
        ]
        mean = np.mean(points, 0)
        angle = np.radians(align.eye_angle(mean))
        centre = mean.mean(0)
        cos, sin = np.cos(-angle), np.sin(-angle)
        level = (mean - centre) @ np.array([[cos, -sin], [sin, cos]]).T
        level += centre
        angles = [align.eye_angle(p) for p in points]
        click.echo(
            f"eye-line angle: mean {np.mean(angles):.2f}, sd "
            f"{np.std(angles):.2f} degrees; template rotated by "
            f"{np.degrees(angle):.2f}"
        )
        click.echo("FER2013_TEMPLATE = [")
        for x, y in level:
            click.echo(f"    [{x:.4f}, {y:.4f}],")
        click.echo("]")
    if ssd:
        detector = detect.SSDFaceDetector()
        ratios, dx, dy, found = [], [], [], 0
        for rgb, faces in zip(images, detector.detect_batch(images)):
            if not faces:
                continue
            found += 1
            x, y, w, h = max(faces, key=lambda d: d.score).box
            height, width = rgb.shape[:2]
            ratios.append(width / np.sqrt(w * h))
            dx.append((width / 2 - (x + w / 2)) / w)
            dy.append((height / 2 - (y + h / 2)) / h)
        click.echo(f"SSD found a face in {found}/{len(images)}")
        if not ratios:
            return
        click.echo(f"SSD_FRAME_SCALE = {np.median(ratios):.3f}")
        click.echo(f"SSD_FRAME_SHIFT_X = {np.median(dx):.3f}")
        click.echo(f"SSD_FRAME_SHIFT_Y = {np.median(dy):.3f}")
        click.echo(
            f"(quartiles: scale {np.percentile(ratios, [25, 75]).round(3)}, "
            f"shift y {np.percentile(dy, [25, 75]).round(3)})"
        )


if __name__ == "__main__":
    main()
