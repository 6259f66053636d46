"""Reports of `ferzoo.predict` results: table, JSON, CSV and pictures."""

import csv
import json
import os
import pathlib

from ferzoo.predict.images import cam_overlay
from ferzoo.predict.images import draw_faces
from ferzoo.predict.images import read_image


def summary(results):
    """Counts of images, faces, images without a face and unreadable ones."""
    return {
        "images": len(results),
        "faces": sum(len(r.faces) for r in results),
        "no_face": [r.source for r in results if r.status == "no_face"],
        "errors": [r.source for r in results if r.status == "error"],
    }


def to_json(results, predictor, **settings):
    """The whole run as a JSON-able dict (model, settings, images)."""
    return {
        "model": predictor.describe(),
        **settings,
        "images": [r.to_json() for r in results],
        "summary": summary(results),
    }


def format_table(results, class_names):
    """One row per face: file, face number, box, top class, distribution.

    An image without a face or that could not be read gets one row that
    says so.
    """
    header = ["file", "face", "box x,y,w,h", "emotion", *class_names]
    rows, notes = [], {}
    for r in results:
        if r.status != "ok":
            text = "no face found" if r.status == "no_face" else r.error
            notes[len(rows)] = f"error: {text}" if r.error else text
            rows.append([r.source])
            continue
        for i, face in enumerate(r.faces, 1):
            rows.append(
                [
                    r.source,
                    str(i),
                    ",".join(str(int(v)) for v in face.box),
                    f"{face.top_class} {face.top_probability:.2f}",
                    *(f"{p:.2f}" for p in face.probabilities),
                ]
            )
    widths = [len(h) for h in header]
    for row in rows:
        for j, cell in enumerate(row):
            widths[j] = max(widths[j], len(cell))
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    for k, row in enumerate(rows):
        if k in notes:
            lines.append(f"{row[0].ljust(widths[0])}  -  {notes[k]}")
        else:
            cells = [c.ljust(w) for c, w in zip(row, widths)]
            lines.append("  ".join(cells).rstrip())
    s = summary(results)
    lines.append(
        f"{s['faces']} face(s) in {s['images']} image(s); "
        f"{len(s['no_face'])} without a face; {len(s['errors'])} unreadable."
    )
    return "\n".join(lines)


def write_outputs(results, report, output_dir, cam=False):
    """Write `predictions.json`, `predictions.csv`, annotated copies and,
    with `cam`, one CAM overlay PNG per face into `output_dir`.

    Adds the written picture paths to `report["images"]` (`annotated`,
    and `cam` per face). Returns `report`.
    """
    out = pathlib.Path(output_dir)
    (out / "annotated").mkdir(parents=True, exist_ok=True)
    if cam:
        (out / "cam").mkdir(exist_ok=True)
    used = set()
    for result, entry in zip(results, report["images"]):
        entry["annotated"] = None
        if result.status == "error" or result.source.startswith("<"):
            continue
        rgb = read_image(result.source)
        source = pathlib.Path(result.source)
        stem = _unique(source.stem, used)
        suffix = source.suffix.lower()
        if suffix not in (".jpg", ".jpeg", ".png", ".bmp", ".webp"):
            suffix = ".png"
        path = out / "annotated" / f"{stem}{suffix}"
        draw_faces(rgb, result.faces).save(path)
        entry["annotated"] = str(path)
        for i, (face, face_entry) in enumerate(
            zip(result.faces, entry["faces"]), 1
        ):
            if cam and face.cam is not None:
                cam_path = out / "cam" / f"{stem}_face{i}.png"
                cam_overlay(rgb, face).save(cam_path)
                face_entry["cam"] = str(cam_path)
    _atomic_text(out / "predictions.json", json.dumps(report, indent=2))
    _write_csv(out / "predictions.csv", report)
    return report


def _unique(stem, used):
    name, k = stem, 1
    while name in used:
        k += 1
        name = f"{stem}_{k}"
    used.add(name)
    return name


def _write_csv(path, report):
    names = report["model"]["class_names"]
    box = ["x", "y", "width", "height"]
    fields = ["file", "status", "face", *box, "detection_score", "angle"]
    fields += ["top_class", "top_probability"]
    fields += [*names, "cam", "error"]
    tmp = pathlib.Path(str(path) + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        for image in report["images"]:
            base = {"file": image["file"], "status": image["status"]}
            if not image["faces"]:
                writer.writerow({**base, "error": image["error"]})
            for i, face in enumerate(image["faces"], 1):
                writer.writerow(
                    {
                        **base,
                        "face": i,
                        **face["box"],
                        "detection_score": face.get("detection_score"),
                        "angle": face.get("angle"),
                        "top_class": face["top_class"],
                        "top_probability": face["top_probability"],
                        **face["probabilities"],
                        "cam": face.get("cam"),
                    }
                )
    os.replace(tmp, path)


def _atomic_text(path, text):
    tmp = pathlib.Path(str(path) + ".tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)
