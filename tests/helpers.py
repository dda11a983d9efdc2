"""Small model factories shared by the tests."""

import dataclasses

import jax.numpy as jnp
import numpy as np

import neuroctl.biophysics as bp
from neuroctl.plants import load
from neuroctl.plants.evidence import EvidencePlant

DT = 0.025  # [ms]


def hh_point(area_side: float = 18.8) -> bp.Network:
    """One HH compartment with NEURON's L = diam = `area_side` [µm]."""
    cell = bp.Cell(
        bp.Morphology.single_compartment(length=area_side, radius=area_side / 2)
    ).insert(bp.HH())
    return bp.Network.build([cell], stimuli=[bp.Site(0)], recordings=[bp.Site(0)])


def two_cells(g_ex: float = 0.005, g_in: float = 0.002) -> bp.Network:
    cell = bp.Cell(bp.Morphology.single_compartment(18.8, 9.4)).insert(bp.HH())
    cons = [
        bp.Connection(bp.GradedSynapse(g=g_ex, e_syn=0.0), bp.Site(0), bp.Site(1)),
        bp.Connection(bp.GradedSynapse(g=g_in, e_syn=-75.0), bp.Site(1), bp.Site(0)),
    ]
    return bp.Network.build(
        [cell, cell], cons, stimuli=[bp.Site(0)], recordings=[bp.Site(0), bp.Site(1)]
    )


def step_current(n_steps: int, amp: float, delay: float, dur: float, dt: float = DT):
    """IClamp as NEURON applies it: on when delay <= t + dt/2 < delay + dur [nA]."""
    t_mid = np.arange(n_steps) * dt + 0.5 * dt
    return jnp.asarray(np.where((t_mid >= delay) & (t_mid < delay + dur), amp, 0.0))


def short_plant(trial_ms: float = 30.0) -> EvidencePlant:
    """The shipped (trained) plant on a short trial: the last 5 ms are the window."""
    plant = load("evidence_integration")
    task = dataclasses.replace(
        plant.task, trial_ms=trial_ms, response_window_ms=(trial_ms - 5.0, trial_ms)
    )
    return EvidencePlant(
        plant.network, plant.params, plant.g, plant.input_weights, task, "short"
    )


def cli_help() -> str:
    """``neuroctl --help`` as a new user sees it, 200 columns wide (asserts exit 0)."""
    import os
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "neuroctl.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def gymnasium_return(env, params, actions, seed: int) -> tuple[float, int]:
    """``(return, steps)`` of `actions` replayed through the Gymnasium face.

    The episode of ``reset(seed=seed)`` in physical action units; the trajectory
    whose actions these are must come from ``key_from_np_random(seeding.np_random(
    seed)[0])`` for the two to be the same episode.
    """
    from neuroctl.envs import GymEnv

    gym = GymEnv(env, params, normalize_actions=False)
    gym.reset(seed=seed)
    total, done, t = 0.0, False, 0
    while not done:
        _, r, term, trunc, _ = gym.step(np.asarray(actions[t]))
        total, done, t = total + r, term or trunc, t + 1
    return total, t
