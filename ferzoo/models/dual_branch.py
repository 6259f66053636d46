import keras
from keras import ops

from ferzoo import losses
from ferzoo.layers.average_expression_anchoring import (
    AverageExpressionAnchoring,
)
from ferzoo.layers.sample_table import SampleTable
from ferzoo.losses import given_probability
from ferzoo.losses import weighted_mean
from ferzoo.mixture import epoch_end_state
from ferzoo.mixture import threshold_distribution
from ferzoo.models.noisy_label_classifier import NoisyLabelClassifier

SCHEDULES = ("paper", "ada_df")
FUSED_TARGETS = ("ada_df", "reversed")


@keras.saving.register_keras_serializable(package="ferzoo")
class DualBranch(NoisyLabelClassifier):
    """Dual-branch FER: AEA, beta-mixture clean probability, distributions.

    A shared backbone feeds an auxiliary and a target branch (conv block,
    pooling, Average Expression Anchoring, classifier). The auxiliary
    branch gives each sample's label distribution and learns by CE weighted
    by the clean probability w; the target branch (the prediction) learns
    by KL divergence to `w * class_dist[label] + (1 - w) * label_dist`
    (Ada-DF's direction: a sample the mixture calls clean is pulled to
    its label's class distribution, a noisy one to its own prediction).
    `compute_loss` writes each sample's cosine similarity of the auxiliary
    prediction and its label, the prediction and the label into tables;
    at the epoch's end a callback fits a two-component beta mixture (EM,
    `ferzoo.mixture`) to all similarities, writes the posteriors into
    `clean_table` (read by the next epoch; also the clean score) and mines
    the class distributions.

    Multi-device: tables are replicated variables written by a scatter in
    the train step. Under JAX `keras.distribution.DataParallel` the step
    is one program over the global batch, so every row is written (checked
    on 2 host devices: same tables as one device). Under a TF
    `MirroredStrategy`, `SampleTable.update` gathers every replica's rows
    before writing, so the table is complete there too.

    Args:
        backbone: `ferzoo.backbones.Backbone`. The shared feature extractor.
        num_classes: int. Number of classes. Defaults to `7`.
        num_samples: int or None. Training samples (table rows). Defaults
            to `None` (inferred in `fit`).
        warmup_epochs: int. The epoch (from 1) whose loss first uses
            the BMM clean probability and mined class distributions; they
            are fitted at the end of the epoch before it (w is 1 and the
            class distributions the threshold ones until then). Defaults
            to `0` (fitted after every epoch).
        dropout: float. Dropout before both classifiers. Defaults to `0.0`.
        threshold: float. Class-distribution threshold t. Defaults to
            `0.7`.
        ramp_epochs: int. beta of the mu1/mu2 schedules. Defaults to `3`.
        schedule: str. `"paper"`: the ramp-up of mu2 is
            `exp(-(1 - beta / e) ** 2)`; `"ada_df"`: `exp(-(1 - e / beta)
            ** 2)` (Ada-DF's code). Defaults to `"paper"`.
        fused_target: str. `"ada_df"`: `w * class_dist[y] + (1 - w) *
            label_dist` (Ada-DF's direction); `"reversed"`: `w *
            label_dist + (1 - w) * class_dist[y]` (ferzoo's earlier
            target, better in a short synthetic run, see
            `docs/methods/dual_branch.md`). Defaults to `"ada_df"`.
        branch_filters: int or None. Filters of each branch's 3x3 conv
            block; `None` uses the backbone's width, `0` gives no block.
            Defaults to `None`.
        anchor_momentum: float. Momentum of AEA's moving batch mean, used
            at inference. Defaults to `0.99`.
        min_weight: float. Floor of the clean weight in the fused target:
            Eq. 9 uses `min_weight + (1 - min_weight) * w`, as Ada-DF
            rescales its weights into `[min_weight, 1]` (its
            `--min_weight 0.2`); `0` uses the BMM posterior as it is.
            The CE of Eq. 10 keeps the posterior w. Defaults to `0.2`.

    Paper mapping:
        Eq. 1-2 AEA -> `AverageExpressionAnchoring` (alpha per channel).
        Eq. 3 S = cos(softmax(aux), onehot(y)); Eq. 4-6 BMM posterior w ->
        `ferzoo.mixture.BetaMixture`, `clean_table`. Eq. 7-8 class
        distributions -> `threshold` (t). Eq. 9 fused target. Eq. 10
        L1 = w * CE; Eq. 11 L = mu1 L1 + mu2 KLD; Eq. 12-13 ->
        `ramp_epochs` (beta), `schedule`; e is the 1-based epoch.
        Eq. 9 direction -> `fused_target`; Ada-DF's weight floor ->
        `min_weight`.

    Example:
    >>> model = ferzoo.models.DualBranch.from_preset(
    ...     "dual_branch_small_cnn_synthetic", num_samples=8)
    >>> [round(float(mu), 4) for mu in model.loss_weights()]  # epoch 1
    [1.0, 0.0183]
    >>> model.clean_table.numpy()[:3]  # w = 1 until the first mixture fit
    array([1., 1., 1.], dtype=float32)

    Reference:
        Liu, "A Dual-Branch Facial Expression Recognition Network with
        Noisy Label Learning and Identity Invariance", 2025.
    """

    loss_terms = ("ce", "kld")
    config_args = (
        "threshold",
        "ramp_epochs",
        "schedule",
        "fused_target",
        "branch_filters",
        "anchor_momentum",
        "min_weight",
    )
    warmup_tables = ("clean_table",)
    score_name = "BMM clean probability"

    def __init__(
        self,
        backbone,
        warmup_epochs=0,
        threshold=0.7,
        ramp_epochs=3,
        schedule="paper",
        fused_target="ada_df",
        branch_filters=None,
        anchor_momentum=0.99,
        min_weight=0.2,
        **kwargs,
    ):
        for arg, value, valid, what in (
            ("threshold", threshold, 0 < threshold <= 1, "in (0, 1]"),
            (
                "ramp_epochs",
                ramp_epochs,
                isinstance(ramp_epochs, int) and ramp_epochs >= 1,
                "a positive int",
            ),
            ("schedule", schedule, schedule in SCHEDULES, f"in {SCHEDULES}"),
            (
                "fused_target",
                fused_target,
                fused_target in FUSED_TARGETS,
                f"in {FUSED_TARGETS}",
            ),
            ("min_weight", min_weight, 0 <= min_weight <= 1, "in [0, 1]"),
            (
                "branch_filters",
                branch_filters,
                branch_filters is None or branch_filters >= 0,
                ">= 0 or None",
            ),
        ):
            if not valid:
                raise ValueError(
                    f"`{arg}` must be {what}. Received: {arg}={value!r}"
                )
        # === Config ===
        self.threshold = float(threshold)
        self.ramp_epochs = ramp_epochs
        self.schedule = schedule
        self.fused_target = fused_target
        self.branch_filters = branch_filters
        self.anchor_momentum = float(anchor_momentum)
        self.min_weight = float(min_weight)
        super().__init__(backbone, warmup_epochs=warmup_epochs, **kwargs)

    def create_layers(self, backbone):
        # === Layers ===
        filters = self.branch_filters
        filters = backbone.num_features if filters is None else filters
        dtype = backbone.dtype_policy
        for part in ("aux", "target"):
            block = []
            if filters:
                block = [
                    keras.layers.Conv2D(
                        filters,
                        3,
                        padding="same",
                        use_bias=False,
                        dtype=dtype,
                        name=f"{part}_conv",
                    ),
                    keras.layers.BatchNormalization(
                        dtype=dtype, name=f"{part}_bn"
                    ),
                    keras.layers.ReLU(dtype=dtype, name=f"{part}_relu"),
                ]
            setattr(self, f"{part}_block", block)
            setattr(
                self,
                f"{part}_anchor",
                AverageExpressionAnchoring(
                    self.anchor_momentum, dtype=dtype, name=f"{part}_anchor"
                ),
            )
        self.aux_classifier = keras.layers.Dense(
            self.num_classes, dtype=dtype, name="aux_classifier"
        )
        # === State ===
        self.class_distribution = self.add_weight(
            name="class_distribution",
            shape=(self.num_classes, self.num_classes),
            initializer=lambda shape, dtype=None: ops.convert_to_tensor(
                threshold_distribution(self.num_classes, self.threshold),
                dtype=dtype,
            ),
            trainable=False,
        )

    def build_tables(self, num_samples):
        super().build_tables(num_samples)
        # === State ===
        n, c = self.num_samples, self.num_classes
        nan = float("nan")
        self.similarity_table = SampleTable(
            n, fill_value=nan, name="similarity_table"
        )
        self.distribution_table = SampleTable(
            n, row_shape=(c,), fill_value=nan, name="distribution_table"
        )
        self.given_label_table = SampleTable(
            n, fill_value=-1, table_dtype="int32", name="given_label_table"
        )
        self.clean_table = SampleTable(n, fill_value=1.0, name="clean_table")

    def branch(self, part, features, training):
        anchor = getattr(self, f"{part}_anchor")
        for layer in getattr(self, f"{part}_block"):
            features = layer(features, training=training)
        pooled = anchor(self.pool(features), training=training)
        return self.dropout_layer(pooled, training=training)

    def call(self, inputs, training=False):
        images, _ = self.unpack_inputs(inputs)
        features = self.backbone_map(images, training=training)
        aux = self.aux_classifier(self.branch("aux", features, training))
        target = self.classifier(self.branch("target", features, training))
        return {
            "logits": ops.cast(target, "float32"),
            "aux_logits": ops.cast(aux, "float32"),
        }

    def class_maps(self, images):
        """None: each branch adds a block and AEA before its classifier."""
        return None

    def loss_weights(self):
        """`(mu1, mu2)` of Eq. 12-13 at the current (1-based) epoch."""
        e = ops.cast(self.epoch, "float32") + 1.0
        beta = float(self.ramp_epochs)
        decay = ops.exp(-ops.square(1.0 - beta / e))
        if self.schedule == "paper":
            rise = decay
        else:
            rise = ops.exp(-ops.square(1.0 - e / beta))
        early = e < beta
        return ops.where(early, 1.0, decay), ops.where(early, rise, 1.0)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        ids = self.sample_ids(x, training)
        labels = ops.cast(y, "int32")
        aux_logits = y_pred["aux_logits"]
        label_dist = ops.softmax(aux_logits)
        # Eq. 3: cosine similarity of the label distribution and the label.
        similarity = given_probability(label_dist, labels) / ops.maximum(
            ops.norm(label_dist, axis=1), 1e-12
        )
        # Eq. 6: clean probability w from the last epoch's BMM fit
        # (training batches only; evaluation weighs every sample by 1).
        w = ops.ones_like(similarity)
        if training and ids is not None:
            w = ops.where(self.after_warmup(), self.clean_table.gather(ids), w)
        # Eq. 7-9: fused target of the target branch, as Ada-DF: the class
        # distribution of the label where clean, the own prediction where
        # noisy; w rescaled into [min_weight, 1] as Ada-DF's weights.
        w_target = self.min_weight + (1.0 - self.min_weight) * w
        class_dist = ops.take(self.class_distribution, labels, axis=0)
        clean_part, noisy_part = class_dist, label_dist
        if self.fused_target == "reversed":
            clean_part, noisy_part = label_dist, class_dist
        fused = ops.stop_gradient(
            w_target[:, None] * clean_part
            + (1.0 - w_target[:, None]) * noisy_part
        )
        # Eq. 10: auxiliary CE weighted by w.
        ce = weighted_mean(
            w * losses.sparse_cross_entropy(labels, aux_logits), sample_weight
        )
        # Eq. 11: KL divergence of the target branch to the fused target.
        log_probs = ops.log_softmax(y_pred["logits"], axis=-1)
        kld = ops.sum(
            ops.where(fused > 0, fused * ops.log(fused), 0.0)
            - fused * log_probs,
            axis=1,
        )
        kld = weighted_mean(kld, sample_weight)
        mu1, mu2 = self.loss_weights()
        total = mu1 * ce + mu2 * kld
        self.track(ce=ce, kld=kld)
        if training and ids is not None:
            self.similarity_table.update(ids, ops.stop_gradient(similarity))
            self.distribution_table.update(ids, ops.stop_gradient(label_dist))
            self.given_label_table.update(ids, labels)
        self.record_scores(ids, w, training)
        return self.with_regularization(total)

    def end_epoch(self, epoch):
        """Fit the BMM and mine class distributions (host side, NumPy)."""
        # Fit for the next epoch only if that epoch acts.
        if not self.acts_in(epoch + 1) or self.score_table is None:
            return
        state = epoch_end_state(
            self.similarity_table.numpy(),
            self.given_label_table.numpy(),
            self.distribution_table.numpy(),
            self.clean_table.numpy(),
            self.threshold,
        )
        if state is not None:
            clean, scores, class_distribution = state
            self.clean_table.table.assign(clean)
            self.score_table.table.assign(scores)
            self.class_distribution.assign(class_distribution)

    def default_callbacks(self):
        return super().default_callbacks() + [DualBranchEpochEnd()]


class DualBranchEpochEnd(keras.callbacks.Callback):
    """Run `DualBranch.end_epoch` after each epoch (variables are synced)."""

    def on_epoch_end(self, epoch, logs=None):
        self.model.end_epoch(epoch)
