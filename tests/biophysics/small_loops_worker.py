"""Child process for test_small_loops.py: runs with NEUROCTL_XLA_SMALL_LOOPS=1.

``python small_loops_worker.py OUT.npz``: imports neuroctl first (which turns the
option on before JAX starts), then writes, in float64,
* the NEURON reference cases' max |ΔV| [mV] per case and scheme,
* the paper network's recordings [mV] (400 steps, batch 1, vmapped) and the
  gradient of a loss w.r.t. its synaptic conductances [µS],
* a 10-cell HH network's recordings [mV] (400 steps),
* whether each of those programs compiled a loop into one function,
to OUT.npz, and prints a JSON line with the scalars.
"""

import json
import sys
from pathlib import Path

import jax

import neuroctl  # noqa: F401  (first: turns the option on before JAX starts)

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2]))

from neuron_cases import case_names, reference, run  # noqa: E402

import neuroctl.biophysics as bp  # noqa: E402
from neuroctl import small_loops  # noqa: E402

SMALL_CALL = "xla_cpu_small_call"  # XLA:CPU's mark on a loop compiled as one function
T = 400
DT = 0.025  # [ms]


def paper_programs():
    """The paper network's forward and gradient (float64, batch 1, T steps)."""
    from neuroctl.plants.evidence_net import build_network

    net = build_network()
    p = net.default_params
    s = bp.init_state(net, p, -65.0, jnp.float64)
    x = jnp.asarray(
        np.random.default_rng(0).normal(0.0, 0.3, (1, T, net.n_stimuli)), jnp.float64
    )
    fwd = jax.jit(jax.vmap(lambda xi: bp.simulate(net, p, s, xi, DT)[1]))

    def loss(g):
        q = net.with_param(p, bp.GradedSynapse, "g", g)
        return bp.simulate(net, q, s, x[0], DT)[1][-100:].mean()

    grad = jax.jit(jax.grad(loss))
    g0 = jnp.asarray(p.synapses[0].g, jnp.float64)
    return (fwd, (x,)), (grad, (g0,))


def hh_program():
    from benchmarks import hh_nets

    net = hh_nets.ours(10)
    f = hh_nets.ours_runner(net, jnp.float64, DT)
    return f, (jnp.asarray(hh_nets.currents(10, T), jnp.float64),)


def one_function(f, args) -> bool:
    return SMALL_CALL in f.lower(*args).compile().as_text()


def scatters(f, args) -> int:
    return f.lower(*args).compile().as_text().count("scatter(")


def main(out: str) -> None:
    neuron = {}
    for name in case_names():
        for scheme in ("be", "cn"):
            v, net, _ = run(name, scheme)
            ref = reference(name)[f"v_{scheme}_mV"][1:]
            neuron[f"{name}/{scheme}"] = float(
                np.abs(v[:, : net.n_recordings] - ref).max()
            )
    (fwd, fa), (grad, ga) = paper_programs()
    hh, ha = hh_program()
    np.savez(
        out,
        paper_v=np.asarray(fwd(*fa)),
        paper_grad=np.asarray(grad(*ga)),
        hh_v=np.asarray(hh(*ha)),
    )
    print(
        json.dumps(
            {
                "active": small_loops.active(),
                "neuron_max_dv_mV": neuron,
                "one_function": {
                    "paper_forward": one_function(fwd, fa),
                    "paper_gradient": one_function(grad, ga),
                    "hh10_forward": one_function(hh, ha),
                },
                "scatters": {"paper_gradient": scatters(grad, ga)},
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
