"""The summary step of a run: the test report, model selection, noise
detection, and the files a finished run writes (`results.json`, the
preset files `config.json`, `metadata.json`, `model.weights.h5`)."""

import keras
import numpy as np

from ferzoo import metrics
from ferzoo.training import checkpoints


def summarize(fitted, out, dist):
    """The results dict of a fitted run (also written to `results.json`)."""
    data, spec = fitted.data, fitted.requested
    results = test_report(
        fitted.model,
        out,
        data.info,
        data.test,
        data.test_info,
        fitted.monitor.records,
    )
    results.update(
        {
            "preset": spec.preset,
            "data": spec.data.source,
            "noise": data.info.noise,
            "selection": data.selection,
            "recipe": fitted.recipe,
            "seed": spec.seed,
            "backend": keras.backend.backend(),
            "skipped": skipped_report(
                {
                    "train": data.info,
                    "val": data.val_info,
                    "test": data.test_info,
                }
            ),
            "distribute": dist.describe(),
        }
    )
    if fitted.trunk_report is not None:
        results["trunk_cache"] = fitted.trunk_report
    return results


def write_outputs(fitted, out, results):
    """Save the model as a preset in `out` and write `results.json`."""
    from ferzoo.training.resume import run_config

    info = fitted.data.info
    fitted.model.save_to_preset(
        out,
        {
            "description": f"trained from {fitted.requested.preset}",
            "dataset": {
                "data": fitted.spec.data.source,
                "image_size": int(fitted.recipe["image_size"]),
                "num_classes": info.num_classes,
                "class_names": list(info.class_names),
            },
            "noise": info.noise,
            "run": run_config(fitted.spec),
            "results": results["test"],
        },
    )
    checkpoints.atomic_write_json(out / checkpoints.RESULTS_FILE, results)


def skipped_report(infos, examples=10):
    """Per split: how many samples were skipped, and the first few."""
    report = {}
    for split, info in infos.items():
        if info is None:
            continue
        report[split] = {
            "count": len(info.skipped),
            "first": [f"{src}: {why}" for src, why in info.skipped[:examples]],
        }
    return report


def test_report(model, out, info, test_ds, test_info, records):
    """Final test report, noise-detection report and confusion matrix."""
    results = {"epochs_run": len(records), "history": records}
    tests = [r["test_accuracy"] for r in records if "test_accuracy" in r]
    f1s = [r["test_macro_f1"] for r in records if "test_macro_f1" in r]
    if tests:
        results["test"] = {}
        if "val_accuracy" in records[0]:  # never a training-accuracy pick
            best = int(np.argmax([r["val_accuracy"] for r in records]))
            results["test"] = {
                "best_on_val_accuracy": tests[best],
                "best_on_val_macro_f1": f1s[best],
                "best_epoch": records[best]["epoch"] + 1,
            }
        results["test"].update(
            {
                "last5_mean_accuracy": float(np.mean(tests[-5:])),
                "last5_mean_macro_f1": float(np.mean(f1s[-5:])),
                # Mean of the last 5 epochs (of all, when fewer ran).
                "last5_num_epochs": len(tests[-5:]),
            }
        )
        report = metrics.classification_report(
            test_info.labels,
            model.predict(test_ds, verbose=0),
            info.class_names,
        )
        results["test"]["final"] = report
        metrics.save_confusion_matrix(
            report,
            out / "confusion_matrix.png",
            out / "confusion_matrix.json",
        )
    else:
        results["test"] = {}
    if info.noise_mask is not None and model.clean_scores() is not None:
        results["noise_detection"] = metrics.noise_detection_report(
            model.clean_scores(),
            info.noise_mask,
            model.relabels(),
            info.labels,
            info.clean_labels,
        )
        results["noise_detection"]["score"] = model.score_name
        results["noise_detection"]["score_uses_label"] = model.score_uses_label
    return results
