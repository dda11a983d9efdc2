"""One pinned measurement process of `bench_envs` (not meant to be run by hand).

``python -m benchmarks.env_worker '<case json>'``: case = {"env", "batch", "steps",
"gym_steps", "dtype"}; prints the four rates [env steps/s] of one table row as one
JSON line. Each rate is `_harness.time_min` (min of 3 repetitions of >= 1 s).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _harness as H

OPTIONS = {
    "EvidenceStim-v0": {"plant": "untrained"},
    "EvidenceStimElectrodes-v0": {"plant": "untrained"},
}


def _action(env, params, batch):
    space = env.action_space(params)
    return jnp.broadcast_to(0.5 * (space.low + space.high), (batch, *space.shape))


def scan_fn(env, batch: int, steps: int, reset=True):
    """``jit(scan(vmap(step or step_env)))`` over `steps` steps (mid-range action)."""
    params = env.default_params
    action = _action(env, params, batch)
    vstep = jax.vmap(env.step if reset else env.step_env, in_axes=(0, 0, 0, None))

    @jax.jit
    def run(key):
        _, state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(key, batch), params
        )

        def body(state, k):
            _, state, reward, _, _ = vstep(
                jax.random.split(k, batch), state, action, params
            )
            return state, reward

        return jax.lax.scan(body, state, jax.random.split(key, steps))[1]

    key = jax.random.key(0)
    return lambda: run(key)


def loop_fn(env, batch: int, steps: int):
    """A Python loop over ``jit(vmap(step))`` (dispatch and host sync included)."""
    params = env.default_params
    action = _action(env, params, batch)
    vstep = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    keys = jax.random.split(jax.random.key(0), batch)
    _, state0 = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)

    def run():
        state = state0
        for _ in range(steps):
            _, state, reward, _, _ = vstep(keys, state, action, params)
        return reward

    return run


def gym_fn(env, batch: int, steps: int):
    """`GymEnv` (batch 1) or `GymVectorEnv` (batch > 1) through the NumPy API."""
    from neuroctl.envs import GymEnv, GymVectorEnv

    gym_env = GymEnv(env) if batch == 1 else GymVectorEnv(env, batch)
    space = gym_env.action_space
    action = (0.5 * (space.low + space.high)).astype(np.float32)
    gym_env.reset(seed=0)

    def run():  # GymEnv needs a reset after an episode ends (timed: RL pays it)
        for _ in range(steps):
            out = gym_env.step(action)
            if batch == 1 and (out[2] or out[3]):
                gym_env.reset()
        return out[1]

    return run


def run_case(case: dict) -> dict:
    from neuroctl.envs import make

    if case.get("dtype") == "float64":
        jax.config.update("jax_enable_x64", True)
    name, b = case["env"], case["batch"]
    env = make(name, dtype=case.get("dtype", "float32"), **OPTIONS.get(name, {}))
    n, n_gym = case["steps"], case["gym_steps"]
    fns = {
        "scan": (scan_fn(env, b, n), n),
        "scan_step_env": (scan_fn(env, b, n, reset=False), n),
        "loop": (loop_fn(env, b, n_gym), n_gym),
        "gym": (gym_fn(env, b, n_gym), n_gym),
    }
    out = {}
    for key, (fn, steps) in fns.items():
        try:  # one failing face (e.g. a Gymnasium bug) must not hide the others
            m = H.time_min(fn)
        except Exception as err:  # reported in the table
            out[key] = {"error": f"{type(err).__name__}: {err}"[:300]}
            continue
        out[key] = {"rate": b * steps / m["s"], **m}
    return out


if __name__ == "__main__":
    H.worker_main(run_case)
