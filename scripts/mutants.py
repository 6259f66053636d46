"""Semantic mutants: does each one make the non-large tests fail?

Each mutant changes one equation of ferzoo in a temporary copy of the
repository (`ferzoo/` and `tests/`), by an exact string replacement that
must match exactly once in the named file, then runs the non-large tests
of the files that should catch it there (`PYTHONPATH` pointing at the
copy, `-x`: the first failure is enough; the quick tests first, the
several-epoch fits only if the quick ones all pass). A mutant is *killed*
when pytest fails, *survived* when it passes. Equivalent mutants (a
change no test can observe, e.g. a stop-gradient on a value that is only
written to a table) are not listed.

Usage:
    python scripts/mutants.py                  # every mutant, jax
    python scripts/mutants.py --list
    python scripts/mutants.py scn_wce_weight_zero dacfer_cam_kernel_grad
    python scripts/mutants.py --backend tensorflow --baseline

`--baseline` first runs the union of the test files unmutated (they must
pass). Prints one line per mutant and a summary table; the exit status is
1 when a mutant survived or a patch did not apply.
"""

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

REPO = pathlib.Path(__file__).resolve().parent.parent

Mutant = namedtuple("Mutant", "name path old new tests what")

SCN = "ferzoo/models/scn.py"
AFCN = "ferzoo/models/afcn.py"
DACFER = "ferzoo/models/dacfer.py"
DWMCA = "ferzoo/models/dwmca.py"
DUAL = "ferzoo/models/dual_branch.py"
BASE = "ferzoo/models/noisy_label_classifier.py"
RELABEL = "ferzoo/models/relabeling.py"
LOSSES = "ferzoo/losses.py"
CAM = "ferzoo/layers/cam.py"
APCL = "ferzoo/layers/apcl.py"
MIXTURE = "ferzoo/mixture.py"
FLIP = "ferzoo/models/flip_attention.py"
OPTIM = "ferzoo/optimizers.py"
BALANCE = "ferzoo/models/class_balance.py"

T_SCN = (
    "tests/models/scn_test.py",
    "tests/losses_test.py",
    "tests/models/relabeling_test.py",
    "tests/models/scn_official_test.py",
)
T_AFCN = (
    "tests/models/afcn_test.py",
    "tests/models/relabeling_test.py",
    "tests/models/flip_attention_test.py",
    "tests/models/afcn_reference_test.py",
)
T_DACFER = (
    "tests/models/dacfer_test.py",
    "tests/models/flip_attention_test.py",
    "tests/models/eac_official_test.py",
)
T_DWMCA = (
    "tests/models/dwmca_test.py",
    "tests/models/dwmca_streams_test.py",
    "tests/layers/apcl_test.py",
    "tests/models/dwmca_reference_test.py",
)
T_DUAL = (
    "tests/models/dual_branch_test.py",
    "tests/models/dual_branch_epoch_test.py",
    "tests/test_mixture.py",
    "tests/models/ada_df_official_test.py",
)
T_BASE = ("tests/models/baseline_test.py",)
T_OPTIM = ("tests/optimizers_test.py",)
T_BALANCE = ("tests/models/class_balance_test.py",)

SCN_TOTAL = "total = self.rank_weight * rank + (1.0 - self.rank_weight) * wce"
AFCN_TOTAL = """            wce
            + self.rank_weight * rank
            + self.consistency_weight * consistency"""
DWMCA_TOTAL = """            self.cls_weight * cls
            + self.anchor_weight * anchor
            + self.center_weight * center"""
AFTER_WARMUP = "ops.greater_equal(self.epoch + 1, self.warmup_epochs)"
FUSED = """        fused = ops.stop_gradient(
            w_target[:, None] * clean_part"""
APCL_CORRECTED = "anchor_dist, sg(c_g), attention_dist, sg(c_a)"
APCL_FINAL = "final = confidence_fusion(primary, sg(c_p), corrected, sg(c_t))"

MUTANTS = [
    # --- SCN -------------------------------------------------------------
    Mutant(
        "scn_wce_weight_zero",
        SCN,
        SCN_TOTAL,
        "total = self.rank_weight * rank + 0.0 * wce",
        T_SCN,
        "gamma RR + 0 WCE: no classification loss",
    ),
    Mutant(
        "scn_sign_wce",
        SCN,
        SCN_TOTAL,
        "total = self.rank_weight * rank - (1.0 - self.rank_weight) * wce",
        T_SCN,
        "minus the WCE",
    ),
    Mutant(
        "scn_sign_rank",
        SCN,
        SCN_TOTAL,
        "total = -self.rank_weight * rank + (1.0 - self.rank_weight) * wce",
        T_SCN,
        "minus the rank loss",
    ),
    Mutant(
        "scn_unweighted_logits",
        SCN,
        'weighted_logits = alpha[:, None] * y_pred["logits"]',
        'weighted_logits = y_pred["logits"]',
        T_SCN,
        "CE on the logits, not alpha * logits",
    ),
    Mutant(
        "scn_relabel_whole_batch",
        SCN,
        "candidates = low_group if self.relabel_low_group_only else None",
        "candidates = None",
        T_SCN,
        "relabel candidates: the whole batch, not the low group",
    ),
    Mutant(
        "scn_warmup_late",
        BASE,
        AFTER_WARMUP,
        "ops.greater(self.epoch + 1, self.warmup_epochs)",
        T_SCN,
        "relabel from epoch warmup_epochs + 1",
    ),
    Mutant(
        "scn_warmup_early",
        BASE,
        AFTER_WARMUP,
        "ops.greater_equal(self.epoch + 2, self.warmup_epochs)",
        T_SCN,
        "relabel from epoch warmup_epochs - 1",
    ),
    Mutant(
        "relabel_margin_ignored",
        LOSSES,
        "ops.logical_and(p_max - p_given > margin,",
        "ops.logical_and(p_max - p_given > 0.0,",
        T_SCN,
        "Eq. 5 without delta2",
    ),
    Mutant(
        "relabel_margin_doubled",
        LOSSES,
        "ops.logical_and(p_max - p_given > margin,",
        "ops.logical_and(p_max - p_given > 2.0 * margin,",
        T_SCN,
        "Eq. 5 with 2 delta2",
    ),
    Mutant(
        "relabel_forgets_earlier",
        RELABEL,
        "ops.where(changed, new_labels, stored)",
        "ops.where(changed, new_labels, -1)",
        T_SCN,
        "a batch's write erases its samples' earlier relabels",
    ),
    Mutant(
        "alpha_sigmoid_in_bfloat16",
        RELABEL,
        'alpha = ops.sigmoid(ops.cast(self.importance(pooled), "float32"))',
        'alpha = ops.cast(ops.sigmoid(self.importance(pooled)), "float32")',
        ("tests/mixed_precision_test.py",),
        "alpha's sigmoid in the compute dtype: bfloat16 steps of 1/256",
    ),
    Mutant(
        "relabel_table_unused",
        RELABEL,
        "return ops.where(stored >= 0, stored, labels)",
        "return labels",
        T_SCN,
        "the loss trains on the given labels, not the relabelled ones",
    ),
    Mutant(
        "relabel_against_given_label",
        SCN,
        "ids, labels, weighted_logits, candidates, training",
        "ids, keras.ops.cast(y, 'int32'), weighted_logits, candidates, "
        "training",
        T_SCN,
        "the margin is measured against the given, not the current label",
    ),
    Mutant(
        "relabel_step_ignores_changed",
        RELABEL,
        "acts = ops.logical_and(changed, acts)",
        "acts = ops.logical_or(changed, acts)",
        T_SCN + T_AFCN,
        "the shared relabel step writes every candidate (and before the "
        "warm-up)",
    ),
    Mutant(
        "rank_hinge_removed",
        LOSSES,
        "loss = ops.maximum(0.0, margin - (mean_high - mean_low))",
        "loss = margin - (mean_high - mean_low)",
        T_SCN,
        "RR without max(0, .)",
    ),
    Mutant(
        "rank_margin_sign",
        LOSSES,
        "loss = ops.maximum(0.0, margin - (mean_high - mean_low))",
        "loss = ops.maximum(0.0, margin + (mean_high - mean_low))",
        T_SCN,
        "RR pushes the groups together",
    ),
    Mutant(
        "rank_high_group_ceil",
        LOSSES,
        "num_high = ops.floor(high_fraction * n_float)",
        "num_high = ops.ceil(high_fraction * n_float)",
        T_SCN,
        "M = ceil(beta N) instead of int(beta N)",
    ),
    Mutant(
        "rank_low_group_ties",
        LOSSES,
        "ops.logical_or(weights < kth, num_high < 1.0)",
        "ops.logical_or(weights <= kth, num_high < 1.0)",
        T_SCN,
        "samples tied with the M-th weight join the low group",
    ),
    # --- DacFER (EAC) ----------------------------------------------------
    Mutant(
        "dacfer_cam_kernel_grad",
        CAM,
        "kernel = ops.stop_gradient(kernel)",
        "kernel = kernel",
        T_DACFER,
        "the consistency loss trains the classifier kernel (no cam_test)",
    ),
    Mutant(
        "dacfer_sign_ce",
        DACFER,
        "total = ce + self.consistency_weight * consistency",
        "total = -ce + self.consistency_weight * consistency",
        T_DACFER,
        "minus L_s",
    ),
    Mutant(
        "dacfer_sign_consistency",
        DACFER,
        "total = ce + self.consistency_weight * consistency",
        "total = ce - self.consistency_weight * consistency",
        T_DACFER,
        "minus lambda L_c",
    ),
    Mutant(
        "dacfer_consistency_sum",
        DACFER,
        "ops.mean(ops.square(diff), axis=(1, 2, 3))",
        "ops.sum(ops.square(diff), axis=(1, 2, 3))",
        T_DACFER,
        "L_c summed, not averaged, over classes and positions",
    ),
    Mutant(
        "cam_not_flipped_back",
        CAM,
        "return maps, flip_horizontal(flipped)",
        "return maps, flipped",
        T_DACFER,
        "the flip view's maps are compared unmirrored",
    ),
    Mutant(
        "flip_view_not_flipped",
        FLIP,
        "flipped = features_of(flip_horizontal(images))",
        "flipped = features_of(images)",
        T_DACFER,
        "the second view is x, not flip(x)",
    ),
    # --- AFCN ------------------------------------------------------------
    Mutant(
        "afcn_cam_kernel_grad",
        CAM,
        "kernel = ops.stop_gradient(kernel)",
        "kernel = kernel",
        T_AFCN,
        "the consistency loss trains the classifier kernel (no cam_test)",
    ),
    Mutant(
        "afcn_sign_wce",
        AFCN,
        AFCN_TOTAL,
        AFCN_TOTAL.replace("wce\n", "-wce\n"),
        T_AFCN,
        "minus L_wce",
    ),
    Mutant(
        "afcn_sign_rank",
        AFCN,
        AFCN_TOTAL,
        AFCN_TOTAL.replace("+ self.rank_weight", "- self.rank_weight"),
        T_AFCN,
        "minus lambda1 L_rank",
    ),
    Mutant(
        "afcn_sign_consistency",
        AFCN,
        AFCN_TOTAL,
        AFCN_TOTAL.replace("+ self.consistency", "- self.consistency"),
        T_AFCN,
        "minus lambda2 L_cons",
    ),
    Mutant(
        "afcn_fused_is_first_map",
        AFCN,
        "fused = 0.5 * (maps + flipped)",
        "fused = maps",
        T_AFCN,
        "F = M instead of (M + Flip(M')) / 2",
    ),
    Mutant(
        "afcn_entropy_detach",
        AFCN,
        'probs = ops.softmax(ops.stop_gradient(y_pred["logits"]))',
        'probs = ops.softmax(y_pred["logits"])',
        T_AFCN,
        "the certainty's entropy term trains the logits",
    ),
    Mutant(
        "afcn_relabel_unweighted",
        AFCN,
        "ids, labels, alpha[:, None] * logits, low_group, training",
        "ids, labels, logits, low_group, training",
        T_AFCN,
        "relabel on softmax(logits), not softmax(alpha * logits)",
    ),
    Mutant(
        "afcn_warmup_late",
        BASE,
        AFTER_WARMUP,
        "ops.greater(self.epoch + 1, self.warmup_epochs)",
        T_AFCN,
        "relabel from epoch warmup_epochs + 1",
    ),
    Mutant(
        "afcn_warmup_early",
        BASE,
        AFTER_WARMUP,
        "ops.greater_equal(self.epoch + 2, self.warmup_epochs)",
        T_AFCN,
        "relabel from epoch warmup_epochs - 1",
    ),
    # --- DWMCA (APCL) ----------------------------------------------------
    Mutant(
        "dwmca_sign_cls",
        DWMCA,
        DWMCA_TOTAL,
        DWMCA_TOTAL.replace("self.cls_weight", "-self.cls_weight"),
        T_DWMCA,
        "minus lambda_cls L_cls",
    ),
    Mutant(
        "dwmca_sign_anchor",
        DWMCA,
        DWMCA_TOTAL,
        DWMCA_TOTAL.replace("+ self.anchor_weight", "- self.anchor_weight"),
        T_DWMCA,
        "minus lambda_a L_a",
    ),
    Mutant(
        "dwmca_sign_center",
        DWMCA,
        DWMCA_TOTAL,
        DWMCA_TOTAL.replace("+ self.center_weight", "- self.center_weight"),
        T_DWMCA,
        "minus lambda_c L_c",
    ),
    Mutant(
        "anchor_hinge_removed",
        APCL,
        "hinge = ops.square(ops.relu(1.0 - dist / margin))",
        "hinge = ops.square(1.0 - dist / margin)",
        T_DWMCA,
        "L_a without the hinge: far anchors are pulled back",
    ),
    Mutant(
        "anchor_same_class_pairs",
        APCL,
        'other = ops.cast(cls[:, None] != cls[None, :], "float32")',
        'other = ops.cast(cls[:, None] >= 0, "float32")',
        T_DWMCA,
        "L_a also repels anchors of the same class",
    ),
    Mutant(
        "center_farthest_anchor",
        APCL,
        "return ops.min(own, axis=-1)",
        "return ops.max(own, axis=-1)",
        T_DWMCA,
        "L_c to the farthest anchor of the class",
    ),
    Mutant(
        "apcl_detach_corrected",
        APCL,
        APCL_CORRECTED,
        "anchor_dist, c_g, attention_dist, c_a",
        T_DWMCA,
        "gradient through the confidences of t_g and t_a",
    ),
    Mutant(
        "apcl_detach_final",
        APCL,
        APCL_FINAL,
        "final = confidence_fusion(primary, c_p, corrected, c_t)",
        T_DWMCA,
        "gradient through the confidences of p and t",
    ),
    Mutant(
        "apcl_anchor_temperature",
        APCL,
        "ops.reshape(-dist / self.temperature,",
        "ops.reshape(-dist * self.temperature,",
        T_DWMCA,
        "s = softmax(-d delta) instead of softmax(-d / delta)",
    ),
    Mutant(
        "dwmca_label_table_no_reset",
        DWMCA,
        "self.relabel_step(ids, new, None, training)",
        "self.relabel_step(ids, new, new >= 0, training)",
        T_DWMCA,
        "a flagged sample stays flagged once the prediction agrees",
    ),
    Mutant(
        "dwmca_warmup_late",
        BASE,
        AFTER_WARMUP,
        "ops.greater(self.epoch + 1, self.warmup_epochs)",
        T_DWMCA,
        "label_table written from epoch warmup_epochs + 1",
    ),
    Mutant(
        "dwmca_warmup_early",
        BASE,
        AFTER_WARMUP,
        "ops.greater_equal(self.epoch + 2, self.warmup_epochs)",
        T_DWMCA,
        "label_table written from epoch warmup_epochs - 1",
    ),
    # --- DualBranch (Ada-DF) ---------------------------------------------
    Mutant(
        "dual_fused_target_reversed",
        DUAL,
        'fused_target="ada_df",\n        branch_filters',
        'fused_target="reversed",\n        branch_filters',
        T_DUAL,
        'fused_target="reversed" by default',
    ),
    Mutant(
        "dual_fused_detach",
        DUAL,
        FUSED,
        FUSED.replace("ops.stop_gradient(", "(", 1),
        T_DUAL,
        "the KLD trains the auxiliary branch through its target",
    ),
    Mutant(
        "dual_sign_ce",
        DUAL,
        "total = mu1 * ce + mu2 * kld",
        "total = -mu1 * ce + mu2 * kld",
        T_DUAL,
        "minus mu1 L1",
    ),
    Mutant(
        "dual_sign_kld",
        DUAL,
        "total = mu1 * ce + mu2 * kld",
        "total = mu1 * ce - mu2 * kld",
        T_DUAL,
        "minus mu2 KLD",
    ),
    Mutant(
        "dual_no_weight_floor",
        DUAL,
        "w_target = self.min_weight + (1.0 - self.min_weight) * w",
        "w_target = w",
        T_DUAL,
        "Ada-DF's [0.2, 1] rescaling of w dropped",
    ),
    Mutant(
        "dual_ce_unweighted",
        DUAL,
        "w * losses.sparse_cross_entropy(labels, aux_logits)",
        "losses.sparse_cross_entropy(labels, aux_logits)",
        T_DUAL,
        "Eq. 10 without w",
    ),
    Mutant(
        "dual_warmup_ignored",
        DUAL,
        "w = ops.where(self.after_warmup(), self.clean_table.gather(ids), w)",
        "w = self.clean_table.gather(ids)",
        T_DUAL,
        "w read from the clean table inside the warm-up",
    ),
    Mutant(
        "dual_w_warmup_late",
        BASE,
        AFTER_WARMUP,
        "ops.greater(self.epoch + 1, self.warmup_epochs)",
        T_DUAL,
        "w used from epoch warmup_epochs + 1",
    ),
    Mutant(
        "dual_w_warmup_early",
        BASE,
        AFTER_WARMUP,
        "ops.greater_equal(self.epoch + 2, self.warmup_epochs)",
        T_DUAL,
        "w used from epoch warmup_epochs - 1",
    ),
    Mutant(
        "dual_fit_boundary_late",
        BASE,
        "return epoch + 1 >= self.warmup_epochs",
        "return epoch + 1 > self.warmup_epochs",
        T_DUAL,
        "the mixture is first fitted one epoch late",
    ),
    Mutant(
        "dual_fit_boundary_early",
        BASE,
        "return epoch + 1 >= self.warmup_epochs",
        "return epoch + 2 >= self.warmup_epochs",
        T_DUAL,
        "the mixture is first fitted one epoch early",
    ),
    Mutant(
        "mixture_noisy_component",
        MIXTURE,
        "post = self.responsibilities(x)[1]",
        "post = self.responsibilities(x)[0]",
        T_DUAL,
        "the clean probability is the noisy component's posterior",
    ),
    Mutant(
        "mixture_unsorted_components",
        MIXTURE,
        "order = np.argsort(self.alphas / (self.alphas + self.betas))",
        "order = np.arange(2)",
        T_DUAL,
        "component 1 is not necessarily the higher-mean one",
    ),
    Mutant(
        "mining_fallback_uniform_rest",
        MIXTURE,
        "off = (1.0 - threshold) / (num_classes - 1)",
        "off = (1.0 - threshold) / num_classes",
        T_DUAL,
        "the fallback class distribution does not sum to 1",
    ),
    Mutant(
        "dual_cosine_unnormalised",
        DUAL,
        "ops.norm(label_dist, axis=1), 1e-12",
        "1.0, 1e-12",
        T_DUAL,
        "Eq. 3 similarity without the norm (p_y instead of cos)",
    ),
    # --- Baseline and optimizer ------------------------------------------
    Mutant(
        "baseline_sign_ce",
        BASE,
        "return self.with_regularization(ce)",
        "return self.with_regularization(-ce)",
        T_BASE,
        "minus the cross-entropy",
    ),
    Mutant(
        "baseline_score_max_prob",
        BASE,
        "self.record_scores(ids, given_probability(probs, labels), training)",
        "self.record_scores(ids, ops.max(probs, axis=-1), training)",
        T_BASE,
        "clean score: the top probability, not that of the label",
    ),
    Mutant(
        "class_balance_logit_sign",
        BALANCE,
        "return logits + ops.convert_to_tensor(self.offsets, logits.dtype)",
        "return logits - ops.convert_to_tensor(self.offsets, logits.dtype)",
        T_BALANCE,
        "logit adjustment by -tau log(prior): favours the frequent classes",
    ),
    Mutant(
        "class_balance_raw_counts",
        BALANCE,
        "raw = [(1.0 - strength) / (1.0 - strength**c) for c in counts]",
        "raw = [1.0 / c for c in counts]",
        T_BALANCE,
        "inverse frequency in place of the effective number (Cui Eq. 4)",
    ),
    Mutant(
        "class_balance_weights_unused",
        BASE,
        "            ce = ce * class_weights",
        "            ce = ce * 1.0",
        T_BALANCE,
        "reweighted: the class weights never reach the loss",
    ),
    Mutant(
        "adam_l2_sign",
        OPTIM,
        "gradient = gradient + self.l2 * variable",
        "gradient = gradient - self.l2 * variable",
        T_OPTIM + T_SCN,
        "L2 pushes the weights away from 0",
    ),
    Mutant(
        "adam_l2_decoupled",
        OPTIM,
        "gradient = gradient + self.l2 * variable",
        "variable.assign(variable * (1.0 - self.l2 * learning_rate))",
        T_OPTIM + T_SCN,
        "decoupled weight decay (AdamW) instead of L2 in the gradient",
    ),
]


def apply(mutant, root):
    """Patch `root / mutant.path`; returns an error string or None."""
    path = root / mutant.path
    if not path.exists():
        return f"{mutant.path} does not exist"
    text = path.read_text()
    count = text.count(mutant.old)
    if count != 1:
        return f"{mutant.path}: the pattern matches {count} times, not once"
    path.write_text(text.replace(mutant.old, mutant.new))
    return None


def copy_tree(root):
    for part in ("ferzoo", "tests"):
        shutil.copytree(
            REPO / part,
            root / part,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    for name in ("pyproject.toml",):
        shutil.copy(REPO / name, root / name)


# Tests that fit a model for several epochs: run only when the quick
# tests of the same files let a mutant through.
SLOW = (
    "method_basics or short_fit or noisy_fit or flipped_samples or "
    "relabelling_starts or fit_sizes"
)


def run_tests(root, tests, backend, timeout):
    """Quick tests first; the whole non-large files if they all pass."""
    code, summary = run_pytest(root, tests, backend, timeout, f"not ({SLOW})")
    if code == 0:
        code, summary = run_pytest(root, tests, backend, timeout, SLOW)
    return code, summary


def run_pytest(root, tests, backend, timeout, select):
    tests = [t for t in tests if (root / t).exists()]
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    cmd = [sys.executable, "-m", "pytest", *tests, "-x", "-q", "-n", "0"]
    cmd += ["-p", "no:cacheprovider", "-p", "no:randomly", "-k", select]
    try:
        proc = subprocess.run(
            cmd,
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, "timeout"
    if proc.returncode == 5:  # nothing selected
        return 0, "no tests selected"
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    failed = [line for line in lines if line.startswith("FAILED")]
    summary = (failed or lines[-1:] or [""])[0]
    return proc.returncode, summary


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="mutants to run (all)")
    parser.add_argument(
        "--backend", default="jax", choices=("jax", "tensorflow")
    )
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--timeout", type=int, default=1200)
    parser.add_argument(
        "--jobs", type=int, default=1, help="mutants run at once"
    )
    args = parser.parse_args(argv)
    by_name = {m.name: m for m in MUTANTS}
    if len(by_name) != len(MUTANTS):
        raise SystemExit("duplicate mutant names")
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:32s} {m.path:40s} {m.what}")
        return 0
    unknown = sorted(set(args.names) - set(by_name))
    if unknown:
        raise SystemExit(f"unknown mutants: {unknown} (see --list)")
    chosen = [by_name[n] for n in args.names] or MUTANTS
    if args.baseline:
        tests = sorted({t for m in chosen for t in m.tests})
        with tempfile.TemporaryDirectory(prefix="ferzoo-mutant-") as tmp:
            root = pathlib.Path(tmp)
            copy_tree(root)
            code, summary = run_tests(root, tests, args.backend, args.timeout)
        print(f"baseline: rc={code} {summary}", flush=True)
        if code != 0:
            return 1

    def run_one(mutant):
        start = time.time()
        with tempfile.TemporaryDirectory(prefix="ferzoo-mutant-") as tmp:
            root = pathlib.Path(tmp)
            copy_tree(root)
            error = apply(mutant, root)
            if error:
                status, detail = "not applied", error
            else:
                code, detail = run_tests(
                    root, mutant.tests, args.backend, args.timeout
                )
                status = {0: "SURVIVED", None: "timeout"}.get(code, "killed")
                if code not in (0, 1, None):
                    status = f"error (rc {code})"
        seconds = time.time() - start
        print(
            f"{mutant.name:32s} {status:10s} {seconds:5.0f}s  {detail}",
            flush=True,
        )
        return mutant, status, detail

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(run_one, chosen))
    print(f"\n| mutant | change | result ({args.backend}) |")
    print("|---|---|---|")
    for mutant, status, _ in results:
        print(f"| `{mutant.name}` | {mutant.what} | {status} |")
    killed = sum(status == "killed" for _, status, _ in results)
    print(f"\n{killed} of {len(results)} killed")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
