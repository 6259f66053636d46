import os

import numpy as np
import pytest
from PIL import Image

from ferzoo.models import SCN
from tests.test_case import TestCase
from tests.test_case import tiny_backbone

NAMES = ["angry", "happy", "sad"]


def pil_resize(images, size):
    """The training pipeline's resize (PIL bilinear), image by image."""
    return np.stack(
        [
            np.asarray(
                Image.fromarray(image).resize((size, size), Image.BILINEAR)
            )
            for image in images
        ]
    ).astype("float32")


class ExportTest(TestCase):
    def setUp(self):
        super().setUp()
        self.model = SCN(backbone=tiny_backbone(), num_classes=3, num_samples=4)
        rng = np.random.default_rng(0)
        # Smooth faces-sized images (a resize keeps their content).
        ramp = np.linspace(0, 1, 96)
        base = np.stack(np.meshgrid(ramp, ramp), -1).sum(-1) / 2
        self.big = np.stack(
            [
                (255 * np.stack([base, base**2, 1 - base], -1) * k).astype(
                    "uint8"
                )
                for k in rng.uniform(0.3, 1.0, 4)
            ]
        )

    def export(self, **kwargs):
        import tensorflow as tf

        path = os.path.join(self.tmp_dir(), "saved")
        self.model.export(path, **kwargs)
        return tf.saved_model.load(path)

    @pytest.mark.large
    def test_keras_export_serves_uint8_and_float32(self):
        import tensorflow as tf

        loaded = self.export(class_names=NAMES)
        x = pil_resize(self.big, 32)
        expected = self.model.predict(x, verbose=0)
        for batch in (x.astype("uint8"), x):
            served = loaded.serve(tf.constant(batch)).numpy()
            np.testing.assert_allclose(served, expected, atol=1e-5)
        signature = loaded.signatures["serving_default"]
        out = signature(images=tf.constant(x))
        np.testing.assert_allclose(
            next(iter(out.values())).numpy(), expected, atol=1e-5
        )

    @pytest.mark.large
    def test_serve_resizes_any_size_like_the_data_pipeline(self):
        import tensorflow as tf

        loaded = self.export(class_names=NAMES)
        expected = self.model.predict(pil_resize(self.big, 32), verbose=0)
        served = loaded.serve(tf.constant(self.big)).numpy()  # 96 x 96
        np.testing.assert_allclose(served, expected, atol=2e-3)
        wide = self.big[:, :60, :, :]  # 60 x 96, uint8
        served = loaded.serve(tf.constant(wide)).numpy()
        self.assertEqual(served.shape, (4, 3))
        np.testing.assert_allclose(served.sum(axis=1), 1.0, atol=1e-5)

    @pytest.mark.large
    def test_plain_keras_export_serves_float32(self):
        # `model.export(path)` as Keras documents it; on JAX, Keras' own
        # export gave a `serve` that rejected float32 batches.
        import tensorflow as tf

        self.model.recipe = {**self.model.recipe, "class_names": NAMES}
        loaded = self.export()
        x = pil_resize(self.big, 32)
        np.testing.assert_allclose(
            loaded.serve(tf.constant(x)).numpy(),
            self.model.predict(x, verbose=0),
            atol=1e-5,
        )

    @pytest.mark.large
    def test_saved_model_carries_its_class_names(self):
        loaded = self.export(class_names=NAMES)
        names = [n.decode() for n in loaded.class_names().numpy()]
        self.assertEqual(names, NAMES)
        # Names recorded in the model's recipe (as training does) by default.
        self.model.recipe = {**self.model.recipe, "class_names": NAMES[::-1]}
        loaded = self.export()
        names = [n.decode() for n in loaded.class_names().numpy()]
        self.assertEqual(names, NAMES[::-1])

    def test_wrong_number_of_class_names_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "3 classes"):
            self.model.export(self.tmp_dir() + "/s", class_names=["a"])

    @pytest.mark.large
    def test_empty_batch_and_non_finite_pixels(self):
        import tensorflow as tf

        loaded = self.export(class_names=NAMES)
        for shape in ((0, 32, 32, 3), (0, 50, 40, 3)):
            for dtype in ("float32", "uint8"):
                served = loaded.serve(tf.zeros(shape, dtype)).numpy()
                self.assertEqual(served.shape, (0, 3))
        x = pil_resize(self.big, 32)
        expected = self.model.predict(x, verbose=0)
        bad = x.copy()
        bad[1, 3, 4, 0] = np.nan
        bad[2, 0, 0, 2] = np.inf
        served = loaded.serve(tf.constant(bad)).numpy()
        self.assertTrue(np.isnan(served[1]).all())
        self.assertTrue(np.isnan(served[2]).all())
        np.testing.assert_allclose(served[[0, 3]], expected[[0, 3]], atol=1e-5)

    def test_export_never_replaces_a_folder_ferzoo_did_not_write(self):
        from ferzoo.errors import OutputFolderError

        root = self.tmp_dir()
        user = os.path.join(root, "mine")
        os.makedirs(user)
        with open(os.path.join(user, "notes.txt"), "w") as f:
            f.write("keep me")
        for overwrite in (False, True):
            with self.assertRaisesRegex(OutputFolderError, "not written by"):
                self.model.export(user, class_names=NAMES, overwrite=overwrite)
        self.assertEqual(os.listdir(user), ["notes.txt"])
        self.assertEqual(
            open(os.path.join(user, "notes.txt")).read(), "keep me"
        )
        # Another command's folder (a training run) is not an export.
        run = os.path.join(root, "run")
        os.makedirs(run)
        from ferzoo import outputs

        outputs.write_marker(run, "train")
        with self.assertRaisesRegex(OutputFolderError, "'train' output"):
            self.model.export(run, class_names=NAMES, overwrite=True)

    @pytest.mark.large
    def test_overwrite_replaces_only_an_earlier_export(self):
        from ferzoo.errors import OutputFolderError

        path = os.path.join(self.tmp_dir(), "saved")
        os.makedirs(path)  # an empty folder is fine
        self.model.export(path, class_names=NAMES)
        with self.assertRaisesRegex(OutputFolderError, "--overwrite"):
            self.model.export(path, class_names=NAMES)
        self.model.export(path, class_names=NAMES[::-1], overwrite=True)
        import tensorflow as tf

        names = [
            n.decode() for n in tf.saved_model.load(path).class_names().numpy()
        ]
        self.assertEqual(names, NAMES[::-1])
        parent = os.listdir(os.path.dirname(path))
        self.assertEqual(parent, ["saved"])  # no temporary folder left


@pytest.mark.large
def test_saved_model_serves_the_test_time_flip_and_records_it(tmp_path):
    import json

    import tensorflow as tf

    from tests.models.inference_test import lopsided_images
    from tests.models.inference_test import peaked
    from tests.models.inference_test import plain_logits
    from tests.test_case import numpy_softmax

    model = peaked()
    names = [f"c{i}" for i in range(7)]
    x = lopsided_images().round()  # the same as uint8
    plain = numpy_softmax(plain_logits(model, x))
    mirror = numpy_softmax(plain_logits(model, x[:, :, ::-1]))
    flipped = (plain + mirror) / 2
    assert np.abs(flipped - plain).max() > 1e-3
    # The model's own setting by default (Keras' `export` API) ...
    model.test_time_flip = True
    model.export(str(tmp_path / "on"), class_names=names)
    # ... or the argument, for this export only.
    ferzoo_export(model, tmp_path / "off", names, test_time_flip=False)
    assert model.test_time_flip is True
    for folder, want in (("on", flipped), ("off", plain)):
        loaded = tf.saved_model.load(str(tmp_path / folder))
        for batch in (x, x.astype("uint8")):
            served = loaded.serve(tf.constant(batch)).numpy()
            np.testing.assert_allclose(served, want, atol=1e-5, err_msg=folder)
        meta = json.loads(loaded.metadata().numpy().decode())
        assert meta["test_time_flip"] is (folder == "on")
        assert meta["class_names"] == names
    # The Keras model, flip on, serves the same as the "on" export.
    loaded = tf.saved_model.load(str(tmp_path / "on"))
    np.testing.assert_allclose(
        loaded.serve(tf.constant(x)).numpy(),
        model.predict(x, verbose=0),
        atol=1e-5,
    )


def ferzoo_export(model, path, names, **kwargs):
    from ferzoo.export import export_saved_model

    return export_saved_model(model, str(path), class_names=names, **kwargs)
