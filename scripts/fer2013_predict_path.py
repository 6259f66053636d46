"""FER2013 PrivateTest accuracy through `ferzoo.predict`'s face path.

Each PrivateTest image (48 x 48, the whole face crop) goes through the
detector and the crop step of `ferzoo.predict` (`FaceCropper`), with
and without alignment (`--align-mode level`, the default: the crop
turned until the eyes are level; `template`: the five points mapped onto
FER2013's mean template), then the shipped model. For `--detector none` the
whole image is the face box (aligned: face-api's landmarks on it, then
the warp onto FER2013's template); for `ssd` and `haar` an image where
no face is found counts as wrong (its best-scoring box is used when
there are several). Prints accuracy, macro-F1 and disgust's F1 per
configuration, and the share of images with a face found.

Invocation (FER2013 unpacked outside the repository):
    python scripts/fer2013_predict_path.py --data /tmp/fer2013 \\
        --detector none --detector ssd --json /tmp/fer_predict_path.json
"""

import json
import pathlib
import sys
import time

import click
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAMES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True))
@click.option("--split", default="test", show_default=True)
@click.option("--model", default="ferzoo_fer2013", show_default=True)
@click.option(
    "--detector", "detectors", multiple=True, default=("none",),
    show_default=True)  # fmt: skip
@click.option(
    "--align-mode",
    type=click.Choice(["level", "template"]),
    default="level",
    show_default=True,
    help="ferzoo.predict.align.FaceAligner's mode for the aligned rows.",
)
@click.option("--limit", type=int, help="A seeded subset of this size.")
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False))
def main(data, split, model, detectors, align_mode, limit, seed, json_path):
    """FER2013 accuracy through the predict path, aligned and not."""
    from sklearn.metrics import f1_score

    from ferzoo.predict import load_predictor
    from ferzoo.predict.images import read_image
    from ferzoo.predict.pipeline import FaceCropper

    files = sorted(pathlib.Path(data, split).glob("*/*"))
    if limit:
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(files), limit, replace=False)
        files = [files[i] for i in sorted(picks)]
    labels = np.array([NAMES.index(f.parent.name) for f in files])
    predictor = load_predictor(model)
    rows = []
    for name in detectors:
        start = time.time()
        croppers = {
            a: FaceCropper(
                name,
                a,
                0.0,
                predictor.image_size,
                predictor.grayscale,
                align_mode,
            )
            for a in (False, True)
        }
        detector = croppers[True].detector
        preds = {False: [], True: []}
        found = 0
        for k in range(0, len(files), 64):
            images = [read_image(f) for f in files[k : k + 64]]
            detections = detector.detect_batch(images)
            best = [
                [max(dets, key=lambda d: d.score or 0.0)] if dets else []
                for dets in detections
            ]
            for a, cropper in croppers.items():
                crops, owner = [], []
                for i, faces in enumerate(cropper.crops(images, best)):
                    if faces:
                        crops.append(faces[0][1])
                        owner.append(i)
                out = np.full(len(images), -1)
                if crops:
                    probs = predictor.predict(np.stack(crops))
                    out[owner] = probs.argmax(-1)
                preds[a].extend(out.tolist())
            found += sum(1 for d in detections if d)
            click.echo(f"{name}: {k + len(images)}/{len(files)}", err=True)
        for a in (False, True):
            p = np.array(preds[a])
            f1 = f1_score(labels, p, labels=range(7), average=None)
            row = {
                "detector": name,
                "align": align_mode if a else False,
                "images": len(files),
                "found": found / len(files),
                "accuracy": float((p == labels).mean()),
                "macro_f1": float(f1.mean()),
                "disgust_f1": float(f1[1]),
                "seconds": round(time.time() - start, 1),
            }
            rows.append(row)
            click.echo(json.dumps(row))
    click.echo("\n| detector | aligned | face found | accuracy | macro-F1 | "
               "disgust F1 |\n|---|---|---|---|---|---|")  # fmt: skip
    for r in rows:
        click.echo(
            f"| {r['detector']} | {r['align'] or 'no'} | "
            f"{r['found']:.3f} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | "
            f"{r['disgust_f1']:.3f} |"
        )
    if json_path:
        pathlib.Path(json_path).write_text(
            json.dumps({"split": split, "model": model, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
