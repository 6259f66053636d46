"""Measure ferzoo-audit against cleanlab alone, where the flips are known.

For each noise setting (seeded symmetric or pair flips of the train
split) and each method preset, runs `ferzoo.audit` (K folds, out-of-fold
probabilities; resumable in `--cache-dir`) and scores, against the flip
mask, the top-k of each ranking (k = the true number of flips: precision,
recall, F1) and its ROC-AUC:

- (a) `cleanlab`: `cleanlab.filter.find_label_issues` on the out-of-fold
  probabilities of the plain Baseline (the first preset, which must be a
  Baseline); both its own flagged set (`cleanlab set`, whatever its
  size) and the top-k of its ranking by self-confidence;
- (b) `<method> score`: each method's own clean score (lowest first);
- (c) `<method> audit`: the ferzoo-audit combination on that method's
  folds (`rank_average`, the default; `flagged_first` too), and cleanlab on
  that method's own out-of-fold probabilities.

With `--retrain`, each audit's corrected label file is trained on with
`ferzoo-train --noise-file` (the same preset and recipe) and its test
accuracy compared with training on the noisy labels.

Writes `results.json` and `results.md` (the table) to `--out-dir`.

Invocations:
    python scripts/audit_benchmark.py --data synthetic:1400 --epochs 8 \
        --image-size 32 --out-dir runs/audit_bench     # the CPU-size run
    python scripts/audit_benchmark.py --data fer2013:/data/fer2013 \
        --suffix resnet18_fer2013 --folds 3           # FER2013, any preset
    python scripts/audit_benchmark.py --preset baseline_small_cnn_synthetic \
        --preset scn_small_cnn_synthetic --noise pair:0.3
"""

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np

METHODS = ("baseline", "scn", "dual_branch", "dwmca", "afcn", "dacfer")


def parse_noise(text):
    kind, _, rate = text.partition(":")
    if kind not in ("symmetric", "pair") or not rate:
        raise argparse.ArgumentTypeError(
            f"--noise must be symmetric:RATE or pair:RATE, got {text!r}"
        )
    return kind, float(rate)


def rows_for(
    df, probs, labels, method_rank, flipped, name, is_baseline, combined
):
    """Table rows of one audit: cleanlab, the method score, the audit."""
    import cleanlab.filter

    from ferzoo import audit

    k = int(flipped.sum())
    rows = []

    def add(label, ranked, suspicion, extra=None):
        m = audit.detection_metrics(ranked, flipped, k)
        rows.append(
            {
                "ranking": label,
                "flagged": m["flagged"],
                "precision": m["precision"],
                "recall": m["recall"],
                "f1": m["f1"],
                "roc_auc": audit.roc_auc(suspicion, flipped),
                **(extra or {}),
            }
        )

    quality = probs[np.arange(len(labels)), labels]
    flagged = cleanlab.filter.find_label_issues(
        labels,
        probs,
        return_indices_ranked_by="self_confidence",
        n_jobs=1,
    )
    prefix = "(a) cleanlab" if is_baseline else f"{name}: cleanlab"
    m = audit.detection_metrics(flagged, flipped, len(flagged))
    rows.append(
        {
            "ranking": f"{prefix} set",
            "flagged": m["flagged"],
            "precision": m["precision"],
            "recall": m["recall"],
            "f1": m["f1"],
            "roc_auc": audit.roc_auc(-quality, flipped),
        }
    )
    add(f"{prefix} top-k", np.argsort(quality, kind="stable"), -quality)
    scores = df.sort_values("sample_id")["method_score"].to_numpy()
    if not np.isnan(scores).all():
        order = np.argsort(np.where(np.isnan(scores), np.inf, scores))
        add(f"(b) {name} score", order, -scores)
    for rule in audit.RULES:
        r = audit.rank_issues(
            labels, probs, method_rank if combined else None, rule=rule
        )
        add(f"(c) {name} audit ({rule})", r["order"], -r["rank"])
    if not combined and not np.isnan(scores).all():
        # What the label-free score would have added.
        r = audit.rank_issues(labels, probs, method_rank)
        add(f"{name} audit, label-free score combined", r["order"], -r["rank"])
    return rows


def run(args):
    import ferzoo
    from ferzoo import training

    presets = args.preset or [f"{m}_{args.suffix}" for m in METHODS]
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = pathlib.Path(args.cache_dir or out / "cache")
    results = {"settings": vars(args), "noise": {}}
    for noise_type, rate in args.noise or [("symmetric", 0.3), ("pair", 0.3)]:
        key = f"{noise_type}:{rate}"
        table, retrain = [], []
        for i, preset in enumerate(presets):
            name = preset.split("_" + args.suffix)[0] if args.suffix else preset
            folder = cache / f"{noise_type}_{rate}" / preset
            start = time.time()
            df = ferzoo.audit(
                data=args.data,
                preset=preset,
                folds=args.folds,
                output_dir=folder,
                top=args.top,
                noise_rate=rate,
                noise_type=noise_type,
                noise_seed=args.noise_seed,
                epochs=args.epochs,
                batch_size=args.batch_size,
                learning_rate=args.learning_rate,
                image_size=args.image_size,
                limit_per_class=args.limit_per_class,
                seed=args.seed,
                verbose="auto",
            )
            saved = np.load(folder / "probabilities.npz")
            by_id = df.sort_values("sample_id")
            flipped = by_id["flipped"].to_numpy()
            rows = rows_for(
                df,
                saved["probs"],
                saved["labels"],
                saved["method_rank"],
                flipped,
                name,
                is_baseline=i == 0,
                combined=df.attrs["summary"].get("score_combined", True),
            )
            if i > 0:
                rows = [r for r in rows if not r["ranking"].startswith("(a)")]
            for r in rows:
                r["seconds"] = round(time.time() - start, 1)
            table.extend(rows)
            print(
                f"[audit-bench] {key} {preset}: "
                + ", ".join(f"{r['ranking']} F1 {r['f1']:.3f}" for r in rows),
                file=sys.stderr,
            )
            if args.retrain:
                retrain.append(
                    retrain_row(
                        training, args, preset, folder, noise_type, rate
                    )
                )
        results["noise"][key] = {
            "num_flipped": int(flipped.sum()),
            "num_samples": int(len(flipped)),
            "rows": table,
            "retrain": retrain,
        }
        training.atomic_write_json(out / "results.json", results)
    (out / "results.md").write_text(markdown(results, presets))
    print(markdown(results, presets))
    return results


def retrain_row(training, args, preset, folder, noise_type, rate):
    """Test accuracy trained on the noisy vs. the corrected labels."""
    common = dict(
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        limit_per_class=args.limit_per_class,
        verbose=0,
    )
    name = preset
    if args.image_size:
        preset = sized_preset(preset, args.image_size, folder / "preset")
    noisy = _train(
        training,
        preset,
        folder / "retrain_noisy",
        dict(common, noise_rate=rate, noise_type=noise_type),
        args,
    )
    fixed = _train(
        training,
        preset,
        folder / "retrain_corrected",
        dict(common, noise_file=str(folder / "corrected_labels.txt")),
        args,
    )
    return {
        "preset": name,
        "noisy": noisy,
        "corrected": fixed,
        "gain": None if noisy is None else fixed - noisy,
    }


def sized_preset(preset, size, folder):
    """A copy of `preset` at another image size (recipe and backbone).

    `training.train` reads the image size from the preset's recipe and
    the model's input shape from its config; the copy keeps them in step.
    """
    import shutil

    from ferzoo import presets as preset_utils

    source = preset_utils.resolve_preset(preset)
    folder = pathlib.Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(source, folder)
    config = json.loads((folder / "config.json").read_text())
    config["config"]["backbone"]["config"]["image_shape"] = [size, size, 3]
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    meta_path = folder / "metadata.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    meta.setdefault("recipe", {})["image_size"] = size
    meta_path.write_text(json.dumps(meta, indent=2))
    return str(folder)


def _train(training, preset, folder, kwargs, args):
    results = training.train(preset, output_dir=str(folder), **kwargs)
    test = results.get("test") or {}
    final = test.get("final") or {}
    return final.get("accuracy")


def _fmt(value):
    return "" if value is None else f"{value:.3f}"


def markdown(results, presets):
    s = results["settings"]
    lines = [
        "# ferzoo-audit against cleanlab alone",
        "",
        f"Data `{s['data']}`, presets {', '.join(f'`{p}`' for p in presets)}"
        f", {s['folds']} folds, epochs {s['epochs'] or 'preset'}, image size "
        f"{s['image_size'] or 'preset'}, seed {s['seed']}. Top-k with k = "
        "the number of flipped labels; `cleanlab set` is cleanlab's own "
        "flagged set (its size in `flagged`).",
        "",
    ]
    for key, block in results["noise"].items():
        lines += [
            f"## {key} noise ({block['num_flipped']} of "
            f"{block['num_samples']} labels flipped)",
            "",
            "| ranking | flagged | precision | recall | F1 | ROC-AUC |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in block["rows"]:
            lines.append(
                f"| {r['ranking']} | {r['flagged']} | {_fmt(r['precision'])}"
                f" | {_fmt(r['recall'])} | {_fmt(r['f1'])} | "
                f"{_fmt(r['roc_auc'])} |"
            )
        if block["retrain"]:
            lines += [
                "",
                "| preset | test acc. (noisy) | test acc. (corrected) | gain |",
                "|---|---:|---:|---:|",
            ]
            for r in block["retrain"]:
                lines.append(
                    f"| {r['preset']} | {_fmt(r['noisy'])} | "
                    f"{_fmt(r['corrected'])} | {_fmt(r['gain'])} |"
                )
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data", default="synthetic:1400")
    parser.add_argument(
        "--preset",
        action="append",
        help="Preset to audit (repeatable; the first must be a Baseline). "
        "Default: every method with --suffix.",
    )
    parser.add_argument("--suffix", default="small_cnn_synthetic")
    parser.add_argument(
        "--noise",
        action="append",
        type=parse_noise,
        help="symmetric:RATE or pair:RATE (repeatable; default both at 0.3)",
    )
    parser.add_argument("--noise-seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--limit-per-class", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=48)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--out-dir", default="runs/audit_benchmark")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run(args)


if __name__ == "__main__":
    main()
