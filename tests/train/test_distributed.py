"""Two processes (jax.distributed, gloo collectives on CPU) train like one.

Each child process (sharding_worker.py) holds 2 forced host devices; together they
form a 4-device data mesh, take one data-parallel BPTT step from replicated
parameters and map a global batch of episodes assembled from each process's own
keys (`global_batch`). This process computes the same on one device. Tolerance as
in test_sharding.py (float64 rounding: another fusion and summation order).
"""

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import sharding_worker as w

from neuroctl.train import evaluate as ev

N_PROCESSES, LOCAL_DEVICES = 2, 2
BATCH = N_PROCESSES * LOCAL_DEVICES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _spawn(tmp_path) -> list[dict]:
    env = dict(
        os.environ,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={LOCAL_DEVICES}",
    )
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, w.__file__, "distributed", str(i), "2", port, tmp_path],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(N_PROCESSES)
    ]
    try:
        errs = [p.communicate(timeout=600)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, err in zip(procs, errs, strict=True):
        assert p.returncode == 0, err[-3000:]
    return [dict(np.load(tmp_path / f"process{i}.npz")) for i in range(N_PROCESSES)]


def test_two_processes_take_the_one_process_training_step(tmp_path):
    results = _spawn(tmp_path)
    state, metrics = w.policy_step(BATCH)  # one process, one device
    env, params, parts, pol, _ = w.policy_case(BATCH)
    returns = ev.run_policy(env, params, parts, pol, ev.evaluation_keys(BATCH))
    want = [np.asarray(x) for x in jax.tree.leaves(state.params)]
    for r in results:
        assert list(r["devices"]) == [BATCH, LOCAL_DEVICES]
        got = [r[f"arr_{i}"] for i in range(len(want))]
        assert w.max_diff(got, want) <= w.TOL
        assert abs(float(r["loss"]) - float(metrics.loss)) <= w.TOL
        assert w.max_diff(r["returns"], returns["return"]) <= w.TOL
    assert w.max_diff(want, jax.tree.leaves(pol)) > 1e-4  # the step moved them
