"""The demo simulation behind ``neuroctl demo``: pure computation, no I/O."""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

import neuroctl.biophysics as bp
from neuroctl.plants.evidence_net import build_network


@dataclass(frozen=True)
class DemoResult:
    t_cell: np.ndarray  # [ms]
    v_cell: np.ndarray  # [mV] (n_amps, T, 2)
    amps: np.ndarray  # [nA]
    t_net: np.ndarray  # [ms]
    v_somata: np.ndarray  # [mV] (T, 20)
    v_readouts: np.ndarray  # [mV] (T, 2)


def ball_and_stick() -> bp.Network:
    """HH soma (20 × 20 µm) with a passive 200-µm, 10-compartment dendrite."""
    morph = bp.Morphology.ball_and_stick()
    cell = bp.Cell(morph).insert(bp.HH(), 0).insert(bp.Leak(g=0.1, e=-65.0), 1)
    return bp.Network.build(
        [cell], stimuli=[bp.Site(0)], recordings=[bp.Site(0), bp.Site(0, 1, 9)]
    )


def run_ball_and_stick(amps, duration_ms: float, dt: float, scheme: bp.solver.Scheme):
    """Voltages [mV] (n_amps, T, 2) for soma current steps of `amps` [nA]."""
    net = ball_and_stick()
    p = net.default_params
    s = bp.init_state(net, p)
    n = int(round(duration_ms / dt))
    t_mid = (np.arange(n) + 0.5) * dt
    pulse = jnp.asarray(
        ((t_mid >= 10.0) & (t_mid < duration_ms - 10.0))[:, None], jnp.float32
    )
    sim = jax.jit(jax.vmap(lambda a: bp.simulate(net, p, s, a * pulse, dt, scheme)[1]))
    return np.asarray(sim(jnp.asarray(amps, jnp.float32)))


def run_evidence_net(key, duration_ms: float, dt: float, scheme: bp.solver.Scheme):
    """Somatic and readout voltages [mV] of the (untrained) evidence RNN under noise."""
    net = build_network()
    p = net.default_params
    s = bp.init_state(net, p)
    n = int(round(duration_ms / dt))
    noise = 0.02 + 0.05 * jax.random.normal(key, (n, 1))  # [nA], common evidence
    stim = jnp.broadcast_to(noise, (n, net.n_stimuli))
    rec = jax.jit(lambda x: bp.simulate(net, p, s, x, dt, scheme)[1])(stim)
    rec = np.asarray(rec)
    return rec[:, 2:], rec[:, :2]


def run_demo(
    seed: int = 0,
    duration_ms: float = 200.0,
    dt: float = 0.025,
    scheme: bp.solver.Scheme = "cn",
) -> DemoResult:
    amps = np.array([0.1, 0.25, 0.5])  # [nA]
    v_cell = run_ball_and_stick(amps, duration_ms, dt, scheme)
    v_somata, v_readouts = run_evidence_net(
        jax.random.key(seed), duration_ms, dt, scheme
    )
    t = (np.arange(v_cell.shape[1]) + 1) * dt
    return DemoResult(t, v_cell, amps, t, v_somata, v_readouts)
