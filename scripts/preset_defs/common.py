"""Backbones and recipes shared by the preset definitions."""

import ferzoo

PRESETS = {}

FER2013 = {
    "name": "FER2013",
    "image_size": 48,
    "num_classes": 7,
    "class_names": [
        "angry",
        "disgust",
        "fear",
        "happy",
        "neutral",
        "sad",
        "surprise",
    ],
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
