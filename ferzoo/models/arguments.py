"""Argument checks of `NoisyLabelClassifier` and its sample count."""

from keras import ops

from ferzoo.backbones.backbone import Backbone


def infer_num_samples(x):
    """Number of training samples: max `sample_id` + 1 in the data."""
    import numpy as np

    info = getattr(x, "ferzoo_info", None)
    if info is not None:
        return int(info.num_samples)
    if isinstance(x, dict) and "sample_ids" in x:
        return int(np.max(ops.convert_to_numpy(x["sample_ids"]))) + 1
    if hasattr(x, "map") and hasattr(x, "as_numpy_iterator"):
        ids = x.map(lambda inputs, *rest: inputs["sample_ids"])
        return int(max(int(np.max(b)) for b in ids.as_numpy_iterator())) + 1
    raise ValueError(
        "Cannot infer `num_samples` from this data: pass `num_samples=` to "
        "the model (the number of training samples), or train on "
        '`({"images": ..., "sample_ids": ...}, labels)` batches.'
    )


def check_args(backbone, num_classes, num_samples, warmup_epochs, dropout):
    if not isinstance(backbone, Backbone):
        raise ValueError(
            "`backbone` must be a `ferzoo.backbones.Backbone`. "
            f"Received: backbone={backbone!r}"
        )
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"`num_classes` must be an int >= 2. Received: "
            f"num_classes={num_classes}"
        )
    if num_samples is not None and (
        not isinstance(num_samples, int) or num_samples < 1
    ):
        raise ValueError(
            "`num_samples` must be a positive int or None. Received: "
            f"num_samples={num_samples}"
        )
    if warmup_epochs < 0:
        raise ValueError(
            "`warmup_epochs` must be >= 0. Received: "
            f"warmup_epochs={warmup_epochs}"
        )
    if not 0 <= dropout < 1:
        raise ValueError(
            f"`dropout` must be in [0, 1). Received: dropout={dropout}"
        )
