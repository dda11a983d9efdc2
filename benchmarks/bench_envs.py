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
the untrained plant (same network and cost as the shipped one, no float64 needed);
so does EvidenceStimElectrodes (4 electrodes, currents held over the control period).
Prints a markdown table; float32 unless ``--float64``. Run:
``python -m benchmarks.bench_envs [--batches 1 64 1024] [--steps 200] [--write]``;
``--write`` replaces the environment section of results/benchmarks.md (the solver
section, written by bench_solver, is kept).
"""

import argparse
import os
import platform
import time
from pathlib import Path

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


OPTIONS = {
    "EvidenceStim-v0": {"plant": "untrained"},
    "EvidenceStimElectrodes-v0": {"plant": "untrained"},
}
ENVS = [
    "SpikeRate-v0",
    "SpikeRateBallStick-v0",
    "EvidenceStim-v0",
    "EvidenceStimElectrodes-v0",
]
RESULTS = Path("results/benchmarks.md")
SECTION = "# Environment benchmarks (CPU)"


def make_envs(names: list[str], dtype: str):
    from neuroctl.envs import make

    return {name: make(name, dtype=dtype, **OPTIONS.get(name, {})) for name in names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--envs", nargs="+", default=ENVS)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 64, 1024])
    ap.add_argument("--steps", type=int, default=200, help="control steps per timing")
    ap.add_argument("--gym-steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", type=int, default=51_200, help="max env steps a row")
    ap.add_argument("--float64", action="store_true")
    ap.add_argument("--write", action="store_true", help="update " + str(RESULTS))
    args = ap.parse_args()
    if args.float64:
        jax.config.update("jax_enable_x64", True)
    dtype = "float64" if args.float64 else "float32"
    envs = make_envs(args.envs, dtype)
    lines = [
        f"jax {jax.__version__}, {jax.devices()[0].device_kind}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        f"visible, {dtype}; load average at start {os.getloadavg()[0]:.2f}; "
        "env steps/s (1 step = 1 ms = 40 solver steps)",
        "",
        "| env | batch | scan (jit∘vmap) | scan, step_env | loop | Gymnasium |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for name, env in envs.items():
        for b in args.batches:
            lines.append(row(name, env, b, args))
            print(lines[-1], flush=True)
    lines += ["", f"Load average at the end: {os.getloadavg()[0]:.2f}"]
    print(lines[-1])
    if args.write:
        write(lines)


def row(name: str, env, b: int, args) -> str:
    """One table row: the four rates [env steps/s] at batch `b`."""
    n = max(10, min(args.steps, args.budget // b))
    n_gym = max(5, min(args.gym_steps, args.budget // b))
    rates = [
        bench_scan(env, b, n, args.repeats),
        bench_scan(env, b, n, args.repeats, reset=False),
        bench_loop(env, b, n_gym, args.repeats),
        bench_gym(env, b, n_gym, args.repeats),
    ]
    cells = " | ".join(f"{r:,.0f}" for r in rates)
    return f"| {name} | {b} | {cells} |"


def write(lines: list[str]) -> None:
    """Replace the environment section of `RESULTS` (everything from `SECTION`)."""
    text = RESULTS.read_text() if RESULTS.is_file() else ""
    head = text.split(SECTION)[0].rstrip()
    body = [
        SECTION,
        "",
        "Regenerate: `python -m benchmarks.bench_envs --write`. Rows as described in "
        "benchmarks/bench_envs.py: scan = `jit(scan(vmap(step)))` with auto-reset, "
        "step_env = without (BPTT), loop = a Python loop over `jit(vmap(step))`, "
        "Gymnasium = `GymEnv` (batch 1) or `GymVectorEnv` (NumPy API).",
        "",
        *lines,
    ]
    RESULTS.write_text((head + "\n\n" if head else "") + "\n".join(body) + "\n")


if __name__ == "__main__":
    main()
