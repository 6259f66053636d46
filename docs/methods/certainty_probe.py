"""The first training steps of a certainty-weighted method on FER2013.

Fine-tunes a preset (e.g. `afcn_dlib_resnet29_fer2013`) on a small
class-stratified FER2013 subset with 30% symmetric noise and prints, every
few steps, the loss terms, the batch mean of the certainty alpha (SCN's
importance), the std of the logits and how the batch's predictions spread
over the classes. It shows whether alpha collapses toward 0 in the first
steps (docs/methods/afcn.md, "A zero-initialised classifier"). CPU,
under a minute.

    PYTHONPATH=$PWD python docs/methods/certainty_probe.py \\
        presets/afcn_dlib_resnet29_fer2013 --data /path/to/fer2013
    ... --classifier-init glorot_uniform   # the head before 2026-12-06
    ... --kwargs '{"consistency_weight": 0.0}'
"""

import argparse
import json

import keras
import numpy as np
from keras import ops

from ferzoo.data import load_training_splits
from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("preset")
    parser.add_argument("--data", required=True, help="FER2013 folder")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--kwargs", default="{}", help="config overrides")
    parser.add_argument(
        "--classifier-init",
        default=None,
        help="replace the classifier kernel (e.g. glorot_uniform, zeros)",
    )
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    splits = load_training_splits(
        f"fer2013:{args.data}",
        val_fraction=0.1,
        val_seed=0,
        noise_rate=0.3,
        noise_seed=0,
        augment={"flip": True, "crop_padding": 8, "erasing": 0.25},
        seed=0,
        limit_per_class=400,
        epochs=(0, 1),
        image_size=112,
        batch_size=32,
    )
    info = splits.train_info
    model = NoisyLabelClassifier.from_preset(
        args.preset,
        num_classes=info.num_classes,
        num_samples=info.num_samples,
        **json.loads(args.kwargs),
    )
    if args.classifier_init:
        kernel = model.classifier.kernel
        init = keras.initializers.get(args.classifier_init)
        kernel.assign(init(kernel.shape))
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    batches = iter(splits.train)
    for step in range(args.steps):
        x, y = next(batches)
        logs = model.train_on_batch(x, y, return_dict=True)
        if step % args.every and step != args.steps - 1:
            continue
        out = model(x, training=False)
        row = {k: round(float(v), 4) for k, v in logs.items()}
        if "importance" in out:
            row["alpha"] = round(float(ops.mean(out["importance"])), 4)
        row["logit_std"] = round(float(ops.std(out["logits"])), 4)
        preds = np.argmax(np.asarray(out["logits"]), -1)
        row["predicted"] = np.bincount(preds, minlength=7).tolist()
        print(step, json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
