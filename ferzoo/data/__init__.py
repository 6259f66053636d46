"""Data loading, label noise and augmentation (tf.data; any backend)."""

from ferzoo.data.augment import RECIPE_KEYS
from ferzoo.data.augment import Augmenter
from ferzoo.data.augment import augment_images
from ferzoo.data.datasets import SplitData
from ferzoo.data.datasets import TrainingData
from ferzoo.data.datasets import TrainingSplits
from ferzoo.data.datasets import load_split
from ferzoo.data.datasets import load_training_splits
from ferzoo.data.datasets import read_data
from ferzoo.data.datasets import read_training_data
from ferzoo.data.datasets import training_splits
from ferzoo.data.ferplus import AFFECTNET_CLASS_NAMES
from ferzoo.data.ferplus import FERPLUS_CLASS_NAMES
from ferzoo.data.ferplus import read_affectnet
from ferzoo.data.ferplus import read_ferplus
from ferzoo.data.info import DatasetInfo
from ferzoo.data.noise import RAFDB_CLASS_NAMES
from ferzoo.data.noise import NoiseResult
from ferzoo.data.noise import pair_noise
from ferzoo.data.noise import read_noise_file
from ferzoo.data.noise import symmetric_noise
from ferzoo.data.noise import write_noise_file
from ferzoo.data.pipeline import Batching
from ferzoo.data.pipeline import make_dataset
from ferzoo.data.readers import FER2013_CLASS_NAMES
from ferzoo.data.readers import read_fer2013_csv
from ferzoo.data.readers import read_image_folder
from ferzoo.data.readers import read_rafdb
from ferzoo.data.records import MissingSplitError
from ferzoo.data.records import Records
from ferzoo.data.sources import DATA_KINDS
from ferzoo.data.sources import parse_data_spec
from ferzoo.data.sources import read_split
from ferzoo.data.spec import DataSpec
from ferzoo.data.spec import NoiseSpec
from ferzoo.data.splits import carve_val_split
from ferzoo.data.synthetic import SYNTHETIC_CLASS_NAMES
from ferzoo.data.synthetic import make_synthetic_faces

__all__ = [
    "AFFECTNET_CLASS_NAMES",
    "Augmenter",
    "Batching",
    "DATA_KINDS",
    "DataSpec",
    "DatasetInfo",
    "FER2013_CLASS_NAMES",
    "FERPLUS_CLASS_NAMES",
    "MissingSplitError",
    "NoiseResult",
    "NoiseSpec",
    "RAFDB_CLASS_NAMES",
    "RECIPE_KEYS",
    "Records",
    "SYNTHETIC_CLASS_NAMES",
    "SplitData",
    "TrainingData",
    "TrainingSplits",
    "augment_images",
    "carve_val_split",
    "load_split",
    "load_training_splits",
    "make_dataset",
    "make_synthetic_faces",
    "pair_noise",
    "parse_data_spec",
    "read_affectnet",
    "read_data",
    "read_fer2013_csv",
    "read_ferplus",
    "read_image_folder",
    "read_noise_file",
    "read_rafdb",
    "read_split",
    "read_training_data",
    "symmetric_noise",
    "training_splits",
    "write_noise_file",
]
