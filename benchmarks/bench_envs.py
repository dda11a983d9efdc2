"""Env throughput: control steps per second, functional (jit∘vmap) and via Gymnasium.

Rows:

* ``scan``: ``jit(scan(vmap(env.step)))`` over `--steps` control steps at batch B
  (auto-reset inside; what a JAX RL loop such as rejax/purejaxrl sees); ``scan,
  step_env``: the same without auto-reset (what BPTT sees; EvidenceStim's reset
  draws a 20,800-step trial, which auto-reset computes every step under vmap);
* ``loop``: a Python loop calling ``jit(vmap(env.step))`` once per control step
  (dispatch and host transfer included);
* ``gym``: `GymEnv` (B = 1) and `GymVectorEnv` (B > 1) through their NumPy API.

One control step = 1 ms of simulated time = 40 solver steps at dt 0.025 ms. Timed
steps are capped at ``--budget`` env steps per row (batch × steps). EvidenceStim uses
the untrained plant (same network and cost as the shipped one, no float64 needed).
Prints a markdown table; float32 unless ``--float64``. Run:
``python benchmarks/bench_envs.py [--batches 1 64 1024] [--steps 200]``.
"""

import argparse
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np


def best_time(fn, repeats: int) -> float:
    """Best wall time [s] of `repeats` calls of `fn` (after one warm-up call)."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_scan(env, batch: int, steps: int, repeats: int, reset=True) -> float:
    """Env steps/s of ``jit(scan(vmap(step or step_env)))`` (mid-range action)."""
    params = env.default_params
    space = env.action_space(params)
    action = jnp.broadcast_to(0.5 * (space.low + space.high), (batch, *space.shape))
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

    return batch * steps / best_time(lambda: run(jax.random.key(0)), repeats)


def bench_loop(env, batch: int, steps: int, repeats: int) -> float:
    """Env steps/s of a Python loop over ``jit(vmap(step))``."""
    params = env.default_params
    space = env.action_space(params)
    action = jnp.broadcast_to(0.5 * (space.low + space.high), (batch, *space.shape))
    vstep = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    keys = jax.random.split(jax.random.key(0), batch)
    _, state0 = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)

    def run():
        state = state0
        for _ in range(steps):
            _, state, reward, _, _ = vstep(keys, state, action, params)
        return reward

    return batch * steps / best_time(run, repeats)


def bench_gym(env, batch: int, steps: int, repeats: int) -> float:
    """Env steps/s through `GymEnv` (batch 1) or `GymVectorEnv` (batch > 1)."""
    from neuroctl.envs import GymEnv, GymVectorEnv

    gym_env = GymEnv(env) if batch == 1 else GymVectorEnv(env, batch)
    space = gym_env.action_space
    action = (0.5 * (space.low + space.high)).astype(np.float32)
    gym_env.reset(seed=0)

    def run():
        for _ in range(steps):
            out = gym_env.step(action)
        return out[1]

    return batch * steps / best_time(run, repeats)


OPTIONS = {"EvidenceStim-v0": {"plant": "untrained"}}


def make_envs(names: list[str], dtype: str):
    from neuroctl.envs import make

    return {name: make(name, dtype=dtype, **OPTIONS.get(name, {})) for name in names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--envs", nargs="+", default=["SpikeRate-v0", "SpikeRateBallStick-v0"]
    )
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 64, 1024])
    ap.add_argument("--steps", type=int, default=200, help="control steps per timing")
    ap.add_argument("--gym-steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", type=int, default=51_200, help="max env steps a row")
    ap.add_argument("--float64", action="store_true")
    args = ap.parse_args()
    if args.float64:
        jax.config.update("jax_enable_x64", True)
    dtype = "float64" if args.float64 else "float32"
    envs = make_envs(args.envs, dtype)
    print(
        f"jax {jax.__version__}, {jax.devices()[0].device_kind}, "
        f"{platform.processor() or platform.machine()}, {dtype}; "
        "env steps/s (1 step = 1 ms = 40 solver steps)\n"
    )
    print("| env | batch | scan (jit∘vmap) | scan, step_env | loop | Gymnasium |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, env in envs.items():
        for b in args.batches:
            n = max(10, min(args.steps, args.budget // b))
            n_gym = max(5, min(args.gym_steps, args.budget // b))
            rates = [
                bench_scan(env, b, n, args.repeats),
                bench_scan(env, b, n, args.repeats, reset=False),
                bench_loop(env, b, n_gym, args.repeats),
                bench_gym(env, b, n_gym, args.repeats),
            ]
            cells = " | ".join(f"{r:,.0f}" for r in rates)
            print(f"| {name} | {b} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
