"""Export a ferzoo model: SavedModel, ONNX, LiteRT or TF.js.

`export(model, path, format=...)` writes any of the four formats;
`"onnx"`, `"litert"` and `"tfjs"` are written by `ferzoo.deploy` (the
same function from uint8 pixels of any size to probabilities, with the
class names in each format's metadata; docs/export.md).

The SavedModel serves what users send, with no outside preprocessing:

- `serve(images)`: a batch of RGB images, uint8 or float32 pixels in
  [0, 255], `(batch, H, W, 3)` of any H and W (resized inside, bilinear
  with antialiasing, to the model's input size) -> class probabilities
  `(batch, num_classes)`. Its signature (`serve`, `serving_default`)
  takes float32.
  An empty batch gives `(0, num_classes)`; an image with a NaN or
  infinite pixel gets a row of NaN (the other images are unaffected).
- `class_names()`: the class names in output order, a string tensor.
- `probabilities(images)`: float32 images already at the model's input
  size -> probabilities (what `serve` calls after resizing).
- `metadata()`: a JSON string: `format`, `class_names`, `image_size`,
  `test_time_flip` and the `ferzoo_version` that wrote it.

With `test_time_flip` (the model's setting, or `test_time_flip=True`
here, `ferzoo-export --tta`), every format returns the mean of the
probabilities of each image and of its left-right mirror, computed in
the graph (two forward passes); its metadata says so.

Normalisation is inside the model. Training-only branches (flips, second
streams' losses) are not exported. It works the same on the TensorFlow
and JAX backends (`keras.Model.export` of a ferzoo model comes here too).
"""

import pathlib
import shutil
import tempfile
import warnings

import keras

FORMATS = ("savedmodel", "onnx", "litert", "tfjs")


def export(
    model,
    path,
    format="savedmodel",
    image_shape=None,
    class_names=None,
    grayscale=None,
    verbose=False,
    overwrite=False,
    face_nets=True,
    test_time_flip=None,
):
    """Write `model` at `path` in `format`.

    Args:
        model: a `ferzoo.models.NoisyLabelClassifier`.
        path: str or path. The folder to write: the SavedModel itself, or
            the folder that receives `model.onnx`, `model.tflite` (and
            `labels.txt`) or `model.json` (and its weight shards).
        format: str. `"savedmodel"` (default), `"onnx"`, `"litert"` or
            `"tfjs"`.
        image_shape: tuple `(H, W, 3)` or None. The model's input size
            (images of any size are resized to it inside).
        class_names: list of str or None. Defaults to the model's.
        grayscale: bool or None. Recorded in the ONNX / LiteRT / TF.js
            metadata: the crops should be gray, as the training images
            were (`ferzoo-predict --runtime` reads it).
        verbose: bool. Print the converter's output.
        overwrite: bool. Write over an earlier ferzoo export at `path`
            (recognised by its marker file); a non-empty folder ferzoo did
            not write is always refused (`OutputFolderError`).
        face_nets: bool. ONNX and LiteRT: also write predict's face
            detector and landmark nets beside the model
            (`detector.onnx`, `landmarks.onnx` / `.tflite`), so that
            `ferzoo-predict --runtime onnx|litert` needs no TensorFlow.
            Defaults to True.
        test_time_flip: bool or None. Bake the test-time flip (mean of
            the probabilities of each image and of its mirror) into the
            export, or not; recorded in its metadata. Defaults to `None`:
            the model's own `test_time_flip`.

    Returns:
        The path written (the SavedModel folder, or the model file).

    Example:
    >>> import tempfile
    >>> backbone = ferzoo.backbones.SmallCNNBackbone(
    ...     image_shape=(32, 32, 3), stackwise_num_filters=[8])
    >>> model = ferzoo.models.Baseline(backbone=backbone, num_classes=2)
    >>> out = ferzoo.export.export(model, tempfile.mkdtemp() + "/saved",
    ...     format="savedmodel", class_names=["a", "b"])
    >>> (out / "saved_model.pb").exists()
    True
    """
    if format not in FORMATS:
        raise ValueError(
            f"`format` must be one of {FORMATS}. Received: format={format!r}"
        )
    if format == "savedmodel":
        return export_saved_model(
            model,
            path,
            image_shape,
            class_names,
            verbose=verbose,
            overwrite=overwrite,
            test_time_flip=test_time_flip,
        )
    from ferzoo import deploy
    from ferzoo import outputs

    # The other formats write files into `path`: the same folder policy.
    outputs.check(path, "export", overwrite=overwrite, replace=True)
    outputs.prepare(path, "export")
    size = _input_size(model, image_shape)
    names = _class_names(model, class_names)
    return deploy.export_format(
        model,
        path,
        format,
        size,
        names,
        grayscale,
        verbose=verbose,
        face_nets=face_nets,
        test_time_flip=test_time_flip,
    )


def export_saved_model(
    model,
    path,
    image_shape=None,
    class_names=None,
    verbose=False,
    overwrite=False,
    test_time_flip=None,
):
    """Write `model` as a SavedModel at `path` (written atomically).

    `path` must be new, empty, or (with `overwrite=True`) an earlier
    ferzoo export: a folder ferzoo did not write is never replaced
    (`ferzoo.outputs`; an `OutputFolderError`).

    Args:
        model: a `ferzoo.models.NoisyLabelClassifier`.
        path: str or path. The SavedModel folder to create or replace.
        image_shape: tuple `(H, W, 3)` or None. The size images are
            resized to. Defaults to the backbone's `image_shape`, else the
            recipe's `image_size`.
        class_names: list of str or None. Defaults to the names the model
            was trained with (`model.recipe["class_names"]`, which
            `ferzoo.training.train` records); without them, `"0"`, `"1"`,
            ... with a warning.
        verbose: bool. Print Keras' export summary. Defaults to `False`.
        overwrite: bool. Replace an earlier ferzoo export at `path`.
            Defaults to `False`.
        test_time_flip: bool or None. Serve the mean of the probabilities
            of each image and of its mirror (recorded in `metadata()`).
            Defaults to `None`: the model's own `test_time_flip`.

    Returns:
        The path written, as a `pathlib.Path`.

    Example:
    >>> import tempfile
    >>> backbone = ferzoo.backbones.SmallCNNBackbone(
    ...     image_shape=(32, 32, 3), stackwise_num_filters=[8])
    >>> model = ferzoo.models.Baseline(backbone=backbone, num_classes=2)
    >>> out = ferzoo.export.export_saved_model(
    ...     model, tempfile.mkdtemp() + "/saved", class_names=["a", "b"])
    >>> (out / "saved_model.pb").exists()
    True
    """
    from ferzoo import outputs
    from ferzoo.deploy.common import test_time_flip_as

    height, width = _input_size(model, image_shape)
    names = _class_names(model, class_names)
    path = pathlib.Path(path)
    outputs.check_replaceable(path, "export", overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(dir=path.parent, prefix=".export-"))
    try:
        with test_time_flip_as(model, test_time_flip):
            archive = _archive(model, height, width, names)
            archive.write_out(str(tmp / "saved"), verbose=verbose)
        outputs.write_marker(tmp / "saved", "export")
        outputs.replace_folder(tmp / "saved", path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _archive(model, height, width, names):
    """The SavedModel's `ExportArchive`: its endpoints traced for `model`
    as it is set now (`test_time_flip`)."""
    import json

    import tensorflow as tf

    from ferzoo.version import __version__

    archive = keras.export.ExportArchive()
    archive.track(model)
    probabilities = archive.add_endpoint(
        name="probabilities",
        fn=model.probabilities,
        input_signature=[
            keras.InputSpec(
                shape=(None, height, width, 3),
                dtype="float32",
                name="images",
            )
        ],
    )

    serve = _serve_function(probabilities, height, width, len(names))

    @tf.function(input_signature=[])
    def class_names_fn():
        return tf.constant(names, tf.string)

    text = json.dumps(
        {
            "ferzoo_version": __version__,
            "format": "savedmodel",
            "class_names": names,
            "image_size": [height, width],
            "test_time_flip": bool(model.test_time_flip),
        }
    )

    @tf.function(input_signature=[])
    def metadata_fn():
        return tf.constant(text, tf.string)

    class_names_fn.get_concrete_function()
    metadata_fn.get_concrete_function()
    archive.add_endpoint(name="serve", fn=serve)
    archive.add_endpoint(name="serving_default", fn=serve)
    archive.add_endpoint(name="class_names", fn=class_names_fn)
    archive.add_endpoint(name="metadata", fn=metadata_fn)
    return archive


def _serve_function(probabilities, height, width, num_classes):
    """The `serve` endpoint: RGB pixels of any size, uint8 or float32, to
    probabilities (resized inside; a NaN row for a non-finite image),
    traced for float32 first and uint8."""
    import tensorflow as tf

    @tf.function
    def serve(images):
        images = tf.cast(images, tf.float32)
        same = tf.logical_and(
            tf.equal(tf.shape(images)[1], height),
            tf.equal(tf.shape(images)[2], width),
        )
        images = tf.cond(
            same,
            lambda: images,
            lambda: tf.image.resize(
                images, (height, width), "bilinear", antialias=True
            ),
        )
        images = tf.ensure_shape(images, (None, height, width, 3))
        # NaN/inf pixels: that image's row is NaN, never a confident
        # guess; an empty batch is (0, num_classes).
        finite = tf.reduce_all(tf.math.is_finite(images), axis=[1, 2, 3])
        images = tf.where(
            finite[:, None, None, None], images, tf.zeros_like(images)
        )
        probs = tf.cond(
            tf.shape(images)[0] > 0,
            lambda: tf.cast(probabilities(images), tf.float32),
            lambda: tf.zeros((0, num_classes), tf.float32),
        )
        return tf.where(
            finite[:, None], probs, tf.constant(float("nan"), tf.float32)
        )

    # float32 first: the SavedModel's signatures take the first trace.
    for dtype in (tf.float32, tf.uint8):
        serve.get_concrete_function(
            tf.TensorSpec((None, None, None, 3), dtype, name="images")
        )
    return serve


def _input_size(model, image_shape):
    shape = tuple(image_shape or model.image_shape)
    if len(shape) == 3 and None in shape[:2]:
        size = int((getattr(model, "recipe", None) or {}).get("image_size", 0))
        shape = (size, size, shape[2]) if size else shape
    if len(shape) != 3 or None in shape or shape[2] != 3:
        raise ValueError(
            "`image_shape` must be a full (height, width, 3) for export. "
            f"Received: image_shape={shape}"
        )
    return int(shape[0]), int(shape[1])


def _class_names(model, class_names):
    if class_names is None:
        class_names = (getattr(model, "recipe", None) or {}).get("class_names")
    if class_names is None:
        warnings.warn(
            "The model records no class names (train it with "
            "ferzoo.training.train, or pass `class_names=`); the export "
            "names its classes '0', '1', ...",
            stacklevel=3,
        )
        class_names = [str(i) for i in range(model.num_classes)]
    class_names = [str(name) for name in class_names]
    if len(class_names) != model.num_classes:
        raise ValueError(
            f"`class_names` must name the model's {model.num_classes} "
            f"classes. Received: class_names={class_names}"
        )
    return class_names
