"""A detection check anyone can rerun: FER2013 faces pasted into scenes.

Builds `--scenes` seeded scenes (640 x 480): a background of smooth
colour fields, shapes and noise, and one FER2013 PrivateTest face (drawn
without replacement, seeded) pasted at a random side of 48-300 px,
rotated by up to +-30 degrees (its corners blended into the background
by a soft round mask, so no square edge gives it away), at a random
position, and in half of the scenes partly covered by an opaque
skin-toned or random-coloured ellipse or bar over 15-35% of the face
(a hand, a microphone, a scarf). Then, for each detector (`haar` and
ferzoo-predict's default `ssd-blazeface` unless `--detector` names
others), it measures:

- recall: the share of pasted faces that a detected box overlaps at
  IoU >= 0.5, against the face's upright box (its side and centre, the
  box of the unrotated face);
- recall of the crop square: the same, with each SSD box reframed as
  the square ferzoo-predict crops for the classifier
  (`ferzoo.predict.detect.frame_box`, calibrated on training faces;
  the SSD's boxes are narrower than tall, FER2013's crops square;
  BlazeFace's boxes are first put into the SSD's framing);
  Haar's box is its crop square;
- false positives per scene: detected boxes that match no face;
- end-to-end accuracy: the share of pasted faces that are found and
  whose top class (the shipped `ferzoo_fer2013` model, with and without
  alignment) is the face's FER2013 label; a missed face counts as wrong.

Invocation (FER2013 unpacked outside the repository):
    python scripts/detection_check.py --data /tmp/fer2013 --scenes 300 \\
        --seed 0 --json /tmp/detection_check.json
Add `--save-scenes DIR` to write the scenes as PNG files for a look.
"""

import json
import pathlib
import sys
import time

import click
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCENE = (480, 640)  # height, width
SIDES = (48, 300)
MAX_ANGLE = 30.0
OCCLUDED = 0.5
THRESHOLDS = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


def iou(a, b):
    from ferzoo.predict.detect import xywh_iou

    return xywh_iou(a, b)


def background(rng, height, width):
    """Smooth colour fields, a few shapes and sensor-like noise (uint8)."""
    import cv2

    small = rng.uniform(0, 255, (4, 5, 3)).astype(np.float32)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.integers(3, 9)):
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        if rng.random() < 0.5:
            w, h = int(rng.integers(20, 200)), int(rng.integers(20, 200))
            cv2.rectangle(image, (x, y), (x + w, y + h), color, -1)
        else:
            axes = (int(rng.integers(10, 120)), int(rng.integers(10, 120)))
            angle = float(rng.uniform(0, 180))
            cv2.ellipse(image, (x, y), axes, angle, 0, 360, color, -1)
    image = cv2.GaussianBlur(image, (0, 0), 1.5)
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    return np.clip(image, 0, 255)


def paste_face(rng, scene, face):
    """Paste the gray `face` (48 x 48) into `scene` in place; returns the
    face's upright box `(x, y, side, side)`, angle and occlusion flag."""
    import cv2

    height, width = scene.shape[:2]
    side = int(rng.integers(SIDES[0], SIDES[1] + 1))
    angle = float(rng.uniform(-MAX_ANGLE, MAX_ANGLE))
    rgb = np.repeat(face[..., None], 3, -1).astype(np.float32)
    rgb = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_CUBIC)
    # A soft round-cornered mask: the square's corners fade out.
    yy, xx = (np.mgrid[0:side, 0:side] + 0.5) / side * 2 - 1
    corner = np.maximum(np.abs(xx), np.abs(yy))
    radial = np.hypot(xx, yy)
    mask = np.clip((1.25 - np.maximum(radial, corner)) / 0.25, 0, 1)
    mask = mask.astype(np.float32)
    # Rotate about the centre into a canvas big enough for any angle.
    canvas = int(np.ceil(side * np.sqrt(2))) + 2
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    matrix[:, 2] += (canvas - side) / 2
    rotated = cv2.warpAffine(rgb, matrix, (canvas, canvas))
    rotated_mask = cv2.warpAffine(mask, matrix, (canvas, canvas))
    occluded = bool(rng.random() < OCCLUDED)
    if occluded:
        occluder = np.zeros((canvas, canvas), np.float32)
        skin = rng.random() < 0.6
        color = (
            tuple(
                float(c) for c in rng.uniform([150, 100, 80], [240, 190, 160])
            )  # fmt: skip
            if skin
            else tuple(float(c) for c in rng.uniform(0, 255, 3))
        )
        c = canvas / 2
        cover = rng.uniform(0.15, 0.35)
        if rng.random() < 0.5:  # a hand-like ellipse from below or a side
            r = side * np.sqrt(cover / np.pi) * 1.2
            ox = c + rng.uniform(-0.4, 0.4) * side
            oy = c + rng.uniform(0.05, 0.45) * side
            cv2.ellipse(occluder, (int(ox), int(oy)), (int(r * 1.2),
                        int(r * 0.9)), float(rng.uniform(0, 180)), 0, 360,
                        1.0, -1)  # fmt: skip
        else:  # a bar across the lower face or one side
            if rng.random() < 0.5:
                h = cover * side
                y0 = c + side / 2 - h - rng.uniform(0, 0.15) * side
                cv2.rectangle(occluder, (0, int(y0)), (canvas, int(y0 + h)),
                              1.0, -1)  # fmt: skip
            else:
                w = cover * side
                x0 = c - side / 2 if rng.random() < 0.5 else c + side / 2 - w
                cv2.rectangle(occluder, (int(x0), 0), (int(x0 + w), canvas),
                              1.0, -1)  # fmt: skip
        occluder *= (rotated_mask > 0).astype(np.float32)
        rotated = (
            rotated * (1 - occluder[..., None])
            + np.asarray(color, np.float32) * occluder[..., None]
        )
    # A random position that keeps the face's rotated extent inside.
    extent = side * (abs(np.cos(np.radians(angle))) + abs(np.sin(
        np.radians(angle))))  # fmt: skip
    margin = (canvas - extent) / 2
    low = -margin
    x0 = int(rng.uniform(low, width - canvas + margin))
    y0 = int(rng.uniform(low, height - canvas + margin))
    xs, ys = max(0, x0), max(0, y0)
    xe, ye = min(width, x0 + canvas), min(height, y0 + canvas)
    patch = rotated[ys - y0 : ye - y0, xs - x0 : xe - x0]
    alpha = rotated_mask[ys - y0 : ye - y0, xs - x0 : xe - x0][..., None]
    scene[ys:ye, xs:xe] = scene[ys:ye, xs:xe] * (1 - alpha) + patch * alpha
    cx, cy = x0 + canvas / 2, y0 + canvas / 2
    return (cx - side / 2, cy - side / 2, side, side), angle, occluded


def test_faces(data, count, seed, split="test"):
    from PIL import Image

    names = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    files = sorted(pathlib.Path(data, split).glob("*/*"))
    if not files:
        raise click.ClickException(f"no images under {data}/{split}")
    rng = np.random.default_rng(seed + 1)
    picks = rng.choice(len(files), min(count, len(files)), replace=False)
    out = []
    for i in picks:
        face = np.asarray(Image.open(files[i]).convert("L"), np.float32)
        out.append((face, names.index(files[i].parent.name), str(files[i])))
    return out


def make_scenes(data, count, seed, split="test"):
    """`[(uint8 scene, upright box, label, angle, occluded, file)]`."""
    rng = np.random.default_rng(seed)
    scenes = []
    for face, label, path in test_faces(data, count, seed, split):
        scene = background(rng, *SCENE)
        box, angle, occluded = paste_face(rng, scene, face)
        scene = np.clip(scene, 0, 255).round().astype(np.uint8)
        scenes.append((scene, box, label, angle, occluded, path))
    return scenes


def evaluate(scenes, detector, predictor):
    """Recall, false positives and accuracy (aligned and not)."""
    from ferzoo.predict.pipeline import FaceCropper

    croppers = {
        align: FaceCropper(
            detector, align, 0.0, predictor.image_size, predictor.grayscale
        )
        for align in (True, False)
    }
    det = croppers[True].detector
    from ferzoo.predict.detect import SSDFaceDetector
    from ferzoo.predict.detect import frame_box

    framed = frame_box if isinstance(det, SSDFaceDetector) else None
    hits, false_pos, framed_hits, framed_false_pos = [], 0, [], 0
    sweep = {t: [0, 0] for t in THRESHOLDS}  # score > t: [hits, false pos]
    correct = {True: 0, False: 0}
    by_kind = {"occluded": [], "clear": [], "tilted>15": [], "small<80": []}
    start, detect_seconds = time.time(), 0.0
    for k in range(0, len(scenes), 8):
        chunk = scenes[k : k + 8]
        tick = time.time()
        found = det.detect_batch([s[0] for s in chunk])
        detect_seconds += time.time() - tick
        matched = []
        for (scene, box, label, angle, occluded, _), dets in zip(chunk, found):
            overlaps = [iou(d.box, box) for d in dets]
            for t, counts in sweep.items():
                kept = [o for d, o in zip(dets, overlaps) if (d.score or 1) > t]
                counts[0] += int(bool(kept) and max(kept) >= 0.5)
                counts[1] += sum(1 for o in kept if o < 0.5)
            best = int(np.argmax(overlaps)) if dets else -1
            hit = best >= 0 and overlaps[best] >= 0.5
            hits.append(hit)
            false_pos += sum(1 for o in overlaps if o < 0.5)
            squares = [
                iou(framed(d.box) if framed else d.box, box) for d in dets
            ]
            framed_hits.append(bool(squares) and max(squares) >= 0.5)
            framed_false_pos += sum(1 for o in squares if o < 0.5)
            by_kind["occluded" if occluded else "clear"].append(hit)
            if abs(angle) > 15:
                by_kind["tilted>15"].append(hit)
            if box[2] < 80:
                by_kind["small<80"].append(hit)
            matched.append([dets[best]] if hit else [])
        labels = np.array([s[2] for s in chunk])
        for align, cropper in croppers.items():
            images = [s[0] for s in chunk]
            crops = cropper.crops(images, matched)
            hit = [i for i, faces in enumerate(crops) if faces]
            if not hit:
                continue
            probs = predictor.predict(np.stack([crops[i][0][1] for i in hit]))
            correct[align] += int((probs.argmax(-1) == labels[hit]).sum())
    n = len(scenes)
    return {
        "detector": detector,
        "faces": n,
        "recall": float(np.mean(hits)),
        "false_positives_per_scene": false_pos / n,
        "recall_crop_square": float(np.mean(framed_hits)),
        "false_positives_per_scene_crop_square": framed_false_pos / n,
        "recall_by_kind": {
            k: [float(np.mean(v)) if v else None, len(v)]
            for k, v in by_kind.items()
        },
        "recall_and_false_positives_by_min_score": {
            str(t): [c[0] / n, c[1] / n]
            for t, c in sweep.items()
            if t >= getattr(det, "min_score", 1.0)
        },
        "accuracy_aligned": correct[True] / n,
        "accuracy_not_aligned": correct[False] / n,
        "seconds": round(time.time() - start, 1),
        "detector_seconds_per_scene": round(detect_seconds / n, 3),
    }


def calibrate_framing(data, count, seed):
    """Medians of FER2013 crop side / SSD box side and of the crop
    centre's offset from the box centre (box widths, heights), over the
    matched faces of near-upright (|angle| < 10) training-face scenes."""
    from ferzoo.predict import detect

    scenes = make_scenes(data, count, seed, split="train")
    detector = detect.load_detector("ssd")
    found = detector.detect_batch([s[0] for s in scenes])
    ratio, dx, dy = [], [], []
    for (_, gt, _, angle, occluded, _), dets in zip(scenes, found):
        if abs(angle) >= 10 or occluded or not dets:
            continue
        d = max(dets, key=lambda d: iou(d.box, gt))
        if iou(d.box, gt) < 0.3:
            continue
        x, y, w, h = d.box
        ratio.append(gt[2] / np.sqrt(w * h))
        dx.append((gt[0] + gt[2] / 2 - (x + w / 2)) / w)
        dy.append((gt[1] + gt[3] / 2 - (y + h / 2)) / h)
    click.echo(f"{len(ratio)} matched near-upright training faces")
    click.echo(f"SSD_FRAME_SCALE = {np.median(ratio):.3f}")
    click.echo(f"SSD_FRAME_SHIFT_X = {np.median(dx):.3f}")
    click.echo(f"SSD_FRAME_SHIFT_Y = {np.median(dy):.3f}")
    click.echo(
        f"quartiles: scale {np.percentile(ratio, [25, 75]).round(3)}, "
        f"shift_y {np.percentile(dy, [25, 75]).round(3)}"
    )


def speed(data, count, seed, detectors):
    """Seconds per scene of each detector, one scene at a time, the
    detectors taking turns on each scene (so that they share the load of
    a busy machine); each detector first warms up on one scene."""
    from ferzoo.predict import detect

    scenes = [s[0] for s in make_scenes(data, count, seed)]
    loaded = {name: detect.load_detector(name) for name in detectors}
    for det in loaded.values():
        det.detect(scenes[0])
    seconds = dict.fromkeys(detectors, 0.0)
    for scene in scenes:
        for name, det in loaded.items():
            tick = time.perf_counter()
            det.detect(scene)
            seconds[name] += time.perf_counter() - tick
    for name in detectors:
        click.echo(f"{name}: {seconds[name] / len(scenes):.3f} s per scene")


def calibrate_blazeface_boxes(data, count, seed):
    """Medians of the SSD's box against BlazeFace's (width and height
    ratios, centre offsets in BlazeFace box widths / heights) over the
    near-upright (|angle| < 10), unoccluded training-face scenes where
    both nets' upright passes (score > 0.3) box the face (IoU > 0.3)."""
    from ferzoo.predict import detect

    scenes = make_scenes(data, count, seed, split="train")
    images = [s[0] for s in scenes]
    found = {}
    for net in ("ssd", "blazeface"):
        det = detect.SSDFaceDetector(
            passes=(detect.Pass(net=net),), min_score=0.3
        )
        det.blazeface_mapping = (1.0, 1.0, 0.0, 0.0)  # boxes as found
        found[net] = det.detect_batch(images)
    rows = []
    for k, (_, gt, _, angle, occluded, _) in enumerate(scenes):
        pair = [
            [d.box for d in found[net][k] if iou(d.box, gt) > 0.3]
            for net in ("ssd", "blazeface")
        ]
        if abs(angle) >= 10 or occluded or not all(pair):
            continue
        (sx, sy, sw, sh), (bx, by, bw, bh) = pair[0][0], pair[1][0]
        rows.append((sw / bw, sh / bh, (sx + sw / 2 - bx - bw / 2) / bw,
                     (sy + sh / 2 - by - bh / 2) / bh))  # fmt: skip
    click.echo(f"{len(rows)} faces boxed by both nets")
    medians = tuple(round(float(v), 3) for v in np.median(rows, axis=0))
    click.echo(f"BLAZEFACE_TO_SSD = {medians}")


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True))
@click.option("--scenes", "count", default=300, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--model", default="ferzoo_fer2013", show_default=True)
@click.option(
    "--detector",
    "detectors",
    multiple=True,
    default=("haar", "ssd-blazeface"),
    show_default=True,
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False))
@click.option("--save-scenes", type=click.Path(file_okay=False))
@click.option(
    "--calibrate",
    is_flag=True,
    help="Instead: on scenes of FER2013 *training* faces, print the SSD "
    "framing constants (ferzoo.predict.detect.SSD_FRAME_*).",
)
@click.option(
    "--speed",
    "timed",
    is_flag=True,
    help="Instead: time each --detector on --scenes scenes, one at a "
    "time, the detectors taking turns.",
)
@click.option(
    "--calibrate-blazeface",
    is_flag=True,
    help="Instead: on scenes of FER2013 *training* faces, print "
    "BlazeFace's box mapping (ferzoo.predict.detect.BLAZEFACE_TO_SSD).",
)
def main(data, count, seed, model, detectors, json_path, save_scenes,
         calibrate, timed, calibrate_blazeface):  # fmt: skip
    """Detection recall and end-to-end accuracy on pasted FER2013 faces."""
    from ferzoo.predict import load_predictor

    if calibrate:
        return calibrate_framing(data, count, seed)
    if calibrate_blazeface:
        return calibrate_blazeface_boxes(data, count, seed)
    if timed:
        return speed(data, count, seed, detectors)
    scenes = make_scenes(data, count, seed)
    if save_scenes:
        from PIL import Image

        out = pathlib.Path(save_scenes)
        out.mkdir(parents=True, exist_ok=True)
        for i, (scene, *_) in enumerate(scenes):
            Image.fromarray(scene).save(out / f"scene_{i:04d}.png")
    predictor = load_predictor(model)
    rows = []
    for name in detectors:
        row = evaluate(scenes, name, predictor)
        rows.append(row)
        click.echo(json.dumps(row))
    click.echo(
        "\n| detector | recall @ IoU 0.5 | occluded | tilted > 15 deg | "
        "side < 80 px | false positives / scene | recall, crop square | "
        "false positives, crop square | accuracy (aligned) | "
        "accuracy (not aligned) | detector s / scene |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for r in rows:
        kinds = r["recall_by_kind"]
        click.echo(
            f"| {r['detector']} | {r['recall']:.3f} | "
            f"{kinds['occluded'][0]:.3f} | {kinds['tilted>15'][0]:.3f} | "
            f"{kinds['small<80'][0]:.3f} | "
            f"{r['false_positives_per_scene']:.2f} | "
            f"{r['recall_crop_square']:.3f} | "
            f"{r['false_positives_per_scene_crop_square']:.2f} | "
            f"{r['accuracy_aligned']:.3f} | {r['accuracy_not_aligned']:.3f} | "
            f"{r['detector_seconds_per_scene']} |"
        )
    if json_path:
        report = {"scenes": count, "seed": seed, "model": model, "rows": rows}
        pathlib.Path(json_path).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
