"""The demo simulation behind ``neuroctl demo``: pure computation, no I/O."""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

import neuroctl.biophysics as bp


@dataclass(frozen=True)
class DemoResult:
    t_cell: np.ndarray  # [ms]
    v_cell: np.ndarray  # [mV] (n_amps, T, 2)
    amps: np.ndarray  # [nA]
    t_net: np.ndarray  # [ms]
    v_somata: np.ndarray  # [mV] (T, 20), the label-1 trial
    v_readouts: np.ndarray  # [mV] (2 trials, T, 2)
    labels: list[int]  # per trial
    decisions: list[int]  # per trial


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


def run_shipped_plant(key):
    """The trained plant on one held-out trial of each label (float64, as trained).

    Returns somatic voltages [mV] (T, 20) of the label-1 trial and readout voltages [mV]
    (2 trials, T, 2), the labels and the decisions.
    """
    from neuroctl.plants import load
    from neuroctl.plants.evidence_task import readout_logits

    plant = load("evidence_integration")
    trials = [plant.sample_trial(k) for k in jax.random.split(key, 16)]
    picks = [next(t for t in trials if int(t.label) == lab) for lab in (0, 1)]
    sim = jax.jit(lambda stimulus: plant.simulate(stimulus))  # one compile
    recs = [np.asarray(sim(t.stimulus)) for t in picks]
    decisions = [int(np.argmax(readout_logits(r, plant.task))) for r in recs]
    labels = [int(t.label) for t in picks]
    return recs[1][:, 2:], np.stack([r[:, :2] for r in recs]), labels, decisions


def run_demo(
    seed: int = 0,
    duration_ms: float = 200.0,
    dt: float = 0.025,
    scheme: bp.solver.Scheme = "cn",
) -> DemoResult:
    """Ball-and-stick steps (`duration_ms`, `dt` [ms]) and the shipped plant."""
    amps = np.array([0.1, 0.25, 0.5])  # [nA]
    v_cell = run_ball_and_stick(amps, duration_ms, dt, scheme)
    v_somata, v_readouts, labels, decisions = run_shipped_plant(jax.random.key(seed))
    t = (np.arange(v_cell.shape[1]) + 1) * dt
    t_plant = (np.arange(v_somata.shape[0]) + 1) * 0.025  # the plant's dt [ms]
    return DemoResult(t, v_cell, amps, t_plant, v_somata, v_readouts, labels, decisions)
