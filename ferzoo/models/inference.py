"""The inference side of a method: probabilities, maps and exports.

A mixin of `NoisyLabelClassifier` (listed before `keras.Model`):
`predict` returns class probabilities, `class_maps` offers the class
activation maps behind the logits (`ferzoo.predict`'s `--cam`), and
`export` writes ferzoo's serving formats.

Test-time flip (`test_time_flip=True`, a constructor argument of every
method, or the attribute set later): `probabilities` and `predict` give
the mean of the class probabilities of each image and of its mirror
image (flipped left-right). The probabilities are averaged, not the
logits: each view's softmax first, then their mean. Training (`fit`,
`compute_loss`) never sees it, and neither does Keras' `evaluate` (nor
`fit`'s validation): its loss and metrics stay those of the training
loss on one forward pass, so that they match the training curves;
`ferzoo.training.evaluate` (`ferzoo-eval`) reads `predict`, so it does
use the flip. Cached trunk maps (`ferzoo.trunk`) are not pixels: on
them `predict` makes one pass.
"""

import keras
from keras import ops

from ferzoo.layers.cam import class_activation_maps


class Inference:
    """Probabilities, class activation maps and exports of a method.

    Args:
        test_time_flip: bool. Predict (and export) the mean of the class
            probabilities of each image and of its left-right mirror
            (probabilities averaged, not logits). Training and Keras'
            `evaluate` are unaffected. Defaults to `False`; written to
            the config only when `True`.

    Example:
    >>> backbone = ferzoo.backbones.SmallCNNBackbone(
    ...     image_shape=(32, 32, 3), stackwise_num_filters=[8])
    >>> model = ferzoo.models.Baseline(
    ...     backbone=backbone, num_classes=2, test_time_flip=True)
    >>> images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3))
    >>> probs = model.predict(images, verbose=0)  # two passes, averaged
    >>> probs.shape
    (4, 2)
    >>> model.test_time_flip = False  # one pass from here on
    >>> model.get_config().get("test_time_flip") is None
    True
    """

    def __init__(self, *args, test_time_flip=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.test_time_flip = test_time_flip

    @property
    def test_time_flip(self):
        return getattr(self, "_test_time_flip", False)

    @test_time_flip.setter
    def test_time_flip(self, value):
        if not isinstance(value, bool):
            raise ValueError(
                f"`test_time_flip` must be True or False. Received: {value!r}"
            )
        self._test_time_flip = value
        # A traced predict function holds the former setting.
        self.predict_function = None

    def inference_config(self):
        """The config entries of this mixin (`{}` unless the flip is on,
        so that presets' config.json stay as they were)."""
        return {"test_time_flip": True} if self.test_time_flip else {}

    def predict(self, x, batch_size=None, verbose="auto", steps=None, **kw):
        """Class probabilities, `(num_images, num_classes)`.

        With `test_time_flip`, the mean of the probabilities of the
        images and of their mirror images (bare images, or the `images`
        of a dict).
        """
        out = super().predict(
            x, batch_size=batch_size, verbose=verbose, steps=steps, **kw
        )
        return _probabilities_numpy(out)

    def predict_on_batch(self, x):
        return _probabilities_numpy(super().predict_on_batch(x))

    def predict_step(self, *args):
        """Keras' predict step; with `test_time_flip`, run on the batch
        and on its mirror image and return their mean probabilities.

        `args` is `(data,)` on TensorFlow and torch, `(state, data)` on
        JAX (whose step also returns the non-trainable variables).
        """
        *state, data = args
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        if not (self.test_time_flip and self.holds_pixels(x)):
            return super().predict_step(*args)
        plain = super().predict_step(*state, (x,))
        mirror = super().predict_step(*state, (self.flip_inputs(x),))
        if state:  # JAX
            (plain, _), (mirror, variables) = plain, mirror
            return self._mean_of_views(plain, mirror), variables
        return self._mean_of_views(plain, mirror)

    def _mean_of_views(self, plain, mirror):
        return {
            "probabilities": mean_probabilities(
                plain["logits"], mirror["logits"]
            )
        }

    def holds_pixels(self, inputs):
        """Whether `inputs` are images, which the test-time flip mirrors.

        Cached trunk maps (a `features` dict, or bare maps of a model
        with `freeze_until`; `ferzoo.trunk`) are not: `predict` then
        makes one pass, as `fit`'s per-epoch reports on a trunk cache do.
        """
        if isinstance(inputs, dict) and "images" not in inputs:
            return False
        images, _ = self.unpack_inputs(inputs)
        split = self.trunk_split
        return not (split is not None and split.is_map(images))

    def flip_inputs(self, inputs):
        """Inputs with their images flipped left-right (`(B, H, W, C)`).

        A dict keeps its other entries (`sample_ids`).
        """
        if not isinstance(inputs, dict):
            return ops.flip(inputs, axis=2)
        images, _ = self.unpack_inputs(inputs)
        return {**inputs, "images": ops.flip(images, axis=2)}

    def probabilities(self, images):
        """Class probabilities as a backend tensor (used by the export).

        With `test_time_flip`, the mean of the probabilities of `images`
        and of their mirror images.
        """
        logits = self(images, training=False)["logits"]
        if not self.test_time_flip:
            return ops.softmax(logits)
        mirror = self(ops.flip(images, axis=2), training=False)["logits"]
        return mean_probabilities(logits, mirror)

    def export(
        self,
        filepath,
        format="tf_saved_model",
        verbose=None,
        input_signature=None,
        **kwargs,
    ):
        """Export for inference; a SavedModel is ferzoo's serving one.

        With `format="tf_saved_model"` (the default) this is
        `ferzoo.export.export_saved_model` on every backend: `serve` takes
        uint8 or float32 RGB batches of any height and width (resized
        inside) and returns probabilities; `class_names()` names them.
        `kwargs` may give its `image_shape`, `class_names`,
        `test_time_flip` (bake the flip into the export, `None`: the
        model's own setting) and `overwrite` (replace an earlier ferzoo
        export at `filepath`).
        `format="onnx" | "litert" | "tfjs"` is `ferzoo.export.export`
        (uint8 pixels of any size -> probabilities, class names in the
        metadata). An `input_signature` or Keras' own `kwargs` use
        `keras.Model.export`.
        """
        ours = {"image_shape", "class_names", "overwrite", "test_time_flip"}
        if (
            format == "tf_saved_model"
            and input_signature is None
            and (set(kwargs) <= ours)
        ):
            from ferzoo.export import export_saved_model

            return export_saved_model(
                self, filepath, verbose=bool(verbose), **kwargs
            )
        light = {
            "image_shape",
            "class_names",
            "grayscale",
            "overwrite",
            "face_nets",
            "test_time_flip",
        }
        if (
            format in ("onnx", "litert", "tfjs")
            and input_signature is None
            and (set(kwargs) <= light)
        ):
            # ferzoo's exports: uint8 pixels of any size -> probabilities,
            # class names in the metadata; `filepath` is the folder that
            # receives model.onnx / model.tflite / model.json.
            from ferzoo.export import export

            return export(
                self, filepath, format, verbose=bool(verbose), **kwargs
            )
        return super().export(
            filepath,
            format=format,
            verbose=verbose,
            input_signature=input_signature,
            **kwargs,
        )

    def feature_map(self, images):
        """The map the classifier's pooled features come from.

        The backbone's output map by default; a method that reshapes it
        before the pooling (DacFER's channel attention) overrides this.
        """
        return self.backbone_map(images, training=False)

    def class_maps(self, images):
        """Class activation maps `(B, h, w, num_classes)`, or None.

        `CAM_c = sum_k w_kc A_k` over `feature_map(images)` and the
        classifier's kernel: for a GAP + dense head, the logits are the
        maps' spatial mean plus the classifier's bias. `None` where the
        logits are not read that way (a method's own head).
        """
        images = ops.cast(images, self.backbone.compute_dtype)
        return class_activation_maps(
            self.feature_map(images), self.classifier.kernel
        )


def mean_probabilities(logits, mirror_logits):
    """`(softmax(logits) + softmax(mirror_logits)) / 2`, backend tensors."""
    return (ops.softmax(logits) + ops.softmax(mirror_logits)) / 2.0


def _probabilities_numpy(outputs):
    """Probabilities from predict's outputs: the step's own
    `probabilities` (test-time flip), else the softmax of `logits`."""
    import numpy as np

    if "probabilities" in outputs:
        return np.asarray(outputs["probabilities"], "float32")
    return _softmax_numpy(outputs["logits"])


def _softmax_numpy(logits):
    import numpy as np

    logits = np.asarray(logits, dtype="float64")
    logits = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=-1, keepdims=True)).astype("float32")
