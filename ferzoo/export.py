"""Export a ferzoo model as a TensorFlow SavedModel.

The SavedModel's `serve` signature takes a batch of RGB images (float32
pixels in [0, 255], `(batch, H, W, 3)`) and returns class probabilities
`(batch, num_classes)`. Normalisation is inside the model, so serving
needs no outside preprocessing; cast uint8 images to float32. Training-
only branches (flips, second streams' losses) are not exported.
"""

import os
import pathlib
import shutil
import tempfile

import keras


def export_saved_model(model, path, image_shape=None, verbose=False):
    """Write `model` as a SavedModel at `path` (written atomically).

    Args:
        model: a `ferzoo.models.NoisyLabelClassifier`.
        path: str or path. The SavedModel folder to create or replace.
        image_shape: tuple `(H, W, 3)` or None. Input shape of the serving
            signature. Defaults to the backbone's `image_shape`; required
            if that has `None` height or width.
        verbose: bool. Print Keras' export summary. Defaults to `False`.

    Returns:
        The path written, as a `pathlib.Path`.

    Example:
    >>> import tempfile
    >>> backbone = ferzoo.backbones.SmallCNNBackbone(
    ...     image_shape=(32, 32, 3), stackwise_num_filters=[8])
    >>> model = ferzoo.models.Baseline(backbone=backbone)
    >>> out = ferzoo.export.export_saved_model(
    ...     model, tempfile.mkdtemp() + "/saved")
    >>> (out / "saved_model.pb").exists()
    True
    """
    image_shape = tuple(image_shape or model.image_shape)
    if len(image_shape) != 3 or None in image_shape:
        raise ValueError(
            "`image_shape` must be a full (height, width, 3) for export. "
            f"Received: image_shape={image_shape}"
        )
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(dir=path.parent, prefix=".export-"))
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)

        def serve(images):
            return model.probabilities(images)

        archive.add_endpoint(
            name="serve",
            fn=serve,
            input_signature=[
                keras.InputSpec(
                    shape=(None,) + image_shape, dtype="float32", name="images"
                )
            ],
        )
        archive.write_out(str(tmp / "saved"), verbose=verbose)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp / "saved", path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
