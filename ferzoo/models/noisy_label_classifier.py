import keras
from keras import ops

from ferzoo import presets as preset_utils
from ferzoo.callbacks import EpochCounter
from ferzoo.layers.sample_table import SampleTable
from ferzoo.losses import given_probability
from ferzoo.losses import weighted_mean
from ferzoo.models import preset_loading
from ferzoo.models.arguments import check_args
from ferzoo.models.arguments import infer_num_samples
from ferzoo.models.class_balance import ClassBalance
from ferzoo.models.inference import Inference
from ferzoo.optimizers import make_optimizer

DEFAULT_RECIPE = {
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
    "lr_decay": 0.9,
    "epochs": 30,
    "batch_size": 64,
    "image_size": 48,
    "augment": {"flip": True, "crop_padding": 4},
}


@keras.saving.register_keras_serializable(package="ferzoo")
class NoisyLabelClassifier(Inference, keras.Model):
    """Base class of ferzoo methods: a backbone, a head and its own loss.

    Batches are `({"images": ..., "sample_ids": ...}, labels)`. `call`
    returns a dict with `"logits"` and the method's extras; `predict`
    returns class probabilities. `compute_loss` (called by the train step
    of every backend) holds the method's whole loss, logs each term as a
    `loss_<term>` metric, and reads and writes per-sample tables only
    when training: the `sample_ids` of validation and test batches index
    their own split, so evaluation never touches the tables.
    Per-sample tables need `num_samples`; when it is `None`, `fit` infers
    it from the data before training.

    Args:
        backbone: `ferzoo.backbones.Backbone`. The feature extractor.
        num_classes: int. Number of expression classes. Defaults to `7`.
        num_samples: int or None. Number of training samples (rows of the
            per-sample tables). Defaults to `None` (inferred in `fit`).
        warmup_epochs: int. The epoch, counted from 1, from which a
            method acts on its per-sample state (relabeling, reweighting),
            as SCN's official loop counts its `relabel_epoch`: `10` gives
            9 warm-up epochs and acts from the 10th; `0` and `1` act from
            the first epoch. Defaults to `0`.
        dropout: float. Dropout rate before the classifier. Defaults to
            `0.0`.
        freeze_until: str or None. Freeze the backbone from its input up
            to and including this block (`ferzoo.trunk.block_names`,
            e.g. dlib's `"conv256_1"`); the model then also accepts the
            frozen trunk's cached maps where it takes images (see
            `ferzoo.trunk`). Defaults to `None` (nothing frozen).
        class_balance: str or None. `"logit_adjusted"` or `"reweighted"`:
            the Baseline's cross-entropy accounts for the class imbalance
            of `class_counts` (`ferzoo.models.class_balance`; the methods
            with their own loss refuse it). Defaults to `None`.
        class_counts: list of int or None. Training samples per class
            (`ferzoo-train` fills it from the training labels); read only
            with `class_balance`.
        class_balance_strength: float or None. `tau` of the logit
            adjustment or `beta` of the reweighting; None: 1.0 / 0.9999.
    """

    # Names of the loss terms logged as `loss_<term>`.
    loss_terms = ("ce",)
    # What `clean_scores()` holds (higher means more likely clean).
    score_name = "probability of the given label"
    # Whether that score depends on the sample's (given) label. A score
    # that is a function of the image alone can only flag a flipped label
    # by memorising the image.
    score_uses_label = True
    # Whether `relabels()` changes the labels the loss trains on (SCN,
    # AFCN) or only reports where the prediction differs (DWMCA).
    relabels_train = True
    # Training recipe when `from_preset` gives none.
    default_recipe = DEFAULT_RECIPE
    # Initializer of the classifier's kernel (Keras' default; AFCN zeros).
    classifier_initializer = "glorot_uniform"
    # The method's own arguments, kept as same-named attributes and
    # written by `get_config` in this order after the common ones.
    config_args = ()

    def __init__(
        self,
        backbone,
        num_classes=7,
        num_samples=None,
        warmup_epochs=0,
        dropout=0.0,
        freeze_until=None,
        class_balance=None,
        class_counts=None,
        class_balance_strength=None,
        **kwargs,
    ):
        check_args(backbone, num_classes, num_samples, warmup_epochs, dropout)
        super().__init__(**kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.num_samples = num_samples
        self.warmup_epochs = int(warmup_epochs)
        self.dropout = float(dropout)
        self.recipe = dict(self.default_recipe)
        self.balance = None
        if class_balance is not None:
            self.set_class_balance(
                class_balance, class_counts, class_balance_strength
            )

        # === Layers ===
        self.backbone = backbone
        self.freeze_until = freeze_until
        self.trunk_split = None
        if freeze_until is not None:
            from ferzoo.trunk import freeze

            self.trunk_split = freeze(self, freeze_until)
        self.pool = keras.layers.GlobalAveragePooling2D(
            dtype=backbone.dtype_policy, name="pool"
        )
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=backbone.dtype_policy, name="dropout"
        )
        self.classifier = keras.layers.Dense(
            num_classes,
            kernel_initializer=self.classifier_initializer,
            dtype=backbone.dtype_policy,
            name="classifier",
        )

        # === State ===
        self.epoch = self.add_weight(
            name="epoch",
            shape=(),
            dtype="int32",
            initializer="zeros",
            trainable=False,
        )
        self.loss_trackers = [
            keras.metrics.Mean(name=f"loss_{term}") for term in self.loss_terms
        ]
        self.score_table = None
        if num_samples is not None:
            self.build_tables(num_samples)
        self.create_layers(backbone)
        self.build_model()

    # --- Construction helpers ----------------------------------------
    def set_class_balance(self, kind, counts, strength=None):
        """Account for the class imbalance of `counts` in the loss (before
        the first training step; see `ferzoo.models.class_balance`)."""
        own_loss = type(self).compute_loss is not (
            NoisyLabelClassifier.compute_loss
        )
        if own_loss:
            raise ValueError(
                f"`class_balance` acts on the Baseline's cross-entropy; "
                f"{type(self).__name__} has its own loss and does not take "
                f"it. Received: class_balance={kind!r}"
            )
        if counts is not None and len(counts) != self.num_classes:
            raise ValueError(
                f"`class_counts` needs one count per class ({self.num_classes}"
                f"). Received: class_counts={list(counts)}"
            )
        self.balance = ClassBalance(kind, counts, strength)

    def create_layers(self, backbone):
        """Create the method's own layers and state (subclasses).

        Called at the end of `__init__`, after the shared head (`pool`,
        `dropout_layer`, `classifier`), the `epoch` counter and the
        per-sample tables, and before `build_model`. The subclass keeps
        its arguments before calling `super().__init__`, so they are set.
        """

    def build_tables(self, num_samples):
        """Create the per-sample tables. Subclasses add theirs."""
        self.num_samples = int(num_samples)
        self.score_table = SampleTable(
            self.num_samples, fill_value=float("nan"), name="score_table"
        )

    def build_model(self):
        """Create every weight now, by one symbolic forward pass.

        `__init__` calls it last, so a model is complete as soon as it
        exists (needed by `load_model` and `from_preset`).
        """
        height, width = self.backbone.input_shape[1:3]
        images = keras.KerasTensor((2, height or 64, width or 64, 3))
        ids = keras.KerasTensor((2,), dtype="int32")
        self({"images": images, "sample_ids": ids}, training=True)
        self.built = True

    @property
    def image_shape(self):
        return tuple(self.backbone.input_shape[1:])

    # --- Forward -----------------------------------------------------
    def unpack_inputs(self, inputs):
        """`(images, sample_ids or None)` from a dict or bare images.

        A dict of cached trunk maps (`features`, see `ferzoo.trunk`)
        gives its maps in place of the images.
        """
        if isinstance(inputs, dict):
            if "features" in inputs and self.trunk_split is not None:
                return inputs["features"], inputs.get("sample_ids")
            if "images" not in inputs:
                raise ValueError(
                    "Inputs must be images or a dict with an `images` key. "
                    f"Received keys: {sorted(inputs)}"
                )
            return inputs["images"], inputs.get("sample_ids")
        return inputs, None

    def backbone_map(self, images, training=False):
        """The backbone's output map of images, or of cached trunk maps.

        With `freeze_until`, a batch shaped like the trunk's map (a
        `features` batch of `ferzoo.trunk.map_batches`) runs through the
        tail only; images run through the whole backbone.
        """
        split = self.trunk_split
        compute = self.backbone.compute_dtype
        if split is not None and split.is_map(images):
            return split.tail(ops.cast(images, compute), training=training)
        # A frozen trunk computes in float32 (`ferzoo.trunk.freeze`), so
        # its maps from pixels are the cached ones under any policy.
        dtype = compute if split is None else "float32"
        return self.backbone(ops.cast(images, dtype), training=training)

    def trunk_outputs(self, images):
        """What a cached trunk stores for a batch of images (a dict).

        `"features"`: the frozen trunk's map. A method that reads more
        frozen tensors adds them (DWMCA: its earlier scales and its
        landmark maps); each arrives in cached batches as `extra_<name>`.
        """
        return {"features": self.trunk_split.trunk(images, training=False)}

    def trunk_weights(self):
        """The frozen weights the cached maps depend on (the cache key)."""
        return list(self.trunk_split.trunk.weights)

    def extract(self, images, training=False):
        """Backbone feature map and its pooled vector."""
        features = self.backbone_map(images, training=training)
        return features, self.pool(features)

    def classify(self, pooled, training=False):
        x = self.dropout_layer(pooled, training=training)
        return ops.cast(self.classifier(x), "float32")

    def call(self, inputs, training=False):
        images, _ = self.unpack_inputs(inputs)
        _, pooled = self.extract(images, training=training)
        return {"logits": self.classify(pooled, training=training)}

    # --- Loss helpers ------------------------------------------------
    def sample_ids(self, x, training=True):
        """The batch's `sample_ids`; a training batch of a model with
        per-sample tables must have them."""
        _, ids = self.unpack_inputs(x)
        needed = training and self.score_table is not None
        if ids is None and needed:
            raise ValueError(
                f"{type(self).__name__} keeps per-sample tables, so training "
                'batches must be `({"images": ..., "sample_ids": ...}, '
                "labels)`; this batch has no `sample_ids`."
            )
        return None if ids is None else ops.cast(ids, "int32")

    def track(self, **terms):
        """Log each loss term in its `loss_<term>` metric."""
        trackers = {m.name: m for m in self.loss_trackers}
        for term, value in terms.items():
            trackers[f"loss_{term}"].update_state(value)

    def record_scores(self, sample_ids, scores, training):
        """Store per-sample clean scores (training batches only)."""
        if training and self.score_table is not None and sample_ids is not None:
            self.score_table.update(sample_ids, ops.stop_gradient(scores))

    def with_regularization(self, total):
        """Add layer regularization losses (`self.losses`) to `total`."""
        if self.losses:
            total = total + ops.sum(ops.stack(self.losses))
        return total

    def after_warmup(self):
        """A boolean tensor: the current epoch acts (see `acts_in`)."""
        return ops.greater_equal(self.epoch + 1, self.warmup_epochs)

    def acts_in(self, epoch):
        """Whether the 0-based `epoch` is past the warm-up.

        The `epoch` variable counts from 0 (Keras' numbering); the method
        acts from epoch number `warmup_epochs` counted from 1, i.e. from
        0-based epoch `warmup_epochs - 1`.
        """
        return epoch + 1 >= self.warmup_epochs

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """Cross-entropy on the given labels (the Baseline's loss)."""
        ids = self.sample_ids(x, training)
        labels = ops.cast(y, "int32")
        logits = y_pred["logits"]
        balance = self.balance
        ce = keras.losses.sparse_categorical_crossentropy(
            labels,
            logits if balance is None else balance.loss_logits(logits),
            from_logits=True,
        )
        class_weights = (
            None if balance is None else balance.sample_weights(labels)
        )
        if class_weights is not None:
            ce = ce * class_weights
        ce = weighted_mean(ce, sample_weight)
        self.track(ce=ce)
        probs = ops.softmax(logits)
        self.record_scores(ids, given_probability(probs, labels), training)
        return self.with_regularization(ce)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if isinstance(y_pred, dict):
            y_pred = y_pred["logits"]
        return super().compute_metrics(x, y, y_pred, sample_weight)

    # --- Training API ------------------------------------------------
    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Configure training; `"auto"` uses the preset's recipe.

        Args:
            optimizer: `"auto"` or a `keras.optimizers.Optimizer`. `"auto"`
                builds the recipe's optimizer (Adam by default) and an
                exponential per-epoch learning-rate decay. Defaults to
                `"auto"`.
            loss: must stay `"auto"`: the method owns its loss.
            metrics: `"auto"` (accuracy) or a list of metrics.
            **kwargs: passed to `keras.Model.compile`.
        """
        if loss not in ("auto", None):
            raise ValueError(
                f"{type(self).__name__} computes its own loss in "
                "`compute_loss`; `compile()` takes no `loss`. "
                f"Received: loss={loss!r}"
            )
        self.lr_schedule_callback = None
        self.auto_optimizer = optimizer == "auto"
        if optimizer == "auto":
            optimizer, self.lr_schedule_callback = make_optimizer(self.recipe)
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy("accuracy")]
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)

    def get_compile_config(self):
        if not self.compiled:
            return None
        optimizer = "auto"
        if not getattr(self, "auto_optimizer", False):
            optimizer = keras.optimizers.serialize(self.optimizer)
        return {"optimizer": optimizer, "recipe": self.recipe}

    def compile_from_config(self, config):
        self.recipe = {**self.default_recipe, **config.get("recipe", {})}
        optimizer = config.get("optimizer", "auto")
        if isinstance(optimizer, dict):
            optimizer = keras.optimizers.deserialize(optimizer)
        self.compile(optimizer=optimizer)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def default_callbacks(self):
        """Callbacks that `fit` adds to the user's."""
        callbacks = [EpochCounter()]
        if getattr(self, "lr_schedule_callback", None) is not None:
            callbacks.append(self.lr_schedule_callback)
        return callbacks

    def fit(self, x=None, y=None, *args, callbacks=None, **kwargs):
        if self.needs_tables() and self.num_samples is None:
            # Size the tables from the data: the model is already built,
            # so Keras' state lock is lifted just for this.
            self._tracker.unlock()
            try:
                self.build_tables(infer_num_samples(x))
            finally:
                self._tracker.lock()
        if not self.compiled:
            self.compile()
        # The model's own callbacks run first, so the user's see their logs.
        callbacks = list(callbacks or [])
        present = {type(c) for c in callbacks}
        callbacks = [
            c for c in self.default_callbacks() if type(c) not in present
        ] + callbacks
        return super().fit(x, y, *args, callbacks=callbacks, **kwargs)

    def needs_tables(self):
        return True

    # --- Per-sample state --------------------------------------------
    def clean_scores(self):
        """Per-sample clean score from the last epoch (NaN if unseen)."""
        if self.score_table is None:
            return None
        return self.score_table.numpy()

    def relabels(self):
        """Per-sample corrected labels (-1 where kept), or None."""
        table = getattr(self, "label_table", None)
        return None if table is None else table.numpy()

    # --- Config and presets ------------------------------------------
    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
            "num_classes": self.num_classes,
            "num_samples": self.num_samples,
            "warmup_epochs": self.warmup_epochs,
            "dropout": self.dropout,
            # Only when set: presets and their config.json stay as they were.
            **(
                {"freeze_until": self.freeze_until}
                if self.freeze_until is not None
                else {}
            ),
            **{arg: getattr(self, arg) for arg in self.config_args},
            **(
                {
                    "class_balance": self.balance.kind,
                    "class_counts": self.balance.counts,
                    "class_balance_strength": self.balance.strength,
                }
                if self.balance is not None
                else {}
            ),
            **self.inference_config(),  # test_time_flip, only when on
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("backbone"), dict):
            config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)

    @classmethod
    def presets(cls):
        """Built-in presets of this method, `{name: metadata}`."""
        return preset_utils.list_presets(model_cls=cls)

    @classmethod
    def from_preset(cls, preset, load_weights=None, **kwargs):
        """Build a model from a built-in preset name or a local folder.

        `kwargs` override the preset's config (`num_classes`,
        `num_samples`, method arguments, and the backbone's
        `image_shape`). A new `num_classes` or `num_samples` keeps the
        preset's backbone weights and starts a fresh head and tables.

        Args:
            preset: str. A name from `cls.presets()` or a preset folder
                (a training output folder is one).
            load_weights: bool or None. `None` loads `model.weights.h5`
                if the preset has it, `True` requires it, `False` skips.
                Defaults to `None`.
            **kwargs: config overrides.
        """
        model = preset_loading.load_model(cls, preset, load_weights, kwargs)
        recipe = preset_utils.load_metadata(preset).get("recipe")
        if recipe:
            model.recipe = {**model.default_recipe, **recipe}
        return model

    def save_to_preset(self, preset_dir, metadata=None):
        """Write this model as a preset folder (config, metadata, weights)."""
        metadata = {"recipe": self.recipe, **(metadata or {})}
        preset_utils.save_to_preset(self, preset_dir, metadata)
