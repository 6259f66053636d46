"""The inference side of a method: probabilities, maps and exports.

A mixin of `NoisyLabelClassifier` (listed before `keras.Model`):
`predict` returns class probabilities, `class_maps` offers the class
activation maps behind the logits (`ferzoo.predict`'s `--cam`), and
`export` writes ferzoo's serving formats.
"""

from keras import ops

from ferzoo.layers.cam import class_activation_maps


class Inference:
    """Probabilities, class activation maps and exports of a method."""

    def predict(self, x, batch_size=None, verbose="auto", steps=None, **kw):
        """Class probabilities, `(num_images, num_classes)`."""
        out = super().predict(
            x, batch_size=batch_size, verbose=verbose, steps=steps, **kw
        )
        return _softmax_numpy(out["logits"])

    def predict_on_batch(self, x):
        out = super().predict_on_batch(x)
        return _softmax_numpy(out["logits"])

    def probabilities(self, images):
        """Class probabilities as a backend tensor (used by the export)."""
        return ops.softmax(self(images, training=False)["logits"])

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
        `kwargs` may give its `image_shape`, `class_names` and
        `overwrite` (replace an earlier ferzoo export at `filepath`).
        `format="onnx" | "litert" | "tfjs"` is `ferzoo.export.export`
        (uint8 pixels of any size -> probabilities, class names in the
        metadata). An `input_signature` or Keras' own `kwargs` use
        `keras.Model.export`.
        """
        ours = {"image_shape", "class_names", "overwrite"}
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


def _softmax_numpy(logits):
    import numpy as np

    logits = np.asarray(logits, dtype="float64")
    logits = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=-1, keepdims=True)).astype("float32")
