"""Measure float32 vs float64 gradients of the evidence-task loss on full trials.

Prints, per trial, the relative error ‖g32 − g64‖/‖g64‖ (all leaves, and per leaf),
the cosine similarity and the sign agreement, plus compile and run times of one
checkpointed gradient in each precision and of a batch-of-8 float32 gradient.
Run: ``python scripts/plant_gradient_precision.py [n_trials]``.
"""

import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from neuroctl.biophysics import checkpoint_lengths_for  # noqa: E402
from neuroctl.plants import evidence_task as et  # noqa: E402
from neuroctl.plants.evidence_net import build_network  # noqa: E402

CFG = et.TaskConfig()
LENGTHS = checkpoint_lengths_for(CFG.n_steps)


def grad_fn(net, dtype):
    params = net.default_params

    def loss(tp, stim, label):
        trial = et.Trial(
            stimulus=stim.astype(dtype), label=label, mean=jnp.zeros((), dtype)
        )
        return et.trial_loss(net, params, tp, trial, CFG, LENGTHS)[0]

    return jax.jit(jax.value_and_grad(loss))


def flat(tree):
    return np.concatenate(
        [np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)]
    )


def timed(f, *args):
    t0 = time.perf_counter()
    out = jax.block_until_ready(f(*args))
    return out, time.perf_counter() - t0


def main(n_trials: int = 2) -> None:
    net = build_network()
    tp64 = et.init_trainable(jax.random.key(0), 109, dtype=jnp.float64)
    tp32 = jax.tree.map(lambda x: x.astype(jnp.float32), tp64)
    g64f, g32f = grad_fn(net, jnp.float64), grad_fn(net, jnp.float32)
    for i in range(n_trials):
        trial = et.sample_trial(jax.random.key(100 + i), CFG)
        (l64, g64), t64 = timed(g64f, tp64, trial.stimulus, trial.label)
        (l32, g32), t32 = timed(
            g32f, tp32, trial.stimulus.astype(jnp.float32), trial.label
        )
        a, b = flat(g64), flat(g32)
        rel = np.linalg.norm(b - a) / np.linalg.norm(a)
        cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
        sign = np.mean(np.sign(a) == np.sign(b))
        leaves = [
            np.linalg.norm(flat(y) - flat(x)) / np.linalg.norm(flat(x))
            for x, y in zip(jax.tree.leaves(g64), jax.tree.leaves(g32), strict=True)
        ]
        elem = np.abs(b - a) / (np.abs(a) + 1e-12 * np.abs(a).max())
        print(
            f"trial {i} label {int(trial.label)}: loss64 {float(l64):.6f} "
            f"loss32 {float(l32):.6f} | rel err {rel:.2e} (syn {leaves[0]:.2e}, "
            f"input {leaves[1]:.2e}) cos {cos:.6f} sign agree {sign:.3f} "
            f"median elem rel {np.median(elem):.2e} max {elem.max():.2e} "
            f"| time f64 {t64:.1f}s f32 {t32:.1f}s (first call includes compile)",
            flush=True,
        )


def directional_check(trial_seeds=(100, 102), hs=(1e-6, 1e-7, 1e-8)) -> None:
    """Central finite difference of the float64 loss along the f64 and f32 gradients."""
    net = build_network()
    tp64 = et.init_trainable(jax.random.key(0), 109, dtype=jnp.float64)
    tp32 = jax.tree.map(lambda x: x.astype(jnp.float32), tp64)
    g64f, g32f = grad_fn(net, jnp.float64), grad_fn(net, jnp.float32)
    params = net.default_params

    @jax.jit
    def loss64(tp, stim, label):
        trial = et.Trial(stimulus=stim, label=label, mean=jnp.zeros(()))
        return et.trial_loss(net, params, tp, trial, CFG)[0]

    for s in trial_seeds:
        trial = et.sample_trial(jax.random.key(s), CFG)
        _, g64 = g64f(tp64, trial.stimulus, trial.label)
        _, g32 = g32f(tp32, trial.stimulus.astype(jnp.float32), trial.label)
        for name, g in (("f64", g64), ("f32", g32)):
            n = jnp.sqrt(
                sum(
                    jnp.sum(jnp.asarray(x, jnp.float64) ** 2)
                    for x in jax.tree.leaves(g)
                )
            )
            d = jax.tree.map(lambda x, n=n: jnp.asarray(x, jnp.float64) / n, g)
            ad = sum(
                jnp.sum(jnp.asarray(a, jnp.float64) * b)
                for a, b in zip(jax.tree.leaves(g64), jax.tree.leaves(d), strict=True)
            )
            for h in hs:

                def shift(sgn, h=h, d=d):
                    return jax.tree.map(lambda p, v: p + sgn * h * v, tp64, d)

                fd = (
                    loss64(shift(1), trial.stimulus, trial.label)
                    - loss64(shift(-1), trial.stimulus, trial.label)
                ) / (2 * h)
                print(
                    f"seed {s} along the {name} gradient: central FD of the f64 loss "
                    f"(h {h:g}) {float(fd):.5e}; f64 autodiff {float(ad):.5e}",
                    flush=True,
                )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
    directional_check()
