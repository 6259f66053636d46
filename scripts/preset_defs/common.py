"""Backbones, recipes and preset families shared by the definitions.

A `PRESETS` entry is `(build, metadata)` (`preset`); the families
(`fer2013_resnet18`, `fer2013_small_cnn`, `synthetic`) fix the backbone,
dataset and recipe that every method's preset of that family shares.
"""

import ferzoo

PRESETS = {}

FER2013 = {
    "name": "FER2013",
    "image_size": 48,
    "num_classes": 7,
    "class_names": list(ferzoo.data.FER2013_CLASS_NAMES),
}
SYNTHETIC = {**FER2013, "name": "synthetic (ferzoo.data.synthetic)"}
RAFDB = {"name": "RAF-DB basic", "image_size": 224, "num_classes": 7}
NOISE_30 = {"type": "symmetric", "rate": 0.3, "seed": 0}


def recipe(**overrides):
    base = {
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "lr_decay": 0.9,
        "epochs": 40,
        "batch_size": 64,
        "image_size": 224,
        "augment": {"flip": True, "erasing": 0.25},
    }
    base.update(overrides)
    return base


def small_cnn(size=48, filters=(32, 64, 128), convs=2):
    return ferzoo.backbones.SmallCNNBackbone(
        image_shape=(size, size, 3),
        stackwise_num_filters=list(filters),
        num_convs_per_stage=convs,
    )


def synthetic_cnn():
    """The tiny CNN of the embedded-default presets (CPU, minutes)."""
    return small_cnn(48, (16, 32, 64), 1)


def resnet(name, size, stem="imagenet"):
    return ferzoo.backbones.ResNetBackbone.from_name(
        name, image_shape=(size, size, 3), stem=stem
    )


SYNTHETIC_RECIPE = recipe(
    epochs=12,
    batch_size=64,
    image_size=48,
    learning_rate=2e-3,
    augment={"flip": True, "crop_padding": 4},
)
FER2013_SMALL_RECIPE = recipe(
    epochs=30,
    batch_size=64,
    image_size=48,
    augment={"flip": True, "crop_padding": 4, "erasing": 0.25},
)
FER2013_RESNET_RECIPE = recipe(
    epochs=40,
    batch_size=128,
    image_size=48,
    augment={"flip": True, "crop_padding": 4, "erasing": 0.25},
)


def metadata(description, dataset, rec, paper=None, **extra):
    """A preset's metadata.json content (30% symmetric noise protocol)."""
    return {
        "description": description,
        "paper": paper,
        "dataset": dataset,
        "noise": NOISE_30,
        "recipe": rec,
        "results": {},
        **extra,
    }


def preset(model, backbone, meta, landmark=None, **kwargs):
    """A `PRESETS` entry: `build()` makes `model(backbone=backbone(),
    **kwargs)` (with `landmark_backbone=landmark()` when given), and its
    metadata. Backbones are built inside `build`, after the session is
    cleared, so that layer names do not depend on the order."""

    def build():
        parts = {"backbone": backbone()}
        if landmark is not None:
            parts["landmark_backbone"] = landmark()
        return model(**parts, **kwargs)

    return build, meta


def _family(backbone, dataset, rec, **defaults):
    """The preset function of a family: `family(model, description,
    paper=None, **kwargs)` puts `model` on a new `backbone()` with the
    family's dataset, recipe and `defaults`."""

    def family(model, description, paper=None, **kwargs):
        return preset(
            model,
            backbone,
            metadata(description, dataset, rec, paper),
            **defaults,
            **kwargs,
        )

    return family


# ResNet-18 with the small stem for 48 px FER2013.
fer2013_resnet18 = _family(
    lambda: resnet("resnet18", 48, stem="small"),
    FER2013,
    FER2013_RESNET_RECIPE,
    dropout=0.2,
)
# The small CNN for 48 px FER2013.
fer2013_small_cnn = _family(
    small_cnn, FER2013, FER2013_SMALL_RECIPE, dropout=0.2
)
# The tiny CNN for the embedded synthetic faces.
synthetic = _family(synthetic_cnn, SYNTHETIC, SYNTHETIC_RECIPE)
