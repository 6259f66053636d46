"""Class activation maps of an image and of its horizontal flip."""

import keras
from keras import ops


def flip_horizontal(images):
    """Mirror a channels-last batch `(B, H, W, C)` left to right."""
    return ops.flip(images, axis=2)


def class_activation_maps(features, kernel):
    """CAM_c = sum_k w_kc A_k for a GAP + linear head, `(B, h, w, K)`.

    This is Grad-CAM in closed form for a global-average-pooling head:
    the gradient of class score c with respect to A_k is w_kc / (h w)
    everywhere, so the Grad-CAM weights are the head's weights (up to the
    constant 1 / (h w)). No ReLU and no bias, as in CAM.

    Args:
        features: tensor `(B, h, w, C)`. The feature map fed to the GAP.
        kernel: tensor `(C, K)`. The linear head's kernel.
    """
    features = ops.cast(features, "float32")
    kernel = ops.cast(kernel, "float32")
    return ops.einsum("bhwc,ck->bhwk", features, kernel)


@keras.saving.register_keras_serializable(package="ferzoo")
class FlipClassActivationMaps(keras.layers.Layer):
    """CAMs of `x` and of `flip(x)`, the second mirrored back.

    Takes the feature maps of `x` and of `flip(x)` (two forward passes,
    as EAC's code runs them) and the kernel of the GAP + linear head,
    computes the class activation maps of both with
    `class_activation_maps`, and mirrors the second set back, so both
    maps are in the frame of `x`. For a model that is exactly
    flip-equivariant the two outputs are equal; their difference is the
    attention-consistency error. The layer has no weights: the kernel is
    the classifier's, passed at call time, and no gradient flows back
    into it (as EAC builds its maps from `fc.weight.data`): a loss on the
    maps trains the features, never the classifier, so it cannot be
    lowered by shrinking the head.

    Example:
    >>> import numpy as np
    >>> feats = np.random.normal(size=(2, 4, 4, 8)).astype("float32")
    >>> layer = ferzoo.layers.FlipClassActivationMaps()
    >>> maps, flipped_back = layer(feats, feats[:, :, ::-1],
    ...                            np.ones((8, 7), "float32"))
    >>> tuple(maps.shape), bool(np.allclose(maps, flipped_back))
    ((2, 4, 4, 7), True)
    """

    def call(self, features, flipped_features, kernel):
        kernel = ops.stop_gradient(kernel)
        maps = class_activation_maps(features, kernel)
        flipped = class_activation_maps(flipped_features, kernel)
        return maps, flip_horizontal(flipped)

    def compute_output_spec(self, features, flipped_features, kernel):
        shape = tuple(features.shape[:3]) + (kernel.shape[-1],)
        return (
            keras.KerasTensor(shape, dtype="float32"),
            keras.KerasTensor(shape, dtype="float32"),
        )
