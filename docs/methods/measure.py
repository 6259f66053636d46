"""Short synthetic fits behind the measurements quoted in docs/methods.

Trains one method on procedurally drawn faces (`make_synthetic_faces`,
32 px) with symmetric label noise and prints, per epoch, the loss terms,
and at the end the test accuracy on clean held-out faces and the norm of
the classifier kernel. CPU, a minute or two per run.

    PYTHONPATH=$PWD python docs/methods/measure.py dacfer --epochs 8
    PYTHONPATH=$PWD python docs/methods/measure.py afcn \
        --kwargs '{"warmup_epochs": 5}'
"""

import argparse
import json

import keras
import numpy as np

import ferzoo
from ferzoo.data import make_synthetic_faces
from ferzoo.data import symmetric_noise

METHODS = {
    "baseline": "Baseline",
    "scn": "SCN",
    "dacfer": "DacFER",
    "afcn": "AFCN",
    "dual_branch": "DualBranch",
}


def faces(n, size, seed):
    images, labels = make_synthetic_faces(n, image_size=size, seed=seed)
    return np.repeat(images[..., None], 3, -1).astype("float32"), labels


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("method", choices=sorted(METHODS))
    parser.add_argument("--train", type=int, default=1400)
    parser.add_argument("--test", type=int, default=700)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kwargs", default="{}", help="method arguments")
    parser.add_argument(
        "--cam-kernel-gradient",
        action="store_true",
        help="let the CAM consistency train the classifier kernel (the "
        "behaviour before the stop-gradient, for comparison)",
    )
    args = parser.parse_args()
    if args.cam_kernel_gradient:
        from ferzoo.layers import cam

        def call(self, *tensors):
            *features, kernel = tensors
            maps = [cam.class_activation_maps(f, kernel) for f in features]
            if len(maps) == 1:  # one concatenated batch [x; flip(x)]
                maps = keras.ops.split(maps[0], 2, axis=0)
            return maps[0], cam.flip_horizontal(maps[1])

        cam.FlipClassActivationMaps.call = call
    keras.utils.set_random_seed(args.seed)
    images, clean = faces(args.train, args.size, seed=0)
    noisy = symmetric_noise(clean, args.noise, 7, seed=args.seed).labels
    test_images, test_labels = faces(args.test, args.size, seed=1)
    backbone = ferzoo.backbones.SmallCNNBackbone(
        image_shape=(args.size, args.size, 3),
        stackwise_num_filters=[16, 32, 64],
        num_convs_per_stage=1,
    )
    cls = getattr(ferzoo.models, METHODS[args.method])
    model = cls(
        backbone=backbone,
        num_samples=args.train,
        **json.loads(args.kwargs),
    )
    model.recipe = {**model.recipe, "learning_rate": args.lr}
    model.compile()
    x = {"images": images, "sample_ids": np.arange(args.train)}
    history = model.fit(
        x, noisy, batch_size=64, epochs=args.epochs, verbose=0
    ).history
    for key, values in sorted(history.items()):
        if key.startswith("loss") or key == "accuracy":
            print(key, " ".join(f"{v:.4f}" for v in values))
    probs = model.predict(test_images, batch_size=256, verbose=0)
    accuracy = float((probs.argmax(1) == test_labels).mean())
    kernel = keras.ops.convert_to_numpy(model.classifier.kernel)
    # The same with batch-norm batch statistics (training-mode forward).
    logits = np.concatenate(
        [
            keras.ops.convert_to_numpy(
                model(test_images[i : i + 64], training=True)["logits"]
            )
            for i in range(0, args.test, 64)
        ]
    )
    batch_stats = float((logits.argmax(1) == test_labels).mean())
    print(f"test_accuracy {accuracy:.4f}")
    print(f"test_accuracy_batch_statistics {batch_stats:.4f}")
    print(f"classifier_kernel_norm {np.linalg.norm(kernel):.4f}")


if __name__ == "__main__":
    main()
