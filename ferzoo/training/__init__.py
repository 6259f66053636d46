"""Train, evaluate and report: the library functions behind the CLI.

`train()` runs one experiment end to end: load the data (with seeded label
noise), build the preset's model, `fit` with atomic checkpoints and
resumption, evaluate on the test split every epoch, and write a results
folder that is itself a preset (`config.json`, `metadata.json`,
`model.weights.h5`) plus `best.keras`, `last.keras`, `history.csv`,
`results.json`, `spec.json` (the `ferzoo.spec.RunSpec`), TensorBoard logs
and the confusion matrix.

The package: `run` (the steps of one run), `resume` (a run's identity),
`checkpoints` (atomic files), `monitor` (the callbacks), `summary` (the
results), `evaluation` (`evaluate`, `load_any`).
"""

from ferzoo.seeding import epoch_seed  # noqa: F401
from ferzoo.spec import RunSpec
from ferzoo.training import run as run_lib
from ferzoo.training.checkpoints import CHECKPOINTS  # noqa: F401
from ferzoo.training.checkpoints import RESULTS_FILE  # noqa: F401
from ferzoo.training.checkpoints import RUN_FILES  # noqa: F401
from ferzoo.training.checkpoints import STATE_FILE  # noqa: F401
from ferzoo.training.checkpoints import _is_unmarked_run  # noqa: F401
from ferzoo.training.checkpoints import atomic_save_model  # noqa: F401
from ferzoo.training.checkpoints import atomic_write_json  # noqa: F401
from ferzoo.training.checkpoints import finish_checkpoint  # noqa: F401
from ferzoo.training.checkpoints import load_checkpoint  # noqa: F401
from ferzoo.training.checkpoints import recover_checkpoint  # noqa: F401
from ferzoo.training.checkpoints import save_checkpoint  # noqa: F401
from ferzoo.training.checkpoints import write_history  # noqa: F401
from ferzoo.training.evaluation import evaluate  # noqa: F401
from ferzoo.training.evaluation import has_trained_weights  # noqa: F401
from ferzoo.training.evaluation import load_any  # noqa: F401
from ferzoo.training.evaluation import match_classes  # noqa: F401
from ferzoo.training.evaluation import model_metadata  # noqa: F401
from ferzoo.training.evaluation import run_spec  # noqa: F401
from ferzoo.training.evaluation import trained_data  # noqa: F401
from ferzoo.training.monitor import EpochSeeds  # noqa: F401
from ferzoo.training.monitor import TrainingMonitor  # noqa: F401
from ferzoo.training.resume import RUN_FIELDS  # noqa: F401
from ferzoo.training.summary import skipped_report  # noqa: F401


def train(
    preset,
    data="synthetic",
    output_dir="runs/ferzoo",
    verbose="auto",
    resume=True,
    callbacks=None,
    **settings,
):
    """Train a preset on a data set and write a results folder.

    Args:
        preset: str, or a `ferzoo.spec.RunSpec`. A built-in preset name
            or a preset folder; a spec is the whole run (the other
            arguments but `output_dir`, `verbose`, `resume` and
            `callbacks` are then ignored).
        data: str. `KIND:PATH` (see `ferzoo.data.load_split`). Defaults
            to the embedded synthetic faces.
        output_dir: str. The results folder; rerunning with the same
            folder and settings resumes an interrupted run (or extends a
            finished one to more `epochs`).
        **settings: the run's specification, as the keywords of
            `ferzoo.spec.RunSpec.create`:
        noise_rate, noise_type, noise_seed, noise_file: the label-noise
            protocol applied to the training split.
        epochs, batch_size, learning_rate: recipe overrides (None keeps
            the preset's).
        seed: int. Seed of initialisation, shuffling and augmentation.
            Epoch `k`'s data order and augmentation depend on `(seed, k)`
            only, so a resumed run follows the uninterrupted one.
        limit_per_class: int or None. Class-stratified training subset.
        on_error: str. `"raise"` or `"skip"` unreadable samples.
        verbose: Keras verbosity; `"auto"` is 1 on a terminal, else 2.
        resume: bool. Continue from `last.keras` if the folder has a run
            with the same settings (else `RunMismatchError`). `False`
            starts over and replaces the folder's previous run files.
        overrides: dict or None. Model config overrides.
        callbacks: list or None. Extra Keras callbacks.
        classes: list of str or None. Class order of `imagefolder` or
            `rafdb` data, the same for every split (default: the train
            split's class folders, or RAF-DB's order).
        val_fraction: float. With no val split in the data (RAF-DB), the
            fraction of each class of the noisy training split held out
            (seeded by `seed`) to select the best epoch on; 0 selects
            nothing and reports the last epoch. Defaults to `0.1`.
        distribute: str. `"none"` or `"data-parallel"` (every visible
            device, and every process of a multi-host run; see
            `ferzoo.distribute`). `batch_size` stays the global batch.
        stream: bool or None. Read images from their files inside
            tf.data instead of decoding the split into memory; None
            streams splits above
            `ferzoo.data.streaming.STREAM_THRESHOLD` files.
        freeze_until: str or None. Freeze the pretrained backbone up to
            and including this block (e.g. `"conv256_1"` of dlib's
            ResNet) and train the rest on the frozen trunk's maps of
            each image and its flip, computed once and cached on disk
            (`ferzoo.data.trunk_cache`). The recipe's augmentation may then use
            `flip`, `crop_padding` and `erasing` only (applied to maps).
        trunk_cache: str or None. Folder of the cached maps. Defaults to
            `~/.cache/ferzoo/trunks` (`$FERZOO_CACHE/trunks`).
        dtype_policy: str or None. `"float32"` or `"mixed_bfloat16"`
            (`ferzoo.spec.DTYPE_POLICIES`): the Keras dtype policy of
            the model (`from_preset(dtype=...)`). Mixed bfloat16 computes
            in bfloat16 and keeps float32 weights, losses and per-sample
            tables; with `freeze_until` the frozen trunk still computes
            in float32 (one cache for both policies). None keeps the
            recipe's (float32 unless it names one).

    Returns:
        The results dict also written to `results.json`.

    Raises:
        RunMismatchError: `resume=True` and the folder holds a run with
            another preset, data, noise protocol, seed, batch size,
            learning rate or overrides.
        OutputFolderError: the output folder is not a ferzoo training
            folder (and not empty), is in use by another run, or is not
            writable (see `ferzoo.outputs`).
    """
    spec = preset
    if not isinstance(preset, RunSpec):
        spec = RunSpec.create(preset, data=data, **settings)
    elif settings:
        raise TypeError(
            f"A RunSpec is the whole run; got more settings: {sorted(settings)}"
        )
    return run_lib.train(spec, output_dir, resume, verbose, callbacks)
