import pathlib

import numpy as np
import pytest

from ferzoo.backbones import SmallCNNBackbone
from ferzoo.data import make_dataset
from ferzoo.data import trunk_cache as trunk
from ferzoo.data.datasets import DatasetInfo
from ferzoo.errors import DataError
from ferzoo.models import Baseline
from ferzoo.models import DacFER
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_dwmca

N, SIZE, BATCH = 12, 16, 4


def _model(cls, **kwargs):
    backbone = SmallCNNBackbone(
        image_shape=(SIZE, SIZE, 3),
        stackwise_num_filters=[4, 8],
        num_convs_per_stage=1,
    )
    return cls(backbone, num_samples=N, freeze_until="stage1_pool", **kwargs)


def _data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N, SIZE, SIZE, 3), dtype="uint8")
    return images, rng.integers(0, 7, N).astype("int32")


def _image_batches(images, labels, seed):
    """One epoch of images in the order and flips of `epoch_plan`."""
    _, plan = trunk.epoch_plan(N, BATCH, seed, 0, shuffle=True, flip=True)
    for ids, flipped in plan:
        x = np.where(
            flipped[:, None, None, None], images[ids][:, :, ::-1], images[ids]
        )
        yield {"images": x, "sample_ids": ids.astype("int32")}, labels[ids]


def _fit_both(test, live, images, labels, size):
    """One epoch of `live` on images (trunk run live, frozen) and of its
    copy on the cached maps, same order and flips; their histories."""
    import keras

    cached = type(live).from_config(live.get_config())
    cached.set_weights(live.get_weights())
    tmp_path = pathlib.Path(test.tmp_dir())
    info = DatasetInfo(
        ["c"] * 7, labels, sources=[f"s{i}" for i in range(N)], data="t"
    )
    cache = trunk.TrunkCache(tmp_path, cached, info, size)
    cache.build(make_dataset(images, labels, BATCH), verbose=False)
    maps = cache.load()
    histories = []
    for model, data in (
        (live, list(_image_batches(images, labels, seed=3))),
        (
            cached,
            trunk.map_batches(
                maps, labels, BATCH, True, {"flip": True}, 3, (0, 1)
            ),
        ),
    ):
        model.compile(optimizer=keras.optimizers.SGD(0.05))
        keras.utils.set_random_seed(1)
        history = model.fit(
            (b for b in data) if isinstance(data, list) else data,
            epochs=1,
            steps_per_epoch=N // BATCH,
            verbose=0,
        )
        histories.append(history.history)
    test.assertAllClose(
        live.clean_scores(), cached.clean_scores(), rtol=2e-3, atol=1e-5
    )
    # `weights` keeps one order across a config round trip (set_weights).
    for a, b in zip(live.weights, cached.weights):
        test.assertAllClose(a, b, rtol=1e-2, atol=5e-4)
    # The trunk never trained; only the tail and the heads did.
    frozen = cached.trunk_split.frozen_layers()
    test.assertTrue(frozen and not any(lay.trainable for lay in frozen))
    return maps, histories


class TrunkTest(TestCase):
    def test_cached_epoch_matches_live_frozen_trunk(self):
        # DacFER: its flip branch must read the cached map of the flipped
        # image (a mirrored map would change the consistency term).
        images, labels = _data()
        live = _model(DacFER, use_channel_attention=False)
        maps, histories = _fit_both(self, live, images, labels, SIZE)
        self.assertEqual(maps.dtype, np.float16)
        self.assertEqual(maps.shape, (N, 2, 8, 8, 4))
        for key in ("loss", "loss_ce", "loss_consistency"):
            self.assertAllClose(
                histories[0][key], histories[1][key], rtol=2e-3, atol=1e-5
            )

    @pytest.mark.large  # dlib's ResNet: ~20 s
    def test_cached_dwmca_matches_live_frozen_trunk(self):
        # DWMCA reads two earlier scales (cached pooled to the last grid)
        # and its landmark maps (cached) besides the trunk's map.
        from ferzoo.backbones import DlibResNetBackbone

        size = 64
        rng = np.random.default_rng(1)
        images = rng.integers(0, 256, (N, size, size, 3), dtype="uint8")
        labels = rng.integers(0, 7, N).astype("int32")
        live = tiny_dwmca(
            DlibResNetBackbone((size, size, 3), include_last_block=False),
            tiny_backbone(16),
            N,
            freeze_until="conv256_1",
            freeze_landmark_backbone=True,
        )
        maps, histories = _fit_both(self, live, images, labels, size)
        self.assertEqual(
            {k: v.shape[2:] for k, v in maps.items()},
            {
                "features": (1, 1, 256),
                "scale0": (1, 1, 64),
                "scale1": (1, 1, 128),
                "landmarks": (8, 8, 16),
            },
        )
        for key in ("loss", "loss_cls", "loss_center"):
            self.assertAllClose(
                histories[0][key], histories[1][key], rtol=2e-3, atol=1e-5
            )

    def test_bad_block_lists_the_blocks(self):
        backbone = SmallCNNBackbone(
            image_shape=(SIZE, SIZE, 3), stackwise_num_filters=[4]
        )
        with pytest.raises(ValueError, match="stage1_conv2_relu"):
            Baseline(backbone, freeze_until="conv9")

    def test_pixel_augmentation_is_refused_on_maps(self):
        self.assertEqual(
            trunk.feature_augment({"flip": True, "erasing": 0.25}),
            {"flip": True, "erasing": 0.25},
        )
        with pytest.raises(ValueError, match="rotation"):
            trunk.feature_augment({"flip": True, "rotation": 10})

    def test_cache_key_and_foreign_folder(self):
        tmp_path = pathlib.Path(self.tmp_dir())
        model = _model(Baseline)
        labels = np.zeros(N, "int32")
        info = DatasetInfo(["c"], labels, sources=[f"s{i}" for i in range(N)])
        cache = trunk.TrunkCache(tmp_path, model, info, SIZE)
        # Each key part gives another folder.
        moved = DatasetInfo(["c"], labels, sources=[f"t{i}" for i in range(N)])
        other = [
            trunk.TrunkCache(tmp_path, model, info, SIZE + 1),
            trunk.TrunkCache(tmp_path, model, moved, SIZE),
        ]
        model.backbone.get_layer("stage1_conv1_conv").kernel.assign(
            np.ones((3, 3, 3, 4), "float32")
        )
        other.append(trunk.TrunkCache(tmp_path, model, info, SIZE))
        folders = {c.folder for c in [cache, *other]}
        self.assertEqual(len(folders), 4)
        # A folder ferzoo did not write is left alone.
        cache.folder.mkdir(parents=True)
        (cache.folder / "maps.npy").write_text("mine")
        with pytest.raises(DataError, match="not written by ferzoo"):
            cache.build([], verbose=False)
        self.assertEqual((cache.folder / "maps.npy").read_text(), "mine")
