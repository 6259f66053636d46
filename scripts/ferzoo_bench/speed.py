"""Training speed against PyTorch: subprocess workers and the section.

Every configuration runs in its own subprocess (`benchmark.py
--speed-worker N` for Keras, `scripts/torch_reference.py` for PyTorch),
so backends and dtype policies do not leak into each other.
"""

import datetime
import json
import os
import pathlib
import subprocess
import sys
import time

import click

from ferzoo_bench.fmt import num
from ferzoo_bench.machine import plain_machine
from ferzoo_bench.profiles import SCRIPTS

ENTRY = SCRIPTS / "benchmark.py"


SPEED_CONFIGS = [
    # name, backend, jit_compile, dtype policy
    ("keras-tensorflow fp32", "tensorflow", False, "float32"),
    ("keras-tensorflow mixed bf16", "tensorflow", False, "mixed_bfloat16"),
    ("keras-tensorflow XLA fp32", "tensorflow", True, "float32"),
    ("keras-tensorflow XLA mixed bf16", "tensorflow", True, "mixed_bfloat16"),
    ("keras-jax (XLA) fp32", "jax", True, "float32"),
    ("keras-jax (XLA) mixed bf16", "jax", True, "mixed_bfloat16"),
]
TORCH_CONFIGS = [
    # name, precision, memory format
    ("torch fp32", "fp32", "contiguous"),
    ("torch fp32 channels-last", "fp32", "channels_last"),
    ("torch bf16", "bf16", "channels_last"),
]


def fastest(rows, prefix):
    """The highest img/s of the measured rows whose name starts with it."""
    return max(
        (
            r["images_per_second"]
            for r in rows
            if r["name"].startswith(prefix) and r.get("images_per_second")
        ),
        default=None,
    )


def torch_reference(rows):
    """The fastest PyTorch fp32 row's img/s: the reference of the ratios."""
    return fastest(rows, "torch fp32")


def speed_worker(config, image_size, batch_size, warmup, steps, latency):
    """Runs in a subprocess whose backend is already set; prints JSON."""
    import keras
    import numpy as np

    import ferzoo

    name, _, jit, policy = config
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    n = batch_size * (warmup + steps)
    backbone = ferzoo.backbones.ResNetBackbone.from_name(
        "resnet18", image_shape=(image_size, image_size, 3)
    )
    model = ferzoo.models.Baseline(
        backbone=backbone, num_classes=7, num_samples=n
    )
    model.compile(jit_compile=jit)
    rng = np.random.default_rng(0)
    x = {
        "images": rng.uniform(0, 255, (n, image_size, image_size, 3)).astype(
            "float32"
        ),
        "sample_ids": np.arange(n, dtype="int32"),
    }
    y = rng.integers(0, 7, n).astype("int32")
    stamps = []

    class Stamp(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    model.fit(
        x, y, batch_size=batch_size, epochs=1, verbose=0, callbacks=[Stamp()]
    )
    seconds = stamps[-1] - stamps[warmup - 1]
    out = {
        "name": name,
        "images_per_second": batch_size * (len(stamps) - warmup) / seconds,
        "parameters": int(model.count_params()),
    }
    if latency:
        import tempfile

        import tensorflow as tf

        from ferzoo.export import export_saved_model

        keras.config.set_dtype_policy("float32")
        model32 = ferzoo.models.Baseline(
            backbone=ferzoo.backbones.ResNetBackbone.from_name(
                "resnet18", image_shape=(image_size, image_size, 3)
            ),
            num_classes=7,
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = export_saved_model(model32, pathlib.Path(tmp) / "saved")
            loaded = tf.saved_model.load(str(path))
            ms = {}
            for b in (1, 64):
                images = tf.constant(x["images"][:b])
                for _ in range(3):
                    loaded.serve(images)
                times = []
                for _ in range(latency):
                    t = time.perf_counter()
                    loaded.serve(images).numpy()
                    times.append(1000 * (time.perf_counter() - t))
                ms[str(b)] = float(np.median(times))
        out["saved_model_latency"] = {"repeats": latency, "milliseconds": ms}
    print("SPEED_JSON " + json.dumps(out))


def _speed_commands(image_size, batch_size, warmup, steps, latency):
    """`(name, command, env)` of every configuration, Keras then PyTorch."""
    env_base = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    common = [
        "--speed-size", str(image_size), "--speed-batch", str(batch_size),
        "--speed-warmup", str(warmup), "--speed-steps", str(steps),
    ]  # fmt: skip
    out = []
    for i, (name, backend, _, _) in enumerate(SPEED_CONFIGS):
        cmd = [sys.executable, str(ENTRY), "--speed-worker", str(i), *common]
        cmd += ["--speed-latency", str(latency if i == 0 else 0)]
        out.append((name, cmd, dict(env_base, KERAS_BACKEND=backend)))
    for name, precision, layout in TORCH_CONFIGS:
        cmd = [
            sys.executable, str(SCRIPTS / "torch_reference.py"),
            "--image-size", str(image_size), "--batch-size", str(batch_size),
            "--warmup", str(warmup), "--steps", str(steps),
            "--precision", precision, "--memory-format", layout,
        ]  # fmt: skip
        out.append((name, cmd, dict(env_base)))
    return out


def run_speed(
    image_size, batch_size, warmup, steps, latency, out_dir, rounds=2
):
    """Every configuration `rounds` times, round-robin; keeps the best.

    Round-robin spreads a passing disturbance over all configurations
    instead of one; the best round is the least disturbed measurement.
    """
    lat = None
    machine_info = plain_machine()
    runs = {}
    commands = _speed_commands(image_size, batch_size, warmup, steps, latency)
    for r in range(rounds):
        for name, cmd, env in commands:
            if r and "--speed-latency" in cmd:
                cmd = cmd[:-1] + ["0"]
            click.echo(f"[speed] round {r + 1}/{rounds}: {name} ...")
            load = os.getloadavg()[0]
            row = _speed_subprocess(name, cmd, env)
            row["load_average"] = load
            if "saved_model_latency" in row:
                lat = row.pop("saved_model_latency")
            runs.setdefault(name, []).append(row)
    rows = []
    for name, _, _ in commands:
        measured = [x for x in runs[name] if x.get("images_per_second")]
        best = dict(
            max(measured, key=lambda x: x["images_per_second"])
            if measured
            else runs[name][-1]
        )
        best["rounds"] = [x.get("images_per_second") for x in runs[name]]
        best["load_average"] = max(x["load_average"] for x in runs[name])
        rows.append(best)
    notes = {
        "keras-tensorflow fp32": "tf.function, no XLA",
        "torch fp32": "eager, plain training loop (NCHW)",
        "torch fp32 channels-last": "eager, channels_last memory format",
        "torch bf16": "torch.autocast(cpu, bfloat16), channels_last",
    }
    for row in rows:
        if row["name"] in notes and "note" not in row:
            row["note"] = notes[row["name"]]
        if row["name"].endswith("bf16") and "note" not in row:
            row["note"] = "bfloat16 compute, float32 weights"
    speed = {
        "model": "Baseline, ResNet-18 (ImageNet stem), 7 classes",
        "image_size": image_size,
        "batch_size": batch_size,
        "warmup_steps": warmup,
        "steps": steps,
        "rounds": rounds,
        "rows": rows,
        "saved_model_latency": lat,
        "machine": machine_info,
        "command": " ".join(["python", "scripts/benchmark.py", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }
    assets = pathlib.Path(out_dir) / "benchmarks"
    assets.mkdir(parents=True, exist_ok=True)
    (assets / "speed.json").write_text(json.dumps(speed, indent=1) + "\n")
    ref = torch_reference(rows)
    for row in rows:
        ips = row.get("images_per_second")
        ratio = f"{ips / ref:5.2f}x torch" if ips and ref else ""
        click.echo(f"{row['name']:34s} {num(ips, 1):>8s} img/s  {ratio}")
    if lat:
        for b, ms in lat["milliseconds"].items():
            click.echo(f"SavedModel serve, batch {b:>2s}: {ms:.1f} ms")
    return speed


def _speed_subprocess(name, cmd, env):
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=900
        )
    except subprocess.TimeoutExpired:
        return {"name": name, "images_per_second": None, "note": "timed out"}
    for line in proc.stdout.splitlines():
        if line.startswith("SPEED_JSON "):
            row = json.loads(line[len("SPEED_JSON ") :])
            row["name"] = name
            return row
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
    note = "failed: " + (tail[0][:150] if tail else f"exit {proc.returncode}")
    return {"name": name, "images_per_second": None, "note": note}


def speed_section(speed):
    lines = ["## Speed against PyTorch", ""]
    if not speed:
        return lines + [
            "Not measured yet: run `python scripts/benchmark.py --speed`.",
            "",
        ]
    mach = speed["machine"]
    lines += [
        f"- Command: `{speed['command']}`",
        f"- Machine: {mach['platform']}, {mach['processor']}, "
        f"{mach['cpu_count']} CPU cores; date {speed['date']} (UTC); "
        + _load_note(speed),
        f"- Model: {speed['model']}; input {speed['image_size']} px, batch "
        f"{speed['batch_size']}, {speed['warmup_steps']} warm-up steps, "
        f"then {speed['steps']} timed steps (Adam, cross-entropy, random "
        "pixels and labels)"
        + (
            f"; every configuration ran {speed['rounds']} times, "
            "round-robin, and the table gives its best round (all rounds "
            "in the last column)."
            if speed.get("rounds", 1) > 1
            else "."
        ),
        "",
        "| configuration | train img/s | ratio to PyTorch¹ | note | rounds |",
        "|---|---|---|---|---|",
    ]
    ref = torch_reference(speed["rows"])
    for row in speed["rows"]:
        ips = row.get("images_per_second")
        ratio = f"{ips / ref:.2f}" if ips and ref else "–"
        lines.append(
            f"| {row['name']} | {num(ips, 1)} | {ratio} | "
            f"{row.get('note', '')} | "
            + ", ".join(num(v, 1) for v in row.get("rounds", []))
            + " |"
        )
    lines += [
        "",
        "¹ Ratio to the faster of the two PyTorch fp32 loops (NCHW or "
        "channels-last), so the reference is PyTorch at its best here.",
    ]
    lines += _latency_table(speed.get("saved_model_latency"))
    lines += [""]
    if ref:
        keras_best = fastest(speed["rows"], "keras")
        if keras_best:
            ratio = keras_best / ref
            lines.append(
                f"Target (Keras at least as fast as PyTorch): the fastest "
                f"Keras configuration runs at {ratio:.2f}x the faster "
                "PyTorch fp32 loop ("
                + (
                    "met)."
                    if ratio >= 1
                    else f"missed by {100 * (1 - ratio):.0f}%)."
                )
            )
            lines.append("")
    by_name = {r["name"]: r.get("images_per_second") for r in speed["rows"]}
    plain = by_name.get("keras-tensorflow fp32")
    xla = [v for k, v in by_name.items() if v and ("XLA" in k and "fp32" in k)]
    if plain and xla and max(xla) < plain:
        lines += [
            "The XLA rows (TensorFlow with `jit_compile`, JAX) are slower "
            "here than TensorFlow without XLA: XLA compiles the "
            "convolutions with its own CPU code generator, where "
            "TensorFlow without XLA calls oneDNN kernels, as PyTorch does.",
            "",
        ]
    return lines


def _latency_table(lat):
    """The exported SavedModel's latency per batch size."""
    if not lat:
        return []
    lines = [
        "",
        "Exported SavedModel (`ferzoo.export.export_saved_model`, loaded "
        "with `tf.saved_model.load`, `serve`), median of "
        f"{lat['repeats']} calls after warm-up:",
        "",
        "| batch | latency (ms) | images/s |",
        "|---|---|---|",
    ]
    for b, ms in lat["milliseconds"].items():
        lines.append(f"| {b} | {ms:.1f} | {1000 * int(b) / ms:.0f} |")
    return lines


def _load_note(speed):
    """How busy the machine was when the speed rows started.

    Only the load before the first row says whether other jobs ran: the
    rows run back to back, so each row's load average mostly counts the
    row before it.
    """
    mach = speed["machine"]
    if "load_average" not in mach:
        return (
            "load not recorded (the cores were shared with other jobs, "
            "which slows every row)"
        )
    load = mach["load_average"]
    busy = load > 0.5 * (mach.get("cpu_count") or 1)
    return (
        f"1-minute load average {load:.1f} before the first row; the "
        "configurations ran one after another"
        + (
            ", and other jobs shared the cores, which slows every row"
            if busy
            else ", with no other job running"
        )
    )
