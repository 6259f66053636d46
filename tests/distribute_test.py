"""Two host devices against one: the same tables and weights.

Each backend's check runs `tests/distribute_child.py` in a fresh process
(the device flags must come before JAX or TensorFlow starts): every
method with per-sample tables trains 2 epochs on 64 tiny faces on one
device, then data-parallel on two (JAX host devices, TensorFlow logical
CPUs), from the same seed. A table missing one replica's rows, or rows
written twice with different values, would differ from the one-device
run; so would an epoch-end step run on half the table.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from ferzoo import distribute
from tests.test_case import REPO
from tests.test_case import TestCase

METHODS = ("SCN", "DualBranch", "AFCN", "DWMCA")
# Under a TensorFlow MirroredStrategy on two logical CPUs, AFCN's train
# step aborted ("Collective instance ... expected type 2 and data_type 3
# but got type 0 and data_type 1"): not yet supported there.
TF_METHODS = ("SCN", "DualBranch")


def run_child(out, methods, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "tests.distribute_child"]
        + [keras.backend.backend(), out, *methods],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class DistributeTest(TestCase):
    def test_invalid_mode(self):
        with self.assertRaisesRegex(ValueError, "distribute"):
            distribute.setup("model-parallel")

    def test_none_is_one_chief_worker(self):
        dist = distribute.setup("none")
        self.assertEqual((dist.num_replicas, dist.num_workers), (1, 1))
        self.assertTrue(dist.is_chief)
        self.assertEqual(str(dist.worker_output_dir("x")), "x")

    @pytest.mark.large
    def test_two_devices_match_one(self):
        tensorflow = keras.backend.backend() == "tensorflow"
        # Under tf.distribute batch normalization and batch-level loss
        # terms (SCN's ranking of the batch) see each replica's half, so
        # there only completeness is checked (docs/distributed.md).
        methods = TF_METHODS if tensorflow else METHODS
        out = self.tmp_dir()
        proc = run_child(out, methods)
        self.assertEqual(proc.returncode, 0, proc.stderr[-4000:])
        self.assertIn("'num_replicas': 2", proc.stdout)
        for method in methods:
            runs = np.load(os.path.join(out, method + ".npz"))
            tables = [k for k in runs if k.startswith("none/table/")]
            self.assertNotEqual(tables, [], method)
            exact = not tensorflow
            for key in runs:
                if not key.startswith("none/"):
                    continue
                one = runs[key]
                two = runs["data-parallel/" + key[len("none/") :]]
                msg = f"{method} {key}"
                if "/table/" in key:
                    # Rows never written stay at their fill value (NaN
                    # for float tables) in both runs: none lost.
                    np.testing.assert_array_equal(
                        np.isnan(two), np.isnan(one), err_msg=msg
                    )
                if not exact:
                    continue
                tol = 1e-4 if "/table/" in key else 1e-3
                np.testing.assert_allclose(
                    two, one, rtol=tol, atol=tol, err_msg=msg
                )


def free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def worker_env(index, ports):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("XLA_FLAGS", None)
    if keras.backend.backend() == "jax":
        env.update(
            JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{ports[0]}",
            JAX_NUM_PROCESSES="2",
            JAX_PROCESS_ID=str(index),
        )
    else:
        cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
        env["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
    return env


class TwoProcessTest(TestCase):
    @pytest.mark.large
    def test_two_processes_on_loopback_write_one_result(self):
        out = self.tmp_dir()
        run = os.path.join(out, "run")
        ports = free_ports(2)
        command = [sys.executable, "-m", "ferzoo.cli.train"]
        command += ["--preset", "scn_small_cnn_synthetic", "--data"]
        command += ["synthetic:56", "--epochs", "1", "--batch-size", "28"]
        command += ["--noise-rate", "0.3", "--distribute", "data-parallel"]
        command += ["--output-dir", run, "--json"]
        procs = [
            subprocess.Popen(
                command,
                cwd=REPO,
                env=worker_env(i, ports),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        outputs = []
        try:
            for proc in procs:
                outputs.append(proc.communicate(timeout=400))
        finally:
            for proc in procs:
                proc.kill()
        for proc, (stdout, stderr) in zip(procs, outputs):
            self.assertEqual(proc.returncode, 0, stderr[-4000:])
        chief = json.loads(outputs[0][0])
        self.assertEqual(chief["distribute"]["num_workers"], 2)
        self.assertEqual(chief["distribute"]["num_replicas"], 2)
        self.assertEqual(chief["epochs_run"], 1)
        with open(os.path.join(run, "results.json")) as f:
            self.assertEqual(json.load(f)["distribute"]["num_workers"], 2)
        names = sorted(os.listdir(run))
        self.assertEqual(names.count("results.json"), 1)
        self.assertIn("last.keras", names)
        self.assertEqual([n for n in names if "worker" in n], [])
