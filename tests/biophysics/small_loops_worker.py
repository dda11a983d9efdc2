"""Child process for test_small_loops.py: runs with NEUROCTL_XLA_SMALL_LOOPS=1.

``python small_loops_worker.py OUT.npz``: imports neuroctl first (which turns the
option on before JAX starts), then writes, in float64,
* the NEURON reference cases' max |ΔV| [mV] per case and scheme,
* the paper network's recordings [mV] (400 steps, batch 1, vmapped) and the
  gradient of a loss w.r.t. its synaptic conductances [µS],
* a 10-cell HH network's recordings [mV] (400 steps),
* two bushy cells' recordings [mV] and gradient (`tree_programs`: tree levels too
  irregular for slices, electrodes at scattered nodes, a synapse),
* whether each of those programs, and each NEURON case's, compiled a loop into one
  function, and how many scatters they hold,
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


def tree_programs():
    """Two bushy HH cells' forward (float64, T steps) and gradient.

    60 random branches of 2 compartments per cell, a graded synapse between them,
    electrodes at three scattered nodes: the tree elimination has levels of index
    arrays (not slices), the axial current its gather/segment-sum form, the
    electrode currents a sum over index arrays. The gradient is of a loss w.r.t.
    the sodium conductance ``gnabar`` [mS/cm²].
    """
    rng = np.random.default_rng(0)
    parents = [-1] + [int(rng.integers(0, max(1, i // 2))) for i in range(1, 60)]
    morph = bp.Morphology.from_parents(parents, ncomp=2, length=30.0, radius=0.8)
    cell = bp.Cell(morph).insert(bp.HH())
    syn = bp.Connection(bp.GradedSynapse(g=0.05), bp.Site(0, 0), bp.Site(1, 20))
    net = bp.Network.build(
        [cell, cell],
        [syn],
        stimuli=[bp.Site(0), bp.Site(1, 7), bp.Site(0, 3)],
        recordings=[bp.Site(0), bp.Site(1, 50), bp.Site(0, 41, 1)],
    )
    arrays = [
        g for level in net.levels for g in level if not isinstance(g.children, slice)
    ]
    assert arrays, "the test tree needs levels of index arrays"
    p = net.default_params
    s = bp.init_state(net, p, -65.0, jnp.float64)
    x = jnp.asarray(
        np.random.default_rng(1).normal(0.4, 0.3, (T, net.n_stimuli)), jnp.float64
    )
    fwd = jax.jit(lambda x: bp.simulate(net, p, s, x, DT)[1])
    g_na = p.channels[0].gnabar

    def loss(g):
        q = net.with_param(p, bp.HH, "gnabar", g)
        return bp.simulate(net, q, s, x, DT)[1][-100:].mean()

    return (fwd, (x,)), (jax.jit(jax.grad(loss)), (jnp.asarray(g_na, jnp.float64),))


def one_function(f, args) -> bool:
    return SMALL_CALL in f.lower(*args).compile().as_text()


def scatters(f, args) -> int:
    return f.lower(*args).compile().as_text().count("scatter(")


def neuron_case_program(name: str):
    """A NEURON case's forward simulation (as `neuron_cases.run` builds it)."""
    from neuron_cases import build, manifest, stimulus

    dt = manifest()["dt_ms"]
    net, _ = build(name)
    p = net.default_params
    s = bp.init_state(net, p, manifest()["v_init_mV"], jnp.float64)
    f = jax.jit(lambda s, x: bp.simulate(net, p, s, x, dt)[1])
    return f, (s, jnp.asarray(stimulus(name, dt), jnp.float64))


def main(out: str) -> None:
    neuron, loops = {}, {}
    for name in case_names():
        for scheme in ("be", "cn"):
            v, net, _ = run(name, scheme)
            ref = reference(name)[f"v_{scheme}_mV"][1:]
            neuron[f"{name}/{scheme}"] = float(
                np.abs(v[:, : net.n_recordings] - ref).max()
            )
        loops[f"neuron/{name}"] = neuron_case_program(name)
    (fwd, fa), (grad, ga) = paper_programs()
    hh, ha = hh_program()
    (tree, ta), (tree_grad, tga) = tree_programs()
    loops.update(
        paper_forward=(fwd, fa),
        paper_gradient=(grad, ga),
        hh10_forward=(hh, ha),
        tree_forward=(tree, ta),
        tree_gradient=(tree_grad, tga),
    )
    np.savez(
        out,
        paper_v=np.asarray(fwd(*fa)),
        paper_grad=np.asarray(grad(*ga)),
        hh_v=np.asarray(hh(*ha)),
        tree_v=np.asarray(tree(*ta)),
        tree_grad=np.asarray(tree_grad(*tga)),
    )
    print(
        json.dumps(
            {
                "active": small_loops.active(),
                "neuron_max_dv_mV": neuron,
                "one_function": {k: one_function(*fa) for k, fa in loops.items()},
                "scatters": {k: scatters(*fa) for k, fa in loops.items()},
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
