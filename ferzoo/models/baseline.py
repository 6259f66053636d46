import keras

from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier


@keras.saving.register_keras_serializable(package="ferzoo")
class Baseline(NoisyLabelClassifier):
    """Plain cross-entropy classifier: the reference every method must beat.

    Backbone, global average pooling, dropout and a linear head, trained
    with cross-entropy on the given (possibly noisy) labels. Its clean
    score is the predicted probability of the given label, recorded
    during the last epoch, which is the usual small-loss noise detector.

    Args:
        backbone: `ferzoo.backbones.Backbone`. The feature extractor.
        num_classes: int. Number of classes. Defaults to `7`.
        num_samples: int or None. Training samples, for the score table.
            Defaults to `None` (inferred in `fit`).
        warmup_epochs: int. Unused by the Baseline. Defaults to `0`.
        dropout: float. Dropout before the classifier. Defaults to `0.0`.

    Example:
    >>> import numpy as np
    >>> backbone = ferzoo.backbones.SmallCNNBackbone(
    ...     image_shape=(32, 32, 3), stackwise_num_filters=[8, 16])
    >>> model = ferzoo.models.Baseline(backbone=backbone, num_samples=8)
    >>> x = {"images": np.random.uniform(0, 255, (8, 32, 32, 3)),
    ...      "sample_ids": np.arange(8)}
    >>> _ = model.fit(x, np.random.randint(0, 7, (8,)), batch_size=4,
    ...               epochs=1, verbose=0)
    >>> model.predict(x["images"], verbose=0).shape
    (8, 7)
    """
