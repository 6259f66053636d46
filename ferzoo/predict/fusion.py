"""Box fusion of the face detectors' passes (`ferzoo.predict.detect`).

`Detection` is one face found. `fuse_boxes` merges the boxes of several
passes (views of one image, by one or two nets) into one box per face,
scored by the mean over the passes; `Vote` keeps the faces of a
detector with SSD and BlazeFace passes by each net's score.
"""

import dataclasses

import numpy as np

from ferzoo.predict.boxes import xywh_iou

SSD_MERGE_IOU = 0.3


@dataclasses.dataclass
class Detection:
    """One face found: `box` `(x, y, w, h)` pixels, `score` or None."""

    box: tuple
    score: float = None


def fuse_boxes(passes, merge_iou=SSD_MERGE_IOU):
    """Weighted box fusion of the `Detection`s of several passes.

    `passes` holds one list of `Detection`s per pass. Best score first,
    each detection joins the first group whose leading (best) box it
    overlaps at IoU > `merge_iou`, else leads a new group
    (`group_boxes`). A group becomes one `Detection`: the score-weighted
    mean of its boxes, scored by the sum of each pass's best score in
    the group divided by the number of passes. Faces come best score
    first.
    """
    fused = [
        Detection(_mean_box(group), sum(best.values()) / len(passes))
        for group, best in group_boxes(passes, merge_iou)
    ]
    return sorted(fused, key=lambda d: -d.score)


def group_boxes(passes, merge_iou=SSD_MERGE_IOU):
    """`fuse_boxes`' groups: `[(group, best)]`, `group` a list of
    `(Detection, pass index)` (its leader first), `best` each pass's best
    score in it (`{pass index: score}`)."""
    found = [(d, k) for k, faces in enumerate(passes) for d in faces]
    groups = []
    for d, k in sorted(found, key=lambda item: -item[0].score):
        for group in groups:
            if xywh_iou(d.box, group[0][0].box) > merge_iou:
                group.append((d, k))
                break
        else:
            groups.append([(d, k)])
    out = []
    for group in groups:
        best = {}
        for d, k in group:
            best[k] = max(best.get(k, 0.0), d.score)
        out.append((group, best))
    return out


def _mean_box(group):
    """The score-weighted mean box of `[(Detection, pass index)]`."""
    weights = np.array([d.score for d, _ in group], np.float64)
    boxes = np.array([d.box for d, _ in group], np.float64)
    return tuple(float(v) for v in weights @ boxes / weights.sum())


@dataclasses.dataclass(frozen=True)
class Vote:
    """Which fused faces a detector with SSD and BlazeFace passes keeps.

    For each group of boxes (`group_boxes`), each net's score is the mean
    over its passes of each pass's best score in the group (0 for a pass
    that missed it): `ssd` over all SSD passes, `colour` over the SSD's
    colour (not gray) passes, `blazeface` over BlazeFace's. A face is
    kept if `ssd > min_score` and either `colour > colour_min_score` or
    `blazeface > blazeface_min_score`: a box that only the SSD's gray
    passes score is kept only if BlazeFace agrees (the gray passes
    find more of FER2013's gray faces, and also score things such as a
    cap badge), and BlazeFace rescues faces the SSD scores low. The box
    is the score-weighted mean of the group's SSD boxes (of its
    BlazeFace boxes if it has none); its score is `ssd`.
    """

    min_score: float = 0.05
    colour_min_score: float = 0.1
    blazeface_min_score: float = 0.3

    def select(self, found, passes, merge_iou=SSD_MERGE_IOU):
        """The kept `Detection`s of `found` (one list per `Pass` of
        `passes`), best score first."""

        def mean(best, which):
            ks = [k for k, p in enumerate(passes) if which(p)]
            return sum(best.get(k, 0.0) for k in ks) / max(len(ks), 1)

        kept = []
        for group, best in group_boxes(found, merge_iou):
            ssd = mean(best, lambda p: p.net == "ssd")
            colour = mean(best, lambda p: p.net == "ssd" and not p.gray)
            blazeface = mean(best, lambda p: p.net == "blazeface")
            if ssd > self.min_score and (
                colour > self.colour_min_score
                or blazeface > self.blazeface_min_score
            ):
                boxes = [(d, k) for d, k in group if passes[k].net == "ssd"]
                kept.append(Detection(_mean_box(boxes or group), ssd))
        return sorted(kept, key=lambda d: -d.score)
