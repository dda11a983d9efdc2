"""Rebuild the extracellular NEURON cases (data/neuron/extracellular_manifest.json).

Written by scripts/make_extracellular_references.py; every case is described
completely (NEURON units, geometry, electrode positions), the electrode currents per
step are in its npz.
"""

import json
from functools import cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import neuroctl.biophysics as bp
from neuroctl import units
from neuroctl.biophysics.extracellular import (
    LFPElectrodes,
    PointElectrodes,
    simulate_with_lfp,
)

DATA = Path(__file__).parent / "data" / "neuron"


@cache
def manifest() -> dict:
    return json.loads((DATA / "extracellular_manifest.json").read_text())


def case(name: str) -> dict:
    return next(c for c in manifest()["cases"] if c["name"] == name)


def reference(name: str) -> dict:
    with np.load(DATA / case(name)["npz"]) as z:
        return dict(z)


def _mechanism(name: str, p: dict):
    ions = manifest()["ions"]
    if name == "hh":
        return bp.HH(
            gnabar=p["gnabar"] * units.S_PER_CM2,
            gkbar=p["gkbar"] * units.S_PER_CM2,
            gl=p["gl"] * units.S_PER_CM2,
            el=p["el"],
            ena=ions["ena_mV"],
            ek=ions["ek_mV"],
            temperature=manifest()["celsius_degC"],
        )
    assert name == "pas"
    return bp.Leak(g=p["g"] * units.S_PER_CM2, e=p["e"])


def build(name: str) -> bp.Network:
    """The case's single cell as a network (stimuli and recordings as in NEURON)."""
    c = case(name)
    index = {s["name"]: i for i, s in enumerate(c["sections"])}
    morph = bp.Morphology(
        tuple(
            bp.Branch(
                parent=-1 if s["parent"] is None else index[s["parent"]],
                ncomp=s["nseg"],
                length=s["L_um"],
                radius=s["diam_um"] / 2,
                axial_resistivity=s["Ra_ohm_cm"],
                capacitance=s["cm_uF_cm2"],
                direction=tuple(s["direction"]),
                start=None if s["start_um"] is None else tuple(s["start_um"]),
            )
            for s in c["sections"]
        )
    )
    cell = bp.Cell(morph)
    for b, s in enumerate(c["sections"]):
        for mech, p in s["mechanisms"].items():
            cell = cell.insert(_mechanism(mech, p), b)

    def site(d):
        return bp.Site(0, index[d["section"]], d["seg_index"])

    return bp.Network.build(
        [cell],
        stimuli=[site(s) for s in c["iclamps"]],
        recordings=[site(r) for r in c["recordings"]],
    )


def stimulus(name: str, dt: float) -> np.ndarray:
    """IClamp currents [nA] per step (NEURON's rule: on iff delay <= t + dt/2 < end)."""
    c = case(name)
    n = int(round(c["tstop_ms"] / dt))
    t_mid = np.arange(n) * dt + 0.5 * dt
    cols = [
        np.where(
            (t_mid >= s["delay_ms"]) & (t_mid < s["delay_ms"] + s["dur_ms"]),
            s["amp_nA"],
            0.0,
        )
        for s in c["iclamps"]
    ]
    return np.stack(cols, axis=1) if cols else np.zeros((n, 0))


def electrodes(name: str, net: bp.Network) -> PointElectrodes:
    m = manifest()
    return PointElectrodes.build(
        net, case(name)["electrodes_um"], m["sigma_S_per_m"], m["min_distance_um"]
    )


def lfp_electrodes(name: str, net: bp.Network) -> LFPElectrodes:
    m = manifest()
    return LFPElectrodes.build(
        net, case(name)["lfp_um"], m["sigma_S_per_m"], m["min_distance_um"]
    )


def run(name: str, scheme: str = "be", refine: int = 1, lfp: bool = False):
    """Voltages [mV] (steps, recordings) at dt/refine; with `lfp`, also φ [µV].

    Electrode currents are held over each refined step (piecewise constant).
    """
    c, m = case(name), manifest()
    dt = m["dt_ms"] / refine
    net = build(name)
    p = net.default_params
    s0 = bp.init_state(net, p, m["v_init_mV"], jnp.float64)
    currents = np.repeat(reference(name)["electrode_currents_uA"], refine, axis=0)
    stim = jnp.asarray(stimulus(name, dt))
    el = electrodes(name, net) if c["electrodes_um"] else None
    cur = jnp.asarray(currents) if el is not None else None
    if lfp:
        rec = lfp_electrodes(name, net)
        sim = jax.jit(
            lambda s: simulate_with_lfp(net, p, s, stim, dt, rec, scheme, el, cur)[1]
        )
        v, phi = sim(s0)
        return np.asarray(v), np.asarray(phi)
    sim = jax.jit(
        lambda s: bp.simulate(
            net, p, s, stim, dt, scheme, electrodes=el, electrode_currents=cur
        )[1]
    )
    return np.asarray(sim(s0))
