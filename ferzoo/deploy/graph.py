"""The function every light-runtime export holds, traced in TensorFlow.

`deploy_function` wraps a model (Keras' TensorFlow backend) in a
`tf.function` from pixels of any size to probabilities. The resize is
TensorFlow's bilinear resize with antialiasing
(`tf.image.resize(x, size, "bilinear", antialias=True)`, the one the
SavedModel's `serve` applies), written out as `R_y @ image @ R_x^T`:
`ScaleAndTranslate`, the op TensorFlow uses, exists in none of ONNX,
TFLite's builtins or TF.js, while a matrix product exists in all three.
"""

import tensorflow as tf


def resize_matrix(size_in, size_out):
    """`(size_out, size_in)` weights of a 1-D antialiased bilinear resize.

    Output sample `i` sits at `c_i = (i + 0.5) * size_in / size_out` in
    input coordinates; input pixel `j` (centre `j + 0.5`) gets the
    triangle weight `max(0, 1 - |j + 0.5 - c_i| / s)`, where
    `s = max(size_in / size_out, 1)` widens the triangle when shrinking
    (the antialiasing); each row is normalised to sum to 1, which also
    handles the borders. With `size_in == size_out` this is the identity.
    `size_in` may be a dynamic (tensor) size.
    """
    n_in = tf.cast(size_in, tf.float32)
    scale = n_in / float(size_out)
    width = tf.maximum(scale, 1.0)
    inputs = tf.cast(tf.range(size_in), tf.float32) + 0.5
    centres = (tf.range(size_out, dtype=tf.float32) + 0.5) * scale
    weights = tf.nn.relu(
        1.0 - tf.abs(inputs[None, :] - centres[:, None]) / width
    )
    return weights / tf.reduce_sum(weights, axis=1, keepdims=True)


def resize_images(images, height, width):
    """Float `(B, H, W, C)` images resized to `(B, height, width, C)`."""
    rows = resize_matrix(tf.shape(images)[1], height)
    cols = resize_matrix(tf.shape(images)[2], width)
    x = tf.transpose(images, [0, 3, 1, 2])  # B, C, H, W
    x = tf.matmul(x, cols, transpose_b=True)  # B, C, H, width
    x = tf.matmul(rows, x)  # B, C, height, width
    return tf.transpose(x, [0, 2, 3, 1])


def deploy_function(model, height, width, dtype="uint8"):
    """`tf.function`: `images` `(B, H, W, 3)` of `dtype` -> probabilities.

    Returns a dict `{"probabilities": (B, num_classes)}`.
    """

    @tf.function(
        input_signature=[
            tf.TensorSpec((None, None, None, 3), tf.as_dtype(dtype), "images")
        ]
    )
    def deploy(images):
        x = resize_images(tf.cast(images, tf.float32), height, width)
        return {"probabilities": model.probabilities(x)}

    return deploy


def frozen_graph_def(function):
    """The `GraphDef` of `function` with its variables as constants."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    frozen = convert_variables_to_constants_v2(function.get_concrete_function())
    return frozen, frozen.graph.as_graph_def()
