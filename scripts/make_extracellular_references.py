#!/usr/bin/env python
"""Regenerate the NEURON references for extracellular stimulation and the LFP.

Usage (from the repository root, in a venv with ``neuron==9.0.2``)::

    python scripts/make_extracellular_references.py            # all cases
    python scripts/make_extracellular_references.py --no-write # run + print only

Writes ``tests/reference/xc_<case>.npz`` and ``tests/reference/
extracellular_manifest.json`` (a complete description of every case: the tests
rebuild the models from it). Takes a few seconds; needs only NEURON's built-in
``hh``, ``pas`` and ``extracellular``.

How the extracellular potential is applied (measured, NEURON 9.0.2):
  * ``insert extracellular`` with xg[0] = xg[1] = 1e12 S/cm2, xc = 0,
    xraxial = 1e9 MOhm/cm pins vext to ``e_extracellular`` (a transparent layer).
  * Segment positions are computed here from each section's ``start_um`` (or its
    parent's distal end) and ``direction``: centre k = start + dir * L * (k+0.5)/nseg;
    V_e = 1e3 * sum_e I_e[uA] / (4 pi sigma[S/m] r[um]) [mV], r clamped at
    ``min_distance_um``.
  * ``Vector.play(seg._ref_e_extracellular, tvec)`` with ``tvec = n*dt`` (discrete
    events): the value at t_n is in effect during the step t_n -> t_(n+1). The
    npz ``electrode_currents_uA[n]`` is the current during step n, and the played
    value at t_n is V_e of it (value at t_N: 0); self-check here: the vext that
    NEURON records at t_(n+1) equals V_e of step n. With this alignment the tests
    match to ~1e-11 mV; shifted by one step, the axon case differs by ~9 mV
    (measured once). ``finitialize`` sets vext to 0, so every series here is zero
    during step 0.
  * ``cvode.use_fast_imem(1)``: ``seg._ref_i_membrane_`` [nA], recorded at t_(n+1)
    for step n; it excludes IClamp (electrode) currents, so its sum over segments
    equals the injected current. The LFP stored here is
    phi[uV] = 1e3 * sum_seg i_membrane_[nA] / (4 pi sigma r[um]).
Every case runs fixed-step backward Euler (``be``); cases with ``"cn"`` in
``methods`` also run NEURON's Crank-Nicolson (``secondorder = 2``), whose
extracellular update is known to be wrong (v jumps by every change of vext).
"""

# ruff: noqa: E501  (long descriptive strings for the manifest)
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
from neuron import h

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "tests" / "reference"
DT = 0.025  # ms
V_INIT = -65.0  # mV
SIGMA = 0.3  # S/m
MIN_DISTANCE = 1.0  # um
XG = 1e12  # S/cm2
XRAXIAL = 1e9  # MOhm/cm

h.load_file("stdrun.hoc")
h.usetable_hh = 0
CV = h.CVode()

HH = {"hh": {"gnabar": 0.12, "gkbar": 0.036, "gl": 0.0003, "el": -54.3}}
PAS = {"pas": {"g": 1e-4, "e": -65.0}}
IONS = {"ena_mV": 50.0, "ek_mV": -77.0}


def sec(name, L, diam, nseg, mechs, parent=None, direction=(1.0, 0.0, 0.0), start=None):
    return {
        "name": name,
        "parent": parent,
        "parent_x": None if parent is None else 1.0,
        "child_x": 0.0,
        "L_um": L,
        "diam_um": diam,
        "nseg": nseg,
        "Ra_ohm_cm": 100.0,
        "cm_uF_cm2": 1.0,
        "mechanisms": mechs,
        "direction": list(direction),
        "start_um": None if start is None else list(start),
    }


def loc(section, nseg, k):
    return {"section": section, "seg_index": k, "x": (k + 0.5) / nseg}


def ball_stick_axon():
    return [
        sec("soma", 20.0, 20.0, 1, HH, start=(-10.0, 0.0, 0.0)),
        sec("dend", 200.0, 2.0, 10, PAS, "soma", (-1.0, 1.0, 0.0), start=(-10.0, 0, 0)),
        sec("axon", 500.0, 1.0, 25, HH, "soma"),
    ]


BS_RECS = [
    loc("soma", 1, 0),
    loc("dend", 10, 9),
    loc("axon", 25, 12),
    loc("axon", 25, 24),
]
LFP_POINTS = [[0.0, 40.0, 0.0], [250.0, -30.0, 0.0], [-120.0, 100.0, 10.0]]


def pulse(n_steps, start, width, amp):
    """Monophasic pulse [uA]: `amp` during steps start .. start+width-1."""
    out = np.zeros(n_steps)
    out[start : start + width] = amp
    return out


def biphasic_train(n_steps, first, period, phase, amp):
    """Cathodic-first charge-balanced biphasic pulses [uA] every `period` steps."""
    out = np.zeros(n_steps)
    for s in range(first, n_steps - 2 * phase, period):
        out[s : s + phase] = -amp
        out[s + phase : s + 2 * phase] = amp
    return out


def make_cases():
    cases = []
    axon = [sec("axon", 1000.0, 1.0, 50, HH)]
    n = 400  # 10 ms
    for tag, amp in (("supra", -80.0), ("sub", -20.0)):
        cases.append(
            {
                "name": f"axon_pulse_{tag}",
                "description": "straight HH axon (1000 um, diam 1 um, 50 segments) along x; "
                f"0.2-ms cathodic pulse of {amp} uA at 1.0 ms from a point electrode 100 um "
                "above its middle",
                "tstop_ms": n * DT,
                "sections": axon,
                "electrodes_um": [[500.0, 100.0, 0.0]],
                "waveform": f"pulse: steps 40..47 (t 1.0-1.2 ms) at {amp} uA",
                "currents": [pulse(n, 40, 8, amp)],
                "iclamps": [],
                "recordings": [loc("axon", 50, k) for k in (0, 12, 24, 25, 37, 49)],
                "lfp_um": [],
                "methods": ["be", "cn"] if tag == "supra" else ["be"],
            }
        )
    n = 1000  # 25 ms, 130-Hz train: period 308 steps = 7.7 ms (129.9 Hz)
    train = biphasic_train(n, 40, 308, 4, 100.0)
    cases.append(
        {
            "name": "ball_stick_dbs",
            "description": "HH soma (20x20 um) centred at the origin, passive dendrite (200 um, "
            "diam 2, 10 seg) from the soma's 0 end towards (-1,1,0), HH axon (500 um, diam 1, "
            "25 seg) along +x; a bipolar pair at (150,50,0) and (150,550,0) carrying "
            "+I(t) and -I(t)",
            "tstop_ms": n * DT,
            "sections": ball_stick_axon(),
            "electrodes_um": [[150.0, 50.0, 0.0], [150.0, 550.0, 0.0]],
            "waveform": "130-Hz-like biphasic train on electrode 0 (cathodic first, 0.1 ms "
            "per phase, 100 uA, every 308 steps = 7.7 ms from step 40); electrode 1 = -electrode 0",
            "currents": [train, -train],
            "iclamps": [],
            "recordings": BS_RECS,
            "lfp_um": LFP_POINTS,
            "methods": ["be"],
        }
    )
    cases.append(
        {
            "name": "ball_stick_iclamp_lfp",
            "description": "the ball-and-stick-with-axon cell, no extracellular mechanism, "
            "IClamp 0.3 nA at the soma from 2 to 17 ms; LFP at three points",
            "tstop_ms": 20.0,
            "sections": ball_stick_axon(),
            "electrodes_um": [],
            "waveform": "none",
            "currents": [],
            "iclamps": [dict(loc("soma", 1, 0), delay_ms=2.0, dur_ms=15.0, amp_nA=0.3)],
            "recordings": BS_RECS,
            "lfp_um": LFP_POINTS,
            "methods": ["be"],
        }
    )
    return cases


def segment_centres(sections):
    """{section name: (nseg, 3) centres [um]} from start/direction, parents first."""
    ends, out = {}, {}
    for s in sections:
        if s["start_um"] is not None:
            start = np.array(s["start_um"], float)
        elif s["parent"] is not None:
            start = ends[s["parent"]]
        else:
            start = np.zeros(3)
        d = np.array(s["direction"], float)
        d /= np.linalg.norm(d)
        frac = (np.arange(s["nseg"]) + 0.5) / s["nseg"]
        out[s["name"]] = start + np.outer(frac * s["L_um"], d)
        ends[s["name"]] = start + s["L_um"] * d
    return out


def transfer(points, sources):
    """1e3 / (4 pi sigma r): mV per uA (or uV per nA), r clamped at MIN_DISTANCE."""
    d = np.asarray(points)[:, None, :] - np.asarray(sources)[None, :, :]
    r = np.maximum(np.sqrt((d**2).sum(-1)), MIN_DISTANCE)
    return 1e3 / (4 * np.pi * SIGMA * r)


class Model:
    def __init__(self, case):
        h.celsius = 6.3
        self.secs = {}
        for s in case["sections"]:
            sc = h.Section(name=s["name"])
            sc.nseg, sc.L, sc.diam = s["nseg"], s["L_um"], s["diam_um"]
            sc.Ra, sc.cm = s["Ra_ohm_cm"], s["cm_uF_cm2"]
            for mech, params in s["mechanisms"].items():
                sc.insert(mech)
                for p, val in params.items():
                    for seg in sc:
                        setattr(seg, f"{p}_{mech}", val)
            if case["electrodes_um"]:
                sc.insert("extracellular")
                for seg in sc:
                    seg.xg[0] = seg.xg[1] = XG
                    seg.xc[0] = seg.xc[1] = 0.0
                    seg.xraxial[0] = seg.xraxial[1] = XRAXIAL
            if s["parent"] is not None:
                sc.connect(self.secs[s["parent"]](s["parent_x"]), s["child_x"])
            self.secs[s["name"]] = sc
        for sc in self.secs.values():
            if h.ismembrane("hh", sec=sc):
                sc.ena, sc.ek = IONS["ena_mV"], IONS["ek_mV"]
        self.segs = [seg for s in case["sections"] for seg in self.secs[s["name"]]]
        centres = segment_centres(case["sections"])
        self.xyz = np.concatenate([centres[s["name"]] for s in case["sections"]])
        self.stims = []
        for st in case["iclamps"]:
            ic = h.IClamp(self.seg(st))
            ic.delay, ic.dur, ic.amp = st["delay_ms"], st["dur_ms"], st["amp_nA"]
            self.stims.append(ic)

    def seg(self, d):
        return self.secs[d["section"]](d["x"])


def run(case, method):
    model = Model(case)
    n = int(round(case["tstop_ms"] / DT))
    played = []
    if case["electrodes_um"]:
        ve = np.array(case["currents"]).T @ transfer(model.xyz, case["electrodes_um"]).T
        ve = np.vstack([ve, np.zeros((1, ve.shape[1]))])  # (n+1, nseg): value at t_n
        tvec = h.Vector(DT * np.arange(n + 1))
        for k, seg in enumerate(model.segs):
            vec = h.Vector(ve[:, k])
            vec.play(seg._ref_e_extracellular, tvec, 0)
            played.append(vec)
    CV.active(0)
    CV.use_fast_imem(1)
    h.dt, h.secondorder = DT, (0 if method == "be" else 2)
    vrec = [h.Vector().record(model.seg(r)._ref_v) for r in case["recordings"]]
    if played:  # alignment self-check: vext recorded at t_(n+1) is V_e of step n
        xrec = h.Vector().record(model.segs[0]._ref_vext[0])
    irec = [h.Vector().record(seg._ref_i_membrane_) for seg in model.segs]
    srec = [h.Vector().record(s._ref_i) for s in model.stims]
    h.finitialize(V_INIT)
    for _ in range(n):
        h.fadvance()
    if played:
        err = np.abs(np.array(xrec)[1:] - ve[:-1, 0]).max()
        assert err < 1e-9 * max(1.0, np.abs(ve).max()), err
    out = {
        "v": np.column_stack([np.array(x) for x in vrec]),
        "imem": np.column_stack([np.array(x) for x in irec]),
        "iclamp": np.column_stack([np.array(x) for x in srec]) if srec else None,
        "xyz": model.xyz,
    }
    CV.use_fast_imem(0)
    del played, model
    return out


def spikes(v, thr=0.0):
    return int(np.sum((v[:-1] < thr) & (v[1:] >= thr)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    entries = []
    for case in make_cases():
        n = int(round(case["tstop_ms"] / DT))
        currents = np.array(case["currents"]).reshape(-1, n).T  # (n, n_electrodes)
        data = {"electrode_currents_uA": currents}
        res = {}
        for m in case["methods"]:
            res[m] = run(case, m)
            data[f"v_{m}_mV"] = res[m]["v"]
        be = res["be"]
        data["segment_xyz_um"] = be["xyz"]
        if case["lfp_um"]:
            data["lfp_be_uV"] = be["imem"] @ transfer(case["lfp_um"], be["xyz"]).T
            data["imem_sum_be_nA"] = be["imem"].sum(1)
        if be["iclamp"] is not None:
            data["iclamp_be_nA"] = be["iclamp"]
        counts = [spikes(be["v"][:, k]) for k in range(be["v"].shape[1])]
        entry = {k: v for k, v in case.items() if k != "currents"}
        entry["npz"] = f"xc_{case['name']}.npz"
        entry["results"] = {"spike_counts_be": counts}
        entries.append(entry)
        size = sum(a.nbytes for a in data.values())
        print(
            f"{case['name']}: spikes per recording (be) {counts}, {size / 1e3:.0f} kB raw"
        )
        if not args.no_write:
            np.savez_compressed(OUT_DIR / entry["npz"], **data)
    if not args.no_write:
        (OUT_DIR / "extracellular_manifest.json").write_text(
            json.dumps(build_manifest(entries), indent=1) + "\n"
        )


def build_manifest(entries):
    return {
        "format_version": 1,
        "generated_by": "scripts/make_extracellular_references.py",
        "neuron_version": h.nrnversion(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "dt_ms": DT,
        "v_init_mV": V_INIT,
        "celsius_degC": 6.3,
        "ions": IONS,
        "sigma_S_per_m": SIGMA,
        "min_distance_um": MIN_DISTANCE,
        "extracellular_settings": {
            "xg_S_per_cm2": XG,
            "xc_uF_per_cm2": 0.0,
            "xraxial_MOhm_per_cm": XRAXIAL,
        },
        "potential": "V_e[mV] = 1e3 * sum_e I_e[uA] / (4 pi sigma[S/m] max(r[um], min_distance)) at each segment centre",
        "lfp": "phi[uV] = 1e3 * sum_seg i_membrane_[nA] / (4 pi sigma max(r, min_distance)); i_membrane_ from cvode.use_fast_imem(1), excludes IClamp currents",
        "geometry": "centre k of a section = start + unit(direction) * L * (k + 0.5)/nseg; start = start_um, else the parent's distal end, else the origin",
        "alignment": "electrode_currents_uA[n] is the current during the step t_n -> t_(n+1); NEURON plays V_e of it at t_n (Vector.play(ref, tvec), discrete), which is in effect for that step. Arrays v_*, lfp_*, imem_sum_* have n+1 rows (t_0 ... t_N); row n+1 follows step n",
        "integrators": {
            "be": "h.secondorder = 0",
            "cn": "h.secondorder = 2 (NEURON's CN with extracellular is not consistent: v jumps by every change of vext)",
        },
        "cases": entries,
    }


if __name__ == "__main__":
    main()
