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

DATA = Path(__file__).parents[1] / "reference"


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


@cache
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


def run(name: str, scheme: str = "be", lfp: bool = False):
    """Voltages [mV] (steps, recordings) at the manifest's dt; with `lfp`, also φ [µV].

    One compiled simulator per model structure: cases that differ only in their
    electrode currents share it.
    """
    m = manifest()
    net = build(name)
    s0 = bp.init_state(net, net.default_params, m["v_init_mV"], jnp.float64)
    stim = jnp.asarray(stimulus(name, m["dt_ms"]))
    cur = jnp.asarray(reference(name)["electrode_currents_uA"])
    out = _simulator(_structure(name), scheme, lfp)(s0, stim, cur)
    return tuple(np.asarray(x) for x in out) if lfp else np.asarray(out)


def _structure(name: str) -> str:
    c = case(name)
    keys = ("sections", "electrodes_um", "iclamps", "recordings", "lfp_um")
    return json.dumps({k: c[k] for k in keys}, sort_keys=True)


def _first_case(structure: str) -> str:
    return next(
        c["name"] for c in manifest()["cases"] if _structure(c["name"]) == structure
    )


@cache
def _simulator(structure: str, scheme: str, lfp: bool):
    name = next(
        c["name"] for c in manifest()["cases"] if _structure(c["name"]) == structure
    )
    net, dt = build(name), manifest()["dt_ms"]
    p = net.default_params
    el = electrodes(name, net) if case(name)["electrodes_um"] else None
    rec = lfp_electrodes(name, net) if lfp else None

    def sim(s0, stim, cur):
        cur = cur if el is not None else None
        if lfp:
            return simulate_with_lfp(net, p, s0, stim, dt, rec, scheme, el, cur)[1]
        return bp.simulate(
            net, p, s0, stim, dt, scheme, electrodes=el, electrode_currents=cur
        )[1]

    return jax.jit(sim)


def refined(name: str, scheme: str):
    """``f(refine) -> v`` [mV] (steps, recordings) on the manifest's dt grid.

    Each manifest step is split into `refine` substeps of dt/refine with the same
    electrode currents. `refine` is traced (a `fori_loop` inside a `scan`), so all
    refinements, and all cases of one structure, share one compilation. For cases
    without IClamps.
    """
    net = build(name)
    s0 = bp.init_state(net, net.default_params, manifest()["v_init_mV"], jnp.float64)
    cur = jnp.asarray(reference(name)["electrode_currents_uA"])
    f = _refined(_structure(name), scheme)
    return lambda refine: f(s0, cur, refine)


@cache
def _refined(structure: str, scheme: str):
    name = _first_case(structure)
    net, dt = build(name), manifest()["dt_ms"]
    p = net.default_params
    el = electrodes(name, net)
    none = jnp.zeros(0)

    def f(s0, cur, refine):
        h = dt / refine

        def coarse(s, i):
            v_ext = el.potential(i)
            s = jax.lax.fori_loop(
                0, refine, lambda _, x: bp.step(net, p, x, none, h, scheme, v_ext), s
            )
            return s, s.v[net.recording_nodes]

        return jax.lax.scan(coarse, s0, cur)[1]

    return jax.jit(f)
