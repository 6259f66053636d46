"""Options shared by the ferzoo commands, and their error handling.

Exit codes: 0 success; 1 unexpected error (with traceback); 2 usage error
(also: the output folder holds a run with other settings); 3 data or preset
error; 4 diverged (non-finite loss); 130 interrupted (Ctrl-C).
"""

import functools
import json
import math
import os
import sys

import click

from ferzoo.spec import DTYPE_POLICIES

EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_DIVERGED = 4
EXIT_INTERRUPTED = 130


class DataOrPresetError(click.ClickException):
    exit_code = EXIT_DATA


class DivergedClickError(click.ClickException):
    exit_code = EXIT_DIVERGED


class RunMismatchClickError(click.ClickException):
    exit_code = EXIT_USAGE


class UsageClickError(click.ClickException):
    exit_code = EXIT_USAGE


class FiniteFloatRange(click.FloatRange):
    """`click.FloatRange` that also refuses nan (click lets it through,
    as every comparison with nan is false) and infinities."""

    name = "finite float range"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def preset_option(required=True, default=None):
    """`--preset`; `default` only names the default in the help text."""
    more = f" Default: {default}." if default else ""
    return click.option(
        "--preset",
        required=required,
        metavar="NAME_OR_DIR",
        help="Built-in preset name (see ferzoo-train --list-presets) or a "
        "preset folder." + more,
    )


DATA_HELP = (
    "Data set as KIND:PATH; KIND is synthetic, imagefolder, fer2013, "
    "rafdb, ferplus or affectnet."
)


def data_option_with(default="synthetic", more=""):
    """`--data`; `more` says what a missing value means."""
    return click.option(
        "--data",
        "data",
        default=default,
        show_default=default is not None,
        metavar="KIND:PATH",
        help=DATA_HELP + more,
    )


data_option = data_option_with("synthetic")


def output_dir_option(default):
    return click.option(
        "--output-dir",
        default=default,
        show_default=True,
        type=click.Path(file_okay=False),
        help="Results folder; rerun with the same folder to resume.",
    )


# Training options shared by ferzoo-train and ferzoo-audit (which trains
# its folds with them); the recipe options default to the preset's.
noise_rate_option = click.option(
    "--noise-rate",
    type=FiniteFloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of each class's training labels to flip first (0-1); "
    "the flips are recorded, so noise detection is measured against them.",
)
noise_type_option = click.option(
    "--noise-type",
    type=click.Choice(["symmetric", "pair"]),
    default="symmetric",
    show_default=True,
    help="Flip to a uniform other class, or to a fixed paired class.",
)
noise_file_option = click.option(
    "--noise-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="EAC-style label file (RAF-DB list format) whose labels replace "
    "the training labels.",
)
noise_seed_option = click.option(
    "--noise-seed", default=0, show_default=True, help="Seed of the flips."
)
epochs_option = click.option(
    "--epochs",
    type=click.IntRange(1),
    help="Epochs to train (each fold's, in ferzoo-audit); default: the "
    "preset's recipe.",
)
batch_size_option = click.option(
    "--batch-size",
    type=click.IntRange(1),
    help="Batch size; default: the preset's recipe.",
)
learning_rate_option = click.option(
    "--learning-rate",
    type=FiniteFloatRange(0, min_open=True),
    help="Initial learning rate; default: the preset's recipe.",
)
dtype_policy_option = click.option(
    "--dtype-policy",
    type=click.Choice(DTYPE_POLICIES),
    default=None,
    help="Keras dtype policy to train under; mixed_bfloat16 computes in "
    "bfloat16 (faster on CPUs with AVX512_BF16, and on GPUs) and keeps "
    "float32 weights, losses and per-sample tables; with --freeze-until "
    "only the tail computes in bfloat16. Default: the preset's recipe "
    "(float32).",
)
limit_per_class_option = click.option(
    "--limit-per-class",
    type=click.IntRange(1),
    help="Use at most this many training images per class (a fixed, "
    "seeded, class-stratified subset).",
)
seed_option = click.option(
    "--seed",
    default=0,
    show_default=True,
    help="Seed of initialisation, shuffling and augmentation (and of "
    "ferzoo-audit's folds).",
)
no_resume_option = click.option(
    "--no-resume",
    is_flag=True,
    help="Start over even if the output folder holds a run (its run "
    "files are replaced). Without it, rerunning resumes, and a folder "
    "made with other settings is refused.",
)


# The options that make a run's spec (`ferzoo.spec.RunSpec.create`'s
# keywords), in --help order: ferzoo-train and ferzoo-audit take them all.
RUN_OPTIONS = (
    noise_rate_option,
    noise_type_option,
    noise_file_option,
    noise_seed_option,
    epochs_option,
    batch_size_option,
    learning_rate_option,
    dtype_policy_option,
    limit_per_class_option,
    seed_option,
)
RUN_OPTION_NAMES = (
    "noise_rate",
    "noise_type",
    "noise_file",
    "noise_seed",
    "epochs",
    "batch_size",
    "learning_rate",
    "dtype_policy",
    "limit_per_class",
    "seed",
)


def run_options(fn):
    """Decorate a command with `RUN_OPTIONS` (its `main` receives them as
    the keywords of the same names)."""
    for option in reversed(RUN_OPTIONS):
        fn = option(fn)
    return fn


def run_settings(params):
    """The `RUN_OPTION_NAMES` values of a command's parameters."""
    return {name: params[name] for name in RUN_OPTION_NAMES}


val_fraction_option = click.option(
    "--val-fraction",
    type=FiniteFloatRange(0, 1, max_open=True),
    default=0.1,
    show_default=True,
    help="With no val split in the data (RAF-DB): fraction of each class "
    "of the noisy training split held out (seeded by --seed) to pick the "
    "best epoch on; 0 picks nothing and reports the last epoch.",
)
distribute_option = click.option(
    "--distribute",
    type=click.Choice(["none", "data-parallel"]),
    default="none",
    show_default=True,
    help="data-parallel: split each batch over every visible device "
    "(and every process of a multi-host run); see docs/distributed.md.",
)
stream_option = click.option(
    "--stream/--no-stream",
    default=None,
    help="Decode images from their files inside tf.data instead of "
    "into memory (default: only above 50,000 files).",
)
freeze_until_option = click.option(
    "--freeze-until",
    metavar="BLOCK",
    default=None,
    help="Freeze the pretrained backbone up to and including BLOCK (e.g. "
    "conv256_1 of dlib's ResNet) and train the rest on the frozen "
    "trunk's maps, computed once per image and flip and cached on disk "
    "(see docs/cli.md, 'Fast fine-tuning').",
)
trunk_cache_option = click.option(
    "--trunk-cache",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of the cached trunk maps (default: ~/.cache/ferzoo/trunks).",
)


def _split_classes(ctx, param, value):
    if value is None:
        return None
    names = [name.strip() for name in value.split(",")]
    if not all(names) or len(set(names)) != len(names):
        raise click.BadParameter(
            f"expected distinct comma-separated class names; got {value!r}"
        )
    return names


classes_option = click.option(
    "--classes",
    default=None,
    metavar="NAME,NAME,...",
    callback=_split_classes,
    help=(
        "Class order of imagefolder or rafdb data, the same for every "
        "split (default: the train split's class folders, sorted; "
        "RAF-DB's own order). A val/test class folder not listed is an error."
    ),
)
backend_option = click.option(
    "--backend",
    type=click.Choice(["tensorflow", "jax"]),
    envvar="KERAS_BACKEND",
    default=None,
    help="Keras backend (also read from KERAS_BACKEND).",
)
allow_untrained_option = click.option(
    "--allow-untrained",
    is_flag=True,
    help="Accept a preset without trained weights (model.weights.h5); "
    "without this flag that is an error (exit 3), as its outputs are random.",
)
eval_batch_size_option = click.option(
    "--batch-size", default=64, show_default=True, help="Batch size."
)
report_dir_option = click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Also write report.json and the confusion matrix PNG here.",
)
fail_on_bad_images_option = click.option(
    "--fail-on-bad-images",
    is_flag=True,
    help="Stop at the first unreadable image instead of listing it in "
    "skipped.csv.",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print only the results JSON."
)
verbose_option = click.option(
    "-v", "--verbose", count=True, help="More output (repeatable)."
)
on_error_option = click.option(
    "--skip-bad-samples",
    is_flag=True,
    help="Skip unreadable or mislabelled samples and count them, "
    "instead of stopping at the first.",
)


def set_backend(backend):
    """Select the Keras backend; must run before keras is imported."""
    if backend:
        if "keras" in sys.modules:
            import keras

            if keras.backend.backend() != backend:
                raise click.UsageError(
                    f"--backend {backend} given, but keras already runs "
                    f"on {keras.backend.backend()}."
                )
        os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def handle_errors(fn=None, *, interrupted="interrupted"):
    """Turn ferzoo's own errors into clean exit codes.

    Use as `@handle_errors` or `@handle_errors(interrupted="...")`: the
    message printed on Ctrl-C, before exiting with code 130.
    """
    if fn is None:
        return functools.partial(handle_errors, interrupted=interrupted)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ferzoo.errors import DataError
        from ferzoo.errors import DivergedError
        from ferzoo.errors import OutputFolderError
        from ferzoo.errors import PresetError
        from ferzoo.errors import RunMismatchError
        from ferzoo.errors import UsageError

        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            click.echo(f"\n{interrupted}", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except (DataError, PresetError, FileNotFoundError) as e:
            raise DataOrPresetError(str(e)) from e
        except DivergedError as e:
            raise DivergedClickError(str(e)) from e
        except RunMismatchError as e:
            raise RunMismatchClickError(str(e)) from e
        except (OutputFolderError, UsageError) as e:
            raise UsageClickError(str(e)) from e

    return wrapper


def emit(results, as_json, text):
    """Print results as JSON (`--json`) or as a human summary."""
    if as_json:
        click.echo(json.dumps(results, indent=2, default=str))
    else:
        click.echo(text)
