"""Data parallelism over 8 forced host devices equals one device (float64).

XLA_FLAGS must be set before JAX starts, so each case runs sharding_worker.py in a
child process with ``--xla_force_host_platform_device_count=8`` and compares, in
that process, the sharded run with the one-device run of the same code.

Tolerance: the per-episode code is the same, but XLA fuses a batch of one episode
per device differently from a batch of eight, and the batch mean (loss, gradient)
sums the devices' partial results in another order, so results agree to float64
rounding, not bit for bit. Measured max |sharded − one device|: 1.8e-14 on the
rollout stats (|values| up to ~70: mV, nA², pC), 8.9e-16 on the validation
return, 1.4e-17 on the policy params after one Adam step, 1.8e-14 on the step
metrics; plant step: 2.7e-15 on the logits, 6.9e-18 on the metrics. The bound
1e-12 is ~50× the largest and ~10⁴ × float64's eps (2.2e-16) relative to O(1-100)
values: a real bug (a missing or doubled shard, a wrong mean) moves them by O(1).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sharding_worker import TOL

WORKER = Path(__file__).with_name("sharding_worker.py")


def _run(case: str) -> dict:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    res = subprocess.run(
        [sys.executable, str(WORKER), "devices", case],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def policy() -> dict:
    return _run("policy")


def test_batched_rollouts_and_a_bptt_step_on_8_devices_equal_one_device(policy):
    assert policy["n_devices"] == 8
    assert (policy["out_devices"], policy["out_spec"]) == (8, "P('data',)")
    for name in ("rollout", "validation", "bptt_params", "bptt_opt_state"):
        assert policy[name] <= TOL, (name, policy[name])
    assert policy["bptt_metrics"] <= TOL
    assert abs(policy["bptt_loss"]) > 0.1  # a real loss, not an empty batch


def test_an_indivisible_batch_names_the_field_value_and_fix(policy):
    batch, devices = policy["errors"]
    assert batch.startswith("batch: got 6 (type int), expected a multiple of the 8")
    assert "use batch=8" in batch
    assert devices.startswith("devices: got 9")
    assert "--xla_force_host_platform_device_count=9" in devices


def test_a_plant_training_step_on_8_devices_equals_one_device():
    plant = _run("plant")
    assert plant["n_devices"] == 8
    assert plant["plant_params"] <= TOL and plant["plant_metrics"] <= TOL
    assert 0.3 < plant["plant_loss"] < 2.0  # cross-entropy of a fresh net ≈ ln 2
