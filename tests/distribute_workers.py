"""Two processes on the loopback address against one process.

Run by tests/distribute_test.py:

    python -m tests.distribute_workers BACKEND OUT METHOD N

makes a tiny METHOD preset (and `OUT/initial.keras`), starts N processes
of `ferzoo.training.train(..., distribute="data-parallel")` (one CPU
device each) that meet on the loopback address, JAX through
`keras.distribution.initialize()` with a local coordinator
(`JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`),
TensorFlow through `MultiWorkerMirroredStrategy` from a local
`TF_CONFIG`. They write `OUT/multi`, and each writes `OUT/worker<i>.json`
(its pid and `results["distribute"]`) and `OUT/predict<i>.npy` (the
initial model's predictions of 20 images, made under the distribution).
Then it trains the same preset in this process on one device
(`OUT/one`), and writes `OUT/METHOD.npz` (both runs' tables and weights,
keys `one/...` and `multi/...`, and `one/predict`) and
`OUT/workers.json` (the workers' exit codes and wall time). Each
worker's output is in `OUT/worker<i>.log`.

A worker is the same module with `--worker INDEX ADDRESSES`.
"""

import json
import os
import socket
import subprocess
import sys
import time

backend, out, method, num = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
num = int(num)
worker = sys.argv[5:6] == ["--worker"]
os.environ["KERAS_BACKEND"] = backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.pop("XLA_FLAGS", None)  # one CPU device per process
if worker:
    index, addresses = int(sys.argv[6]), sys.argv[7].split(",")
    if backend == "jax":
        os.environ["JAX_COORDINATOR_ADDRESS"] = addresses[0]
        os.environ["JAX_NUM_PROCESSES"] = str(num)
        os.environ["JAX_PROCESS_ID"] = str(index)
    else:
        os.environ["TF_CONFIG"] = json.dumps(
            {
                "cluster": {"worker": addresses},
                "task": {"type": "worker", "index": index},
            }
        )

# Killed past this many seconds (the test's bound on the whole run).
WORKER_TIMEOUT = 240
RECIPE = {
    "optimizer": "adam",
    "learning_rate": 0.002,
    "epochs": 2,
    "batch_size": 16,
    "image_size": 32,
    # The pipelines differ in how augmentation seeds are streamed per
    # worker; without augmentation every run sees identical batches.
    "augment": None,
}
# As in tests/distribute_child.py: on TensorFlow SCN's and AFCN's
# batch-level terms stay per replica, so SCN trains without them there.
TF_OVERRIDES = {"SCN": {"rank_weight": 0.0, "relabel_low_group_only": False}}
TRAIN = {
    "data": "synthetic:64",
    "noise_rate": 0.3,
    "verbose": 0,
    "overrides": {
        "warmup_epochs": 1,
        **(TF_OVERRIDES.get(method, {}) if backend == "tensorflow" else {}),
    },
}


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def images():
    import numpy as np
    import tensorflow as tf

    # 20 images in batches of 16: a partial last batch.
    x = np.random.default_rng(1).uniform(0, 255, (20, 32, 32, 3))
    return tf.data.Dataset.from_tensor_slices(x.astype("float32")).batch(16)


def run_worker():
    import keras
    import numpy as np

    from ferzoo import distribute
    from ferzoo import training

    # Whole tracebacks in the logs.
    keras.config.disable_traceback_filtering()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.debugging.disable_traceback_filtering()
    results = training.train(
        os.path.join(out, "preset"),
        output_dir=os.path.join(out, "multi"),
        distribute="data-parallel",
        **TRAIN,
    )
    # Every process predicts with the initial model: each must hold all
    # rows, in order.
    model = keras.saving.load_model(os.path.join(out, "initial.keras"))
    distribute.current().prepare(model)
    np.save(
        os.path.join(out, f"predict{index}.npy"),
        model.predict(images(), verbose=0),
    )
    with open(os.path.join(out, f"worker{index}.json"), "w") as f:
        json.dump({"pid": os.getpid(), **results["distribute"]}, f)


def launch():
    ports = free_ports(num)
    addresses = ",".join(f"127.0.0.1:{p}" for p in ports)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.getcwd(), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    procs, logs = [], []
    start = time.monotonic()
    for i in range(num):
        log = open(os.path.join(out, f"worker{i}.log"), "w")
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.distribute_workers"]
                + [backend, out, method, str(num), "--worker", str(i)]
                + [addresses],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    codes = []
    for proc in procs:
        left = WORKER_TIMEOUT - (time.monotonic() - start)
        try:
            codes.append(proc.wait(timeout=max(left, 1)))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    for log in logs:
        log.close()
    return codes, time.monotonic() - start


def make_preset(path):
    import keras

    import ferzoo
    from tests.test_case import tiny_backbone

    keras.utils.set_random_seed(0)
    model = getattr(ferzoo.models, method)(
        backbone=tiny_backbone(32), num_classes=7
    )
    model.recipe = RECIPE
    model.save_to_preset(path, {"recipe": RECIPE})
    model.save(os.path.join(out, "initial.keras"))
    return model


def arrays(run):
    import keras

    from tests.test_case import table_values

    model = keras.saving.load_model(os.path.join(run, "last.keras"))
    values = {f"table/{k}": v for k, v in table_values(model).items()}
    for i, w in enumerate(model.weights):
        values[f"weight/{i}"] = keras.ops.convert_to_numpy(w)
    return values


def main():
    os.makedirs(out, exist_ok=True)
    initial = make_preset(os.path.join(out, "preset"))
    codes, wall = launch()
    report = {"returncodes": codes, "wall_s": round(wall, 1)}
    with open(os.path.join(out, "workers.json"), "w") as f:
        json.dump(report, f)
    print("workers", report, flush=True)
    if any(codes):
        sys.exit(1)

    from ferzoo import training

    start = time.monotonic()
    training.train(
        os.path.join(out, "preset"),
        output_dir=os.path.join(out, "one"),
        distribute="none",
        **TRAIN,
    )
    print("one process", round(time.monotonic() - start, 1), "s", flush=True)
    values = {
        f"multi/{k}": v for k, v in arrays(os.path.join(out, "multi")).items()
    }
    values.update(
        {f"one/{k}": v for k, v in arrays(os.path.join(out, "one")).items()}
    )
    values["one/predict"] = initial.predict(images(), verbose=0)
    import numpy as np

    np.savez(os.path.join(out, method + ".npz"), **values)
    print("DONE", flush=True)


if worker:
    run_worker()
else:
    main()
