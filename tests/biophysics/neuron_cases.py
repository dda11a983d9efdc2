"""Rebuild the NEURON reference cases (tests/reference/manifest.json) in neuroctl.

The manifest is written by scripts/make_neuron_references.py; it describes every case
completely (NEURON units), so no NEURON installation is needed here.
"""

import json
from functools import cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import neuroctl.biophysics as bp
from neuroctl import units

DATA = Path(__file__).parents[1] / "reference"
S = units.S_PER_CM2


@cache
def manifest() -> dict:
    return json.loads((DATA / "manifest.json").read_text())


def case(name: str) -> dict:
    return next(c for c in manifest()["cases"] if c["name"] == name)


def case_names(group: str | None = None) -> list[str]:
    return [c["name"] for c in manifest()["cases"] if group in (None, c["group"])]


def reference(name: str) -> dict:
    with np.load(DATA / case(name)["npz"]) as z:
        return dict(z)


def _mechanism(name: str, p: dict, ions: dict, celsius: float):
    ek, ena = ions.get("ek_mV", -77.0), ions.get("ena_mV", 50.0)
    if name == "hh":
        return bp.HH(
            gnabar=p["gnabar"] * S,
            gkbar=p["gkbar"] * S,
            gl=p["gl"] * S,
            el=p["el"],
            ena=ena,
            ek=ek,
            temperature=celsius,
        )
    if name == "pas":
        return bp.Leak(g=p["g"] * S, e=p["e"])
    if name == "CaPump":
        return bp.CalciumDynamics(
            gamma=p["gamma"],
            decay=p["decay"],
            depth=p["depth"],
            min_cai=p["minCai"],
            cai0=ions["cai0_mM"],
            cao=ions["cao_mM"],
            temperature=celsius,
        )
    g = p["gbar"] * S
    return {
        "NaTs2T": lambda: bp.NaTs2T(g=g, e_na=ena),
        "SKv3_1": lambda: bp.SKv3_1(g=g, e_k=ek),
        "M": lambda: bp.M(g=g, e_k=ek),
        "SKE2": lambda: bp.SKE2(g=g, e_k=ek),
        "H": lambda: bp.H(g=g, e_h=p.get("ehcn", -45.0)),
        "CaHVA": lambda: bp.CaHVA(g=g),
        "CaLVA": lambda: bp.CaLVA(g=g),
    }[name]()


def build(name: str) -> tuple[bp.Network, dict]:
    """The case's network and a map section name -> (cell, branch)."""
    c = case(name)
    where, cells = {}, []
    for sec in c["sections"]:
        if sec["parent"] is None:
            cells.append([sec])
            where[sec["name"]] = (len(cells) - 1, 0)
        else:
            cell = where[sec["parent"]][0]
            assert sec["parent_x"] == 1.0 and sec["child_x"] == 0.0
            where[sec["name"]] = (cell, len(cells[cell]))
            cells[cell].append(sec)
    built = [_cell(secs, where, c) for secs in cells]

    def site(d, sec="section", k="seg_index"):
        cell, branch = where[d[sec]]
        return bp.Site(cell, branch, d[k])

    cons = [
        bp.Connection(
            bp.GradedSynapse(
                g=s["g_uS"],
                e_syn=s["e_syn_mV"],
                v_th=s["v_th_mV"],
                delta=s["delta_mV"],
                k_minus=s["k_minus_per_ms"],
            ),
            site(s, "pre_section", "pre_seg_index"),
            site(s, "post_section", "post_seg_index"),
        )
        for s in c["synapses"]
    ]
    net = bp.Network.build(
        built, cons, [site(s) for s in c["stimuli"]], [site(r) for r in c["recordings"]]
    )
    return net, where


def _cell(secs: list[dict], where: dict, c: dict) -> bp.Cell:
    morph = bp.Morphology(
        tuple(
            bp.Branch(
                parent=-1 if s["parent"] is None else where[s["parent"]][1],
                ncomp=s["nseg"],
                length=s["L_um"],
                radius=s["diam_um"] / 2,
                axial_resistivity=s["Ra_ohm_cm"],
                capacitance=s["cm_uF_cm2"],
            )
            for s in secs
        )
    )
    cell = bp.Cell(morph)
    for b, s in enumerate(secs):
        for mech, p in s["mechanisms"].items():
            cell = cell.insert(_mechanism(mech, p, c["ions"], c["celsius_degC"]), b)
    return cell


def stimulus(name: str, dt: float) -> np.ndarray:
    """Electrode currents [nA], shape (steps, sites), by the manifest's timing rule."""
    c = case(name)
    n = int(round(c["tstop_ms"] / dt))
    t_mid = np.arange(n) * dt + 0.5 * dt
    cols = [
        np.where(
            (t_mid >= s["delay_ms"]) & (t_mid < s["delay_ms"] + s["dur_ms"]),
            s["amp_nA"],
            0.0,
        )
        for s in c["stimuli"]
    ]
    return np.stack(cols, axis=1)


def run(
    name: str,
    scheme: str,
    dt: float | None = None,
    dtype=jnp.float64,
    record_cai: bool = False,
):
    """Voltage traces [mV] (steps, recordings), optionally with cai [mM] per node."""
    dt = manifest()["dt_ms"] if dt is None else dt
    net, where = build(name)
    p = net.default_params
    s = bp.init_state(net, p, manifest()["v_init_mV"], dtype)
    record = (
        (lambda st: jnp.concatenate([st.v[net.recording_nodes], st.cai]))
        if record_cai
        else None
    )
    sim = jax.jit(lambda s, x: bp.simulate(net, p, s, x, dt, scheme, record=record)[1])
    out = np.asarray(sim(s, jnp.asarray(stimulus(name, dt), dtype)))
    return out, net, where


def spike_times(trace: np.ndarray, dt: float, threshold: float = 0.0) -> np.ndarray:
    """Upward threshold crossings [ms] of a trace sampled at t = dt, 2dt, ...

    Cubic interpolation through the four samples around each crossing keeps the
    interpolation error ~1e-6 ms at dt = 0.025 ms (linear would be ~1e-3 ms).
    """
    v = np.asarray(trace, float)
    idx = np.flatnonzero((v[:-1] < threshold) & (v[1:] >= threshold))
    out = []
    for i in idx:
        lo = int(np.clip(i - 1, 0, len(v) - 4))
        poly = np.polyfit(np.arange(lo, lo + 4) - i, v[lo : lo + 4] - threshold, 3)
        roots = [
            r.real
            for r in np.roots(poly)
            if abs(r.imag) < 1e-9 and -1e-9 <= r.real <= 1 + 1e-9
        ]
        frac = (
            min(roots, key=lambda r: abs(r - 0.5))
            if roots
            else (threshold - v[i]) / (v[i + 1] - v[i])
        )
        out.append((i + 1 + frac) * dt)  # sample i is at t = (i + 1) dt
    return np.array(out)
