"""Freeze a pretrained backbone's trunk: fast fine-tuning on cached maps.

`freeze_until=BLOCK` (a model config argument; `ferzoo-train
--freeze-until BLOCK`) freezes a backbone from its input up to and
including a named block (`block_names`). The frozen part, the trunk,
then gives the same output for an image at every epoch, so `train`
computes it once per image and per horizontal flip and stores it on disk
in float16 (`ferzoo.data.trunk_cache`); the rest (the tail, the method's
heads and losses) trains on the stored maps: every method sees the maps
where it would see the trunk's output, through the same `fit` and the
same `compute_loss` (`sample_ids` and per-sample tables unchanged).

Under a mixed dtype policy (`dtype="mixed_bfloat16"`) only the tail
computes in the policy's dtype: the frozen trunk computes in its
variables' dtype (float32), so its maps, and the cache that holds them,
are the same whatever the policy (one cache serves every policy, and
its key, which hashes the weights, stays complete).
"""

from ferzoo.errors import PresetError


# --- Splitting a backbone -----------------------------------------------
def block_names(backbone):
    """Names `freeze_until` accepts, input to output.

    A block named `B` ends at the layer `B_out` (dlib's ResNet:
    `conv128_2`, `conv256_1`, ...); a backbone without `*_out` layers
    (a plain CNN) accepts the name of any of its layers.
    """
    names = [
        layer.name[: -len("_out")]
        for layer in backbone.layers
        if layer.name.endswith("_out")
    ]
    if names:
        return names
    return [
        layer.name
        for layer in backbone.layers
        if layer.weights or layer.name.endswith(("_relu", "_pool"))
    ]


def _cut_layer(backbone, block):
    names = block_names(backbone)
    if block not in names:
        raise PresetError(
            f"`freeze_until` must name a block of {type(backbone).__name__}"
            f" ({', '.join(names)}). Received: freeze_until={block!r}"
        )
    try:
        return backbone.get_layer(f"{block}_out")
    except ValueError:
        return backbone.get_layer(block)


class TrunkSplit:
    """The trunk (input to `block`) and the tail (the rest) of a backbone.

    Both are functional models over the backbone's own layers, so
    training the tail trains the backbone. A plain object on purpose:
    Keras neither tracks nor saves it (the backbone holds the weights).
    """

    def __init__(self, backbone, block):
        import keras

        cut = _cut_layer(backbone, block).output
        self.block = block
        self.trunk = keras.Model(backbone.input, cut, name=f"trunk_{block}")
        try:
            self.tail = keras.Model(cut, backbone.output, name=f"tail_{block}")
        except ValueError as e:
            raise PresetError(
                f"{type(backbone).__name__} cannot be cut after {block!r}: "
                f"its output depends on more than that block's output ({e})"
            ) from None
        self.map_shape = tuple(int(d) for d in cut.shape[1:])
        if None in self.map_shape or self.map_shape[-1] == 3:
            raise PresetError(
                f"`freeze_until={block!r}` needs a fixed-size map with other "
                f"than 3 channels; the block gives {cut.shape[1:]} (give the "
                "backbone a fixed `image_shape`)."
            )

    def is_map(self, x):
        """Whether `x` is a batch of this trunk's maps (not images)."""
        return tuple(x.shape[1:]) == self.map_shape

    def frozen_layers(self):
        return [layer for layer in self.trunk.layers if layer.weights]


def freeze(model, block):
    """Freeze `model.backbone` up to `block`; return the `TrunkSplit`.

    The trunk's layers compute in their variables' dtype (see the module
    docstring).
    """
    split = TrunkSplit(model.backbone, block)
    for layer in split.frozen_layers():
        layer.trainable = False
    compute_in_variable_dtype(split.trunk.layers)
    return split


def compute_in_variable_dtype(layers):
    """Make each layer of a mixed policy compute in its variable dtype."""
    for layer in layers:
        policy = layer.dtype_policy
        if policy.compute_dtype != policy.variable_dtype:
            layer.dtype_policy = policy.variable_dtype
