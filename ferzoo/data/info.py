"""`DatasetInfo`: what a loaded split holds (labels, noise, sources)."""

import dataclasses
import json

import numpy as np


@dataclasses.dataclass
class DatasetInfo:
    """What a loaded split holds: labels, clean labels, sources, issues.

    Args:
        class_names: list of str. The class order.
        labels: int32 array. The labels batches carry (noisy if noise
            was applied).
        clean_labels: int32 array or None. Labels before noise (train
            split only).
        noise_mask: bool array or None. `True` where a label was changed.
        sources: list of str. File or `file:line` of each sample.
        skipped: list of `(source, reason)`. Samples skipped on error.
        names: list of str. Image names (to match noise files).
        dropped: dict. Samples a protocol dropped on purpose, by reason.
        data: str. The data spec. split: str. The split.
        noise: dict. The noise protocol applied (empty if none).
    """

    class_names: list
    labels: np.ndarray
    clean_labels: object = None
    noise_mask: object = None
    sources: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    names: list = dataclasses.field(default_factory=list)
    dropped: dict = dataclasses.field(default_factory=dict)
    data: str = ""
    split: str = ""
    noise: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_records(
        cls, records, data, split, labels=None, clean=None, noise=None
    ):
        """The info of `records`, one split of the data spec `data`.

        `labels` (default: the records' own) are the labels batches
        carry; with `clean` (the labels before noise) the noise mask is
        where they differ, and `noise` records the protocol.
        """
        labels = records.labels if labels is None else labels
        return cls(
            class_names=list(records.class_names),
            labels=labels,
            clean_labels=clean,
            noise_mask=None if clean is None else labels != clean,
            sources=records.sources,
            skipped=records.skipped,
            names=records.names,
            dropped=records.dropped,
            data=data,
            split=split,
            noise=dict(noise or {}),
        )

    @property
    def num_samples(self):
        return int(len(self.labels))

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def counts(self):
        """Samples per class (of `labels`), as a list."""
        return np.bincount(self.labels, minlength=self.num_classes).tolist()

    @property
    def noise_rate(self):
        """Fraction of labels that differ from the clean ones."""
        if self.noise_mask is None or not len(self.noise_mask):
            return 0.0
        return float(np.mean(self.noise_mask))

    def summary(self):
        """A human-readable description of the split."""
        lines = [
            f"{self.data} [{self.split}]: {self.num_samples} samples, "
            f"{self.num_classes} classes"
        ]
        clean = None
        if self.clean_labels is not None and self.noise:
            clean = np.bincount(self.clean_labels, minlength=self.num_classes)
        for i, (name, count) in enumerate(zip(self.class_names, self.counts)):
            extra = "" if clean is None else f" (clean: {clean[i]})"
            lines.append(f"  {name:>10}: {count}{extra}")
        if self.noise:
            flipped = int(np.sum(self.noise_mask))
            lines.append(
                f"  noise: {self.noise} -> {flipped} labels changed "
                f"({self.noise_rate:.1%})"
            )
        if self.skipped:
            lines.append(f"  skipped: {len(self.skipped)} (first: ")
            lines[-1] += f"{self.skipped[0][0]}: {self.skipped[0][1]})"
        if self.dropped:
            lines.append(f"  dropped by protocol: {self.dropped}")
        return "\n".join(lines)

    def subset(self, indices, split=None):
        """The info of the samples at `indices`, in that order.

        Samples skipped or dropped while reading stay with the original
        split's info unless `split` (the new split's name) is given.
        """
        indices = np.asarray(indices, "int64")

        def take(values):
            return None if values is None else np.asarray(values)[indices]

        return dataclasses.replace(
            self,
            labels=take(self.labels),
            clean_labels=take(self.clean_labels),
            noise_mask=take(self.noise_mask),
            sources=[self.sources[i] for i in indices],
            names=[self.names[i] for i in indices],
            skipped=list(self.skipped) if split is None else [],
            dropped=dict(self.dropped) if split is None else {},
            split=self.split if split is None else split,
        )

    def to_json(self):
        """A JSON string of the counts and protocol (no per-sample data)."""
        return json.dumps(
            {
                "data": self.data,
                "split": self.split,
                "num_samples": self.num_samples,
                "class_names": list(self.class_names),
                "counts": self.counts,
                "noise": self.noise,
                "actual_noise_rate": self.noise_rate,
                "num_skipped": len(self.skipped),
                "dropped": dict(self.dropped),
            }
        )
