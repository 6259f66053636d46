"""The flip-attention branch shared by DacFER and AFCN."""

from ferzoo.layers.cam import flip_horizontal


def flip_attention_forward(model, inputs, training, head, attend=None):
    """The head's outputs for `x` and, when paired, the CAMs of both views.

    `x` and `flip(x)` run through the backbone as two forward passes, as
    in EAC's code (each view has its own batch-norm batch statistics).
    The flip branch runs only when training or when the batch carries
    `sample_ids` (training-format batches, so `evaluate()` reports the
    consistency term too), never when serving bare images.

    Args:
        model: a `NoisyLabelClassifier` with `pool`, `classifier` and a
            `FlipClassActivationMaps` layer `cam`.
        inputs: images or `{"images", "sample_ids"}`.
        training: bool.
        head: callable. Maps the pooled features of `x`, `(B, C)`, to the
            model's output dict (it must call `model.classifier`).
        attend: callable or None. Applied to each view's feature map
            before pooling and the CAM (DacFER's channel attention).

    Returns:
        The head's dict, plus `"cam"` and `"cam_flipped"` (mirrored back)
        when the flip branch runs.
    """
    images, ids = model.unpack_inputs(inputs)
    # Cached trunk maps carry their flipped image's map (`ferzoo.trunk`):
    # a map cannot be mirrored in place of its image.
    cached_flip = None
    if isinstance(inputs, dict) and "features" in inputs:
        cached_flip = inputs.get("features_flipped")

    def features_of(views):
        features = model.backbone_map(views, training=training)
        return features if attend is None else attend(features)

    features = features_of(images)
    out = dict(head(model.pool(features)))
    if bool(training) or ids is not None:
        if cached_flip is None:
            flipped = features_of(flip_horizontal(images))
        else:
            flipped = features_of(cached_flip)
        out["cam"], out["cam_flipped"] = model.cam(
            features, flipped, model.classifier.kernel
        )
    return out
