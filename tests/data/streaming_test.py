import os
from unittest import mock

import numpy as np
import tensorflow as tf
from PIL import Image

import ferzoo.data
from ferzoo.data import streaming
from tests.test_case import TestCase

AUGMENT = {"flip": True, "crop_padding": 4}
# Noise, augmentation and seeds of every load here (streamed or not).
LOAD = dict(
    image_size=32,
    batch_size=4,
    noise_rate=0.3,
    noise_seed=1,
    augment=AUGMENT,
    seed=3,
)


def write_image_folder(root, per_class=(5, 4, 6), size=40, seed=0):
    """`root/train/<class>/*.png|jpg`: random RGB and grayscale files."""
    rng = np.random.default_rng(seed)
    for c, count in enumerate(per_class):
        folder = os.path.join(root, "train", f"class{c}")
        os.makedirs(folder)
        for i in range(count):
            pixels = rng.integers(0, 256, (size, size + i, 3), dtype="uint8")
            image = Image.fromarray(pixels)
            if i % 3 == 1:
                image = image.convert("L")
            ext = "jpg" if i % 2 else "png"
            image.save(os.path.join(folder, f"{i:03d}.{ext}"))
    return root


def batches(ds, epochs=2):
    out = []
    for _ in range(epochs):
        for x, y in ds:
            out.append(
                (
                    x["sample_ids"].numpy(),
                    y.numpy(),
                    x["images"].numpy(),
                )
            )
    return out


class StreamingTest(TestCase):
    def load(self, root, stream, **kwargs):
        return ferzoo.data.load_split(
            "imagefolder:" + root, "train", stream=stream, **{**LOAD, **kwargs}
        )

    def test_streaming_batches_equal_in_memory_batches(self):
        root = write_image_folder(self.tmp_dir())
        with mock.patch.object(
            streaming, "stream_dataset", wraps=streaming.stream_dataset
        ) as spy:
            streamed, s_info = self.load(root, stream=True)
            self.assertEqual(spy.call_count, 1)
            memory, m_info = self.load(root, stream=False)
            self.assertEqual(spy.call_count, 1)
        self.assertEqual(s_info.names, m_info.names)
        np.testing.assert_array_equal(s_info.labels, m_info.labels)
        np.testing.assert_array_equal(s_info.noise_mask, m_info.noise_mask)
        self.assertGreater(int(s_info.noise_mask.sum()), 0)
        got, want = batches(streamed), batches(memory)
        self.assertEqual(len(got), len(want))
        for (ids, y, x), (ids2, y2, x2) in zip(got, want):
            np.testing.assert_array_equal(ids, ids2)
            np.testing.assert_array_equal(y, y2)
            np.testing.assert_array_equal(x, x2)
        # Labels are the noisy labels of the ids; every id once an epoch.
        ids = np.concatenate([b[0] for b in got[: len(got) // 2]])
        np.testing.assert_array_equal(np.sort(ids), np.arange(15))
        labels = np.concatenate([b[1] for b in got[: len(got) // 2]])
        np.testing.assert_array_equal(labels, m_info.labels[ids])
        # Epochs are shuffled differently, and flips happen.
        self.assertFalse(np.array_equal(got[0][0], got[len(got) // 2][0]))

    def test_eval_split_pixels_are_the_decoded_files(self):
        root = write_image_folder(self.tmp_dir(), per_class=(2, 2, 2))
        ds, info = self.load(root, stream=True, training=False, augment=None)
        x, _ = next(iter(ds))
        first = os.path.join(root, "train", "class0", "000.png")
        want = np.asarray(
            Image.open(first).convert("RGB").resize((32, 32), Image.BILINEAR)
        )
        np.testing.assert_array_equal(x["images"].numpy()[0], want)
        self.assertEqual(x["images"].dtype, tf.uint8)

    def test_chosen_above_the_threshold(self):
        root = write_image_folder(self.tmp_dir(), per_class=(3, 3, 3))
        with mock.patch.object(
            streaming, "stream_dataset", wraps=streaming.stream_dataset
        ) as spy:
            with mock.patch.object(streaming, "STREAM_THRESHOLD", 8):
                self.load(root, stream=None)
            self.assertEqual(spy.call_count, 1)
            with mock.patch.object(streaming, "STREAM_THRESHOLD", 9):
                self.load(root, stream=None)
            self.assertEqual(spy.call_count, 1)
        # Splits that are not files (synthetic faces) stay in memory.
        ds, info = ferzoo.data.load_split("synthetic:14", stream=True)
        self.assertEqual(info.num_samples, 14)

    def test_unreadable_file_is_named_or_skipped(self):
        root = write_image_folder(self.tmp_dir(), per_class=(2, 2))
        bad = os.path.join(root, "train", "class1", "bad.png")
        with open(bad, "wb") as f:
            f.write(b"not an image")
        ds, _ = self.load(root, stream=True, augment=None, noise_rate=0)
        with self.assertRaisesRegex(Exception, "bad.png"):
            batches(ds, epochs=1)
        ds, _ = self.load(
            root, stream=True, augment=None, noise_rate=0, on_error="skip"
        )
        ids = np.concatenate([b[0] for b in batches(ds, epochs=1)])
        self.assertEqual(sorted(ids.tolist()), [0, 1, 2, 3])

    def training_splits(self, root, stream, **kwargs):
        args = {**LOAD, "val_fraction": 0.25, **kwargs}
        return ferzoo.data.load_training_splits(
            "imagefolder:" + root, stream=stream, **args
        )

    def test_training_splits_stream_with_carved_val_and_epoch_range(self):
        # No val/ folder: the val split is carved out of the file list.
        root = write_image_folder(self.tmp_dir(), per_class=(6, 5, 7))
        with mock.patch.object(
            streaming, "stream_dataset", wraps=streaming.stream_dataset
        ) as spy:
            streamed = self.training_splits(root, True, epochs=(0, 3))
            self.assertEqual(spy.call_count, 2)  # train and carved val
        memory = self.training_splits(root, False, epochs=(0, 3))
        self.assertEqual(streamed.selection["type"], "carved")
        self.assertEqual(streamed.val_info.names, memory.val_info.names)
        self.assertEqual(streamed.train_info.names, memory.train_info.names)
        for got, want in (
            (batches(streamed.train, 1), batches(memory.train, 1)),
            (batches(streamed.val, 1), batches(memory.val, 1)),
        ):
            self.assertEqual(len(got), len(want))
            for a, b in zip(got, want):
                for u, v in zip(a, b):
                    np.testing.assert_array_equal(u, v)
        # 18 files, 4 held out (1, 1, 2 per class): 14 training samples,
        # batches of 4: 4 batches an epoch, 3 epochs, every id once each.
        self.assertEqual(streamed.val_info.num_samples, 4)
        got = batches(streamed.train, 1)
        self.assertEqual(len(got), 12)
        for epoch in range(3):
            ids = np.concatenate([b[0] for b in got[4 * epoch : 4 * epoch + 4]])
            np.testing.assert_array_equal(np.sort(ids), np.arange(14))
        # Epoch 2 depends only on (seed, 2): a resumed range gives it too.
        resumed = self.training_splits(root, True, epochs=(2, 3))
        for a, b in zip(batches(resumed.train, 1), got[8:]):
            for u, v in zip(a, b):
                np.testing.assert_array_equal(u, v)
        x, _ = next(iter(streamed.val))
        name = streamed.val_info.sources[0]
        want = np.asarray(
            Image.open(name).convert("RGB").resize((32, 32), Image.BILINEAR)
        )
        np.testing.assert_array_equal(x["images"].numpy()[0], want)

    def test_skipped_file_keeps_the_epoch_length(self):
        root = write_image_folder(self.tmp_dir(), per_class=(3, 1))
        bad = os.path.join(root, "train", "class1", "bad.png")
        with open(bad, "wb") as f:
            f.write(b"not an image")
        splits = self.training_splits(
            root,
            True,
            augment=None,
            noise_rate=0,
            val_fraction=0,
            on_error="skip",
            epochs=(0, 2),
        )
        self.assertEqual(splits.train_info.num_samples, 5)
        got = batches(splits.train, 1)
        # 5 listed samples, batches of 4: 2 steps an epoch. One file is
        # unreadable, so each epoch's 4 readable samples fill one batch and
        # the epoch is topped up with its first batch again.
        self.assertEqual([len(b[0]) for b in got], [4, 4, 4, 4])
        for first, second in (got[:2], got[2:]):
            self.assertEqual(sorted(first[0].tolist()), [0, 1, 2, 3])
            np.testing.assert_array_equal(first[0], second[0])
        self.assertFalse(np.array_equal(got[0][0], got[2][0]))
