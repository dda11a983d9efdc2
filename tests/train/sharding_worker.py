"""Run in a child process by test_sharding.py and test_distributed.py.

``python sharding_worker.py devices``: with 8 forced host devices (set by the test
in XLA_FLAGS, before JAX starts), compare sharded and one-device results; print
one JSON line of max-abs differences and error messages.

``python sharding_worker.py distributed PROCESS_ID N_PROCESSES PORT OUT``: one of
the processes of a multi-process run (gloo collectives on CPU); writes its result
to ``OUT/process<PROCESS_ID>.npz``.

`policy_case` is also imported by the tests for the one-process reference.
"""

import functools
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from neuroctl.errors import ConfigError
from neuroctl.train import sharding as sh

TOL = 1e-12  # max |sharded − one device| (why: test_sharding.py's docstring)
EPISODE_MS = 10.0  # short SpikeRate-v0 episodes keep each compile a few seconds


@functools.cache
def policy_case(batch: int):
    """SpikeRate-v0 (float64), a perturbed MLP policy and a `BPTTConfig`."""
    from neuroctl.envs import make
    from neuroctl.policies.base import split
    from neuroctl.policies.networks import build_policy
    from neuroctl.train import bptt

    env = make("SpikeRate-v0", dtype="float64", episode_ms=EPISODE_MS)
    params = env.prepare_params(None)
    io = bptt.policy_io(env, params, 0.3)
    parts, pol = split(build_policy("mlp", io, seed=1, hidden=8, dtype=jnp.float64))
    pol = jax.tree.map(
        lambda x: x + 0.3 * jnp.sin(jnp.arange(x.size)).reshape(x.shape), pol
    )  # perturbed, so actions vary with the observation
    cfg = bptt.BPTTConfig(seed=3, batch=batch, lr=0.05)
    return env, params, parts, pol, cfg


def policy_step(batch: int, mesh=None, replicated: bool = False):
    """One BPTT step from the fresh state: ``(state, metrics)``."""
    from neuroctl.train import bptt

    env, params, parts, pol, cfg = policy_case(batch)
    state = bptt.init_state(pol, cfg)
    if replicated:
        state = sh.replicate(state, mesh)
    return bptt.make_train_step(env, params, parts, cfg, mesh=mesh)(state)


def max_diff(a, b) -> float:
    """Max |a − b| over the float leaves of two pytrees."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    diffs = [
        float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
        for x, y in pairs
        if np.size(x)
    ]
    return max(diffs)


def _rollouts(mesh) -> dict:
    """Held-out stats of 12 episodes in chunks of 8 (the last one padded)."""
    from neuroctl.train import evaluate as ev

    env, params, parts, pol, _ = policy_case(8)
    keys = ev.evaluation_keys(12)
    return ev.run_policy(env, params, parts, pol, keys, chunk=8, mesh=mesh)


def _validation(mesh) -> float:
    from neuroctl.train import bptt

    env, params, parts, pol, _ = policy_case(8)
    keys = bptt.validation_keys(8)
    return float(bptt.make_validation(env, params, parts, keys, mesh)(pol))


def _plant_step(mesh):
    from neuroctl.plants import evidence_task as et
    from neuroctl.plants.evidence_net import EvidenceNetConfig, build_network
    from neuroctl.train import plant as tr

    task = et.TaskConfig(trial_ms=10.0, response_window_ms=(5.0, 10.0))
    cfg = tr.TrainConfig(seed=1, batch=8, lr=0.1, checkpoint_lengths=())
    net_cfg = EvidenceNetConfig()
    net = build_network(net_cfg)
    n_syn = net.default_params.synapses[0].g.shape[0]
    state = tr.init_state(cfg, n_syn, net_cfg.n_cells)
    step = tr.make_train_step(net, net.default_params, task, cfg, mesh)
    return step(state, tr.step_key(cfg, 0))


def _errors(mesh) -> list[str]:
    out = []
    for make in (lambda: policy_step(6, mesh), lambda: sh.data_mesh(9)):
        try:
            make()
        except ConfigError as err:
            out.append(str(err))
    return out


def devices(case: str) -> dict:
    """Sharded (8 devices) vs one device: max-abs differences and error texts.

    `case`: ``"policy"`` (batched rollouts, validation, a BPTT step, errors) or
    ``"plant"`` (a plant-training step).
    """
    jax.config.update("jax_enable_x64", True)
    mesh = sh.data_mesh(8)
    if case == "plant":
        plant1, pm1 = _plant_step(None)
        plant8, pm8 = _plant_step(mesh)
        return {
            "n_devices": len(jax.devices()),
            "plant_params": max_diff(plant1.params, plant8.params),
            "plant_metrics": max_diff(pm1, pm8),
            "plant_loss": float(pm1.loss),
        }
    out = jax.jit(sh.map_batch(lambda p, x: jnp.sin(p * x), mesh))(2.0, jnp.ones(8))
    state1, m1 = policy_step(8)
    state8, m8 = policy_step(8, mesh)
    return {
        "n_devices": len(jax.devices()),
        "out_devices": len(out.sharding.device_set),
        "out_spec": str(out.sharding.spec),
        "rollout": max_diff(_rollouts(None), _rollouts(mesh)),
        "validation": abs(_validation(None) - _validation(mesh)),
        "bptt_params": max_diff(state1.params, state8.params),
        "bptt_opt_state": max_diff(state1.opt_state, state8.opt_state),
        "bptt_metrics": max_diff(m1, m8),
        "bptt_loss": float(m1.loss),
        "errors": _errors(mesh),
    }


def distributed(process_id: int, n_processes: int, port: int, out: str) -> None:
    """One process of a data-parallel run: one BPTT step and a global batch."""
    from jax.experimental import multihost_utils

    from neuroctl.train import evaluate as ev
    from neuroctl.train.bptt import episode
    from neuroctl.train.evaluate import episode_stats

    sh.initialize_distributed(
        f"localhost:{port}", n_processes, process_id, cpu_collectives="gloo"
    )
    jax.config.update("jax_enable_x64", True)
    mesh = sh.data_mesh()  # every process's devices
    batch = mesh.size
    state, metrics = policy_step(batch, mesh, replicated=True)
    env, params, parts, pol, _ = policy_case(batch)
    per = batch // n_processes  # each process holds its own slice of the keys
    mine = ev.evaluation_keys(batch)[process_id * per : (process_id + 1) * per]

    def ret(p, k):
        return episode_stats(env, episode(env, params, parts, p, k, remat=False))

    rets = jax.jit(sh.map_batch(ret, mesh))(
        sh.replicate(pol, mesh), sh.global_batch(mine, mesh)
    )["return"]
    local = lambda tree: jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)  # noqa: E731
    np.savez(
        f"{out}/process{process_id}.npz",
        *jax.tree.leaves(local(state.params)),
        loss=np.asarray(local(metrics.loss)),
        returns=np.asarray(multihost_utils.process_allgather(rets, tiled=True)),
        devices=np.asarray([len(jax.devices()), len(jax.local_devices())]),
    )
    jax.distributed.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "devices":
        print(json.dumps(devices(sys.argv[2])))
    else:
        distributed(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
