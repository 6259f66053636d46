"""Emotions of the faces in a video file or a camera, frame by frame.

`predict_video()` reads frames with OpenCV, keeps every `every`-th one,
finds, aligns and classifies its faces as `ferzoo.predict.predict` does
(`FaceCropper`), gives each face an id that it keeps while its box
overlaps (IoU >= `track_iou`) a box of the previous sampled frame, and
yields one `VideoFace` row per face per sampled frame (time, frame,
id, box, probabilities). Nothing accumulates: a frame is dropped once its
faces are classified, rows are written as they come (`VideoWriter`:
`predictions.csv`, `predictions.jsonl` and an annotated `.mp4` of the
sampled frames), so memory stays flat however long the video is.
"""

import csv
import dataclasses
import json
import pathlib
import time

import numpy as np

from ferzoo.errors import DataError
from ferzoo.predict.detect import DEFAULT_DETECTOR
from ferzoo.predict.detect import xywh_iou

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg",
                    ".mpeg", ".wmv")  # fmt: skip
DEFAULT_TRACK_IOU = 0.3


def is_video(path):
    return pathlib.Path(str(path)).suffix.lower() in VIDEO_EXTENSIONS


@dataclasses.dataclass
class VideoFace:
    """One face in one sampled frame."""

    source: str
    frame: int
    time: float  # seconds from the start (camera: wall clock)
    face_id: int
    box: tuple
    probabilities: np.ndarray
    class_names: list
    score: float = None
    angle: float = None

    @property
    def top_class(self):
        return self.class_names[int(np.argmax(self.probabilities))]

    @property
    def top_probability(self):
        return float(np.max(self.probabilities))

    def to_json(self):
        keys = ("x", "y", "width", "height")
        return {
            "source": self.source,
            "frame": self.frame,
            "time": round(self.time, 3),
            "face_id": self.face_id,
            "box": dict(zip(keys, map(int, self.box))),
            "detection_score": None
            if self.score is None
            else round(float(self.score), 4),
            "angle": None if self.angle is None else round(self.angle, 2),
            "top_class": self.top_class,
            "top_probability": self.top_probability,
            "probabilities": {
                n: float(p)
                for n, p in zip(self.class_names, self.probabilities)
            },
        }


class Tracker:
    """Face ids kept by box overlap between consecutive sampled frames.

    Each new box takes the id of the previous frame's box it overlaps
    most (IoU >= `min_iou`), pairs taken greedily from the largest IoU;
    a box left over gets a new id. Only the last frame's boxes are kept.
    """

    def __init__(self, min_iou=DEFAULT_TRACK_IOU):
        self.min_iou = float(min_iou)
        self.previous = []  # [(id, box)]
        self.next_id = 1

    def update(self, boxes):
        pairs = sorted(
            (
                (xywh_iou(box, old), i, j)
                for i, box in enumerate(boxes)
                for j, (_, old) in enumerate(self.previous)
            ),
            reverse=True,
        )
        ids = [None] * len(boxes)
        used = set()
        for overlap, i, j in pairs:
            if overlap < self.min_iou:
                break
            if ids[i] is None and j not in used:
                ids[i] = self.previous[j][0]
                used.add(j)
        for i in range(len(boxes)):
            if ids[i] is None:
                ids[i] = self.next_id
                self.next_id += 1
        self.previous = list(zip(ids, boxes))
        return ids


def open_capture(source):
    """An opened `cv2.VideoCapture` of a file path or a camera index."""
    import cv2

    if isinstance(source, int):
        capture = cv2.VideoCapture(source)
        if not capture.isOpened():
            raise DataError(f"camera {source} could not be opened")
        return capture
    path = pathlib.Path(source)
    if not path.is_file():
        raise DataError("no such file", path=path)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError("not a video OpenCV can read", path=path)
    return capture


def frames(source, every=1, max_frames=None):
    """`(frame index, seconds, RGB frame)` of every `every`-th frame."""
    import cv2

    capture = open_capture(source)
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    camera = isinstance(source, int)
    start = time.monotonic()
    index = 0
    try:
        while max_frames is None or index < max_frames:
            if index % every:
                ok = capture.grab()  # skip without decoding
                frame = None
            else:
                ok, frame = capture.read()
            if not ok:
                break
            if frame is not None:
                if camera or fps <= 0:
                    seconds = time.monotonic() - start
                else:
                    seconds = index / fps
                yield index, seconds, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()


def frame_rate(source):
    import cv2

    capture = open_capture(source)
    try:
        return capture.get(cv2.CAP_PROP_FPS) or 0.0
    finally:
        capture.release()


def predict_video(
    source,
    predictor,
    detector=DEFAULT_DETECTOR,
    align=True,
    margin=0.0,
    every=1,
    max_frames=None,
    track_iou=DEFAULT_TRACK_IOU,
    batch_size=32,
    on_frame=None,
):
    """Yield a `VideoFace` per face per sampled frame of `source`.

    Args:
        source: a video file path or a camera index (int).
        predictor: a `ferzoo.predict.Predictor` (`load_predictor`).
        detector, align, margin: as `ferzoo.predict.predict`.
        every: int. Keep frames 0, every, 2 * every, ...
        max_frames: int or None. Stop after this many frames read.
        track_iou: float. The overlap that keeps a face's id.
        batch_size: int. Faces per classifier pass.
        on_frame: callable or None. Called with `(rgb, faces)` for each
            sampled frame (the annotated video's writer).
    """
    from ferzoo.predict.pipeline import FaceCropper

    if every < 1:
        raise ValueError(f"`every` must be >= 1. Received: every={every}")
    name = f"camera:{source}" if isinstance(source, int) else str(source)
    cropper = FaceCropper.for_predictor(predictor, detector, align, margin)
    tracker = Tracker(track_iou)
    for index, seconds, rgb in frames(source, every, max_frames):
        found = cropper.faces([rgb])[0]
        crops = np.stack([c for _, c in found]) if found else None
        probs = predictor.predict(crops, batch_size) if found else []
        ids = tracker.update([f.box for f, _ in found])
        faces = [
            VideoFace(
                name,
                index,
                seconds,
                face_id,
                f.box,
                p,
                predictor.class_names,
                f.score,
                f.angle,
            )  # fmt: skip
            for (f, _), face_id, p in zip(found, ids, probs)
        ]
        if on_frame is not None:
            on_frame(rgb, faces)
        yield from faces


class VideoWriter:
    """Streams rows to `predictions.csv` / `predictions.jsonl` and each
    video's sampled frames, annotated, to `annotated/<stem>.mp4` in
    `output_dir` (`start` names the video; `close` ends the run)."""

    def __init__(self, output_dir, class_names):
        self.out = pathlib.Path(output_dir)
        (self.out / "annotated").mkdir(parents=True, exist_ok=True)
        self.csv_path = self.out / "predictions.csv"
        self.jsonl_path = self.out / "predictions.jsonl"
        self.class_names = list(class_names)
        fields = ["source", "frame", "time", "face_id", "x", "y", "width",
                  "height", "detection_score", "angle", "top_class",
                  "top_probability", *self.class_names]  # fmt: skip
        self._csv_file = open(self.csv_path, "w", newline="", encoding="utf-8")
        self._csv = csv.DictWriter(self._csv_file, fields)
        self._csv.writeheader()
        self._jsonl = open(self.jsonl_path, "w", encoding="utf-8")
        self._video = None
        self._used = set()
        self.videos = []
        self.rows = 0
        self.frames = 0

    def start(self, stem, fps):
        """Annotated frames now go to `annotated/<stem>.mp4` at `fps`."""
        self._end_video()
        name, k = stem, 1
        while name in self._used:
            k += 1
            name = f"{stem}_{k}"
        self._used.add(name)
        self.video_path = self.out / "annotated" / f"{name}.mp4"
        self.fps = float(fps) if fps and fps > 0 else 10.0
        self.videos.append(str(self.video_path))

    def row(self, face):
        entry = face.to_json()
        self._jsonl.write(json.dumps(entry) + "\n")
        keys = ("source", "frame", "time", "face_id", "detection_score",
                "angle", "top_class", "top_probability")  # fmt: skip
        flat = {k: entry[k] for k in keys}
        self._csv.writerow({**flat, **entry["box"], **entry["probabilities"]})
        self.rows += 1

    def frame(self, rgb, faces):
        import cv2

        if self._video is None:
            height, width = rgb.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._video = cv2.VideoWriter(
                str(self.video_path), fourcc, self.fps, (width, height)
            )
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        line = max(1, round(min(rgb.shape[:2]) / 250))
        for face in faces:
            x, y, w, h = (int(v) for v in face.box)
            color = _color(face.face_id)
            cv2.rectangle(bgr, (x, y), (x + w - 1, y + h - 1), color, line)
            label = f"#{face.face_id} {face.top_class} "
            label += f"{face.top_probability:.2f}"
            scale = max(0.35, min(1.2, h / 160))
            (tw, th), base = cv2.getTextSize(
                label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1
            )
            ty = y - 4 if y - th - base - 4 >= 0 else y + h + th + 4
            cv2.rectangle(
                bgr, (x, ty - th - base), (x + tw, ty + base), color, -1
            )
            cv2.putText(bgr, label, (x, ty), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
        self._video.write(bgr)
        self.frames += 1

    def _end_video(self):
        if self._video is not None:
            self._video.release()
            self._video = None

    def close(self):
        self._end_video()
        self._csv_file.close()
        self._jsonl.close()


def _color(face_id):
    palette = ((40, 40, 230), (60, 180, 75), (230, 120, 0), (200, 50, 200),
               (0, 200, 200), (128, 128, 0))  # fmt: skip
    return palette[(face_id - 1) % len(palette)]


def run_videos(
    sources,
    predictor,
    detector=DEFAULT_DETECTOR,
    align=None,
    margin=0.0,
    every=1,
    max_frames=None,
    output_dir=None,
    batch_size=32,
    on_row=None,
):
    """Run `predict_video` over `sources` (paths or camera indices),
    streaming rows to `on_row(face)` and, with `output_dir`, to a
    `VideoWriter`. Returns a summary: per source its sampled frames,
    rows, face ids and error; a Ctrl-C ends the current source cleanly.
    """
    writer = None
    if output_dir is not None:
        writer = VideoWriter(output_dir, predictor.class_names)
    summary = {"sources": [], "rows": 0}
    try:
        for source in sources:
            entry = {"source": str(source), "frames": 0, "rows": 0,
                     "faces": 0, "error": None}  # fmt: skip
            summary["sources"].append(entry)
            sampled = set()
            ids = set()

            def on_frame(rgb, faces, entry=entry):
                entry["frames"] += 1
                if writer is not None:
                    writer.frame(rgb, faces)

            try:
                if writer is not None:
                    fps = 0.0 if isinstance(source, int) else frame_rate(
                        source)  # fmt: skip
                    stem = (
                        f"camera{source}"
                        if isinstance(source, int)
                        else pathlib.Path(source).stem
                    )
                    writer.start(stem, fps / every if fps else 0.0)
                rows = predict_video(source, predictor, detector, align,
                                     margin, every, max_frames,
                                     batch_size=batch_size,
                                     on_frame=on_frame)  # fmt: skip
                for face in rows:
                    entry["rows"] += 1
                    sampled.add(face.frame)
                    ids.add(face.face_id)
                    if writer is not None:
                        writer.row(face)
                    if on_row is not None:
                        on_row(face)
            except DataError as e:
                prefix = f"{e.path}: " if e.path else ""
                entry["error"] = str(e).removeprefix(prefix)
            except KeyboardInterrupt:
                entry["interrupted"] = True
                break
            entry["faces"] = len(ids)
            entry["frames_with_faces"] = len(sampled)
            summary["rows"] += entry["rows"]
    finally:
        if writer is not None:
            writer.close()
            summary["csv"] = str(writer.csv_path)
            summary["jsonl"] = str(writer.jsonl_path)
            summary["annotated"] = writer.videos
    return summary
