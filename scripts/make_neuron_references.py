#!/usr/bin/env python
"""Regenerate the golden NEURON reference data in ``tests/reference/``.

Usage (from the repository root, inside the venv that has NEURON 9)::

    python scripts/make_neuron_references.py            # all cases
    python scripts/make_neuron_references.py --only hay  # cases whose name contains "hay"
    python scripts/make_neuron_references.py --no-write  # run + print, write nothing

Every case is described by a plain dict (the same dict that goes into ``manifest.json``)
and the NEURON model is *built from that dict*, so the manifest is a complete description:
a test without NEURON can rebuild the identical model from it.  Each case is run with
three integrators: fixed-step backward Euler (``be``), fixed-step Crank-Nicolson (``cn``)
and CVODE (``cvode``).  Output: one ``<case>.npz`` per case plus ``manifest.json``.

The .mod files in ``scripts/neuron_mod/`` are compiled with ``nrnivmodl`` on demand
(the build folder ``x86_64/`` is git-ignored).

Self-checks run on every invocation (the script fails if one fails):
  * the IClamp timing rule (``delay <= t_n + dt/2 < delay + dur``) against NEURON's own
    recorded stimulus current, for every case and fixed-step integrator;
  * for ``hay_single*``: a pure-Python re-implementation of one fixed step (BE and CN)
    with the ordering stated in the manifest reproduces NEURON's v and cai traces to
    round-off; the variants "SKE2 sees the old cai" / "eca from the old cai" do not;
  * NEURON's recorded eca equals Nernst(cai) with NEURON's constants (one step lag of the
    recorded value, see manifest), and eca really changes during the Hay runs.
Informational results per case (manifest ``results``): spike counts, spike-time
differences of be/cn vs CVODE, the CVODE error estimated from a run at atol 1e-12, and
NEURON's own BE/CN convergence at dt = 0.025 ... 0.003125 ms.  Takes ~15-20 s.
"""

# ruff: noqa: E501  (long descriptive strings for the manifest)
from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MOD_DIR = ROOT / "scripts" / "neuron_mod"
OUT_DIR = ROOT / "tests" / "reference"

DT = 0.025  # ms
V_INIT = -65.0  # mV
CVODE_ATOL = 1e-9
CVODE_RTOL = 0.0
SWEEP_DTS = (0.025, 0.0125, 0.00625, 0.003125)  # ms, NEURON's own BE/CN convergence
CVODE_ATOL_CHECK = (
    1e-12  # a second, tighter CVODE run estimates the error of the stored one
)
METHODS = ("be", "cn", "cvode")

# Mechanism names as registered by the .mod files in scripts/neuron_mod (+ NEURON built-ins).
MOD_MECHANISMS = {
    "NaTs2T": "NaTs2T.mod: transient Na (Hay NaTs2_t), i = gbar*m^3*h*(v - ena)",
    "SKv3_1": "SKv3_1.mod: Kv3.1, i = gbar*m*(v - ek)",
    "M": "M.mod: M current (Hay Im), i = gbar*m*(v - ek)",
    "H": "H.mod: Ih, NONSPECIFIC_CURRENT ihcn = gbar*m*(v - ehcn), ehcn parameter",
    "CaHVA": "CaHVA.mod: HVA Ca, ica = gbar*m^2*h*(v - eca)",
    "CaLVA": "CaLVA.mod: LVA Ca, ica = gbar*m^2*h*(v - eca)",
    "SKE2": "SKE2.mod: SK, i = gbar*z*(v - ek), z gated by cai",
    "CaPump": "CaPump.mod: CaDynamics_E2 (writes cai)",
    "GradedSyn": "graded_syn.mod: graded synapse point process (POINTER vpre)",
}


# ----------------------------------------------------------------------------------------
# NEURON set-up
# ----------------------------------------------------------------------------------------
def build_mods() -> None:
    """Compile scripts/neuron_mod/*.mod with nrnivmodl if the library is missing/stale."""
    lib = MOD_DIR / "x86_64" / "libnrnmech.so"
    mods = sorted(MOD_DIR.glob("*.mod"))
    if lib.exists() and all(lib.stat().st_mtime >= m.stat().st_mtime for m in mods):
        return
    exe = shutil.which("nrnivmodl") or str(Path(sys.executable).parent / "nrnivmodl")
    print(f"compiling {len(mods)} mod files with {exe} ...", flush=True)
    res = subprocess.run([exe], cwd=MOD_DIR, capture_output=True, text=True)
    if res.returncode != 0 or not lib.exists():
        print(res.stdout[-4000:], res.stderr[-4000:])
        raise SystemExit("nrnivmodl failed")


build_mods()
import neuron  # noqa: E402
from neuron import h  # noqa: E402

neuron.load_mechanisms(str(MOD_DIR))
h.load_file("stdrun.hoc")
h.usetable_hh = 0
CV = h.CVode()

FARADAY = float(h.FARADAY)  # C/mol, NEURON's value (the mod files use the same)
R_GAS = float(h.R)  # J/(mol K)


def nernst_ca(cai, cao, celsius):
    """NEURON's nrn_nernst for z = 2: 1000*R*(celsius+273.15)/FARADAY / 2 * ln(cao/cai)."""
    ktf = 1000.0 * R_GAS * (celsius + 273.15) / FARADAY
    return ktf / 2.0 * np.log(cao / np.asarray(cai))


# ----------------------------------------------------------------------------------------
# Case definitions (these dicts are written to the manifest verbatim)
# ----------------------------------------------------------------------------------------
HH_MECH = {"hh": {"gnabar": 0.12, "gkbar": 0.036, "gl": 0.0003, "el": -54.3}}
PAS_DEND = {"pas": {"g": 1e-4, "e": -65.0}}
CA_PUMP = {"gamma": 0.000609, "decay": 210.485, "depth": 0.1, "minCai": 1e-4}
HAY_IONS = {
    "ena_mV": 50.0,
    "ek_mV": -85.0,
    "ehcn_mV": -45.0,
    "cai0_mM": 5e-5,
    "cao_mM": 2.0,
    "ehcn_note": "ehcn is the parameter ehcn of mechanism H (also listed there)",
    "eca": "nernst(cai, cao) at celsius, computed by NEURON's ca_ion each step",
}
HH_IONS = {"ena_mV": 50.0, "ek_mV": -77.0}


def sec(name, L, diam, nseg, Ra, cm, mechs, parent=None):
    return {
        "name": name,
        "parent": parent,
        "parent_x": None if parent is None else 1.0,
        "child_x": 0.0,
        "L_um": L,
        "diam_um": diam,
        "nseg": nseg,
        "Ra_ohm_cm": Ra,
        "cm_uF_cm2": cm,
        "mechanisms": copy.deepcopy(mechs),
    }


def loc(section, nseg, k):
    return {"section": section, "seg_index": k, "x": (k + 0.5) / nseg}


def fmt_amp(a):
    return ("a" + f"{a:g}").replace(".", "p").replace("-", "m")


def make_cases():
    cases = []

    # 1. single-compartment HH ----------------------------------------------------------
    for amp in (0.02, 0.1, 0.2, 0.4):
        cases.append(
            {
                "name": f"hh_single_{fmt_amp(amp)}",
                "group": "hh_single",
                "description": "single-compartment Hodgkin-Huxley soma (NEURON built-in hh)",
                "celsius_degC": 6.3,
                "tstop_ms": 50.0,
                "sections": [sec("soma", 18.8, 18.8, 1, 100.0, 1.0, HH_MECH)],
                "ions": dict(HH_IONS),
                "stimuli": [
                    dict(loc("soma", 1, 0), delay_ms=5.0, dur_ms=35.0, amp_nA=amp)
                ],
                "synapses": [],
                "recordings": [loc("soma", 1, 0)],
                "ion_recordings": [],
            }
        )

    # 2. soma + 3 dendrites ---------------------------------------------------------------
    dends = [
        ("dend0", 200.0, 2.0, 9, PAS_DEND),
        ("dend1", 150.0, 1.5, 7, PAS_DEND),
        ("dend2", 300.0, 1.0, 15, HH_MECH),
    ]
    secs = [sec("soma", 20.0, 20.0, 1, 150.0, 1.0, HH_MECH)]
    recs = [loc("soma", 1, 0)]
    for name, L, d, n, m in dends:
        secs.append(sec(name, L, d, n, 150.0, 1.0, m, parent="soma"))
        recs += [loc(name, n, n // 2), loc(name, n, n - 1)]
    for tag, stim_loc, amp in (
        ("stim_soma", loc("soma", 1, 0), 0.5),
        ("stim_dend2_tip", loc("dend2", 15, 14), 0.15),
    ):
        cases.append(
            {
                "name": f"soma_3dend_{tag}",
                "group": "soma_3dend",
                "description": "HH soma with two passive dendrites and one HH dendrite, all "
                "attached to soma(1)",
                "celsius_degC": 6.3,
                "tstop_ms": 40.0,
                "sections": copy.deepcopy(secs),
                "ions": dict(HH_IONS),
                "stimuli": [dict(stim_loc, delay_ms=2.0, dur_ms=25.0, amp_nA=amp)],
                "synapses": [],
                "recordings": copy.deepcopy(recs),
                "ion_recordings": [],
            }
        )

    # 3. two HH cells, graded synapses ------------------------------------------------------
    syn_common = {"v_th_mV": -35.0, "delta_mV": 10.0, "k_minus_per_ms": 1.0}
    cases.append(
        {
            "name": "two_cells_synapse",
            "group": "two_cells_synapse",
            "description": "two single-compartment HH cells; graded excitatory synapse "
            "cell0->cell1 and graded inhibitory synapse cell1->cell0",
            "celsius_degC": 6.3,
            "tstop_ms": 60.0,
            "sections": [
                sec("cell0_soma", 18.8, 18.8, 1, 100.0, 1.0, HH_MECH),
                sec("cell1_soma", 18.8, 18.8, 1, 100.0, 1.0, HH_MECH),
            ],
            "ions": dict(HH_IONS),
            "stimuli": [
                dict(loc("cell0_soma", 1, 0), delay_ms=5.0, dur_ms=40.0, amp_nA=0.3)
            ],
            "synapses": [
                dict(
                    name="syn_ex",
                    pre_section="cell0_soma",
                    pre_seg_index=0,
                    pre_x=0.5,
                    post_section="cell1_soma",
                    post_seg_index=0,
                    post_x=0.5,
                    g_uS=0.005,
                    e_syn_mV=0.0,
                    **syn_common,
                ),
                dict(
                    name="syn_in",
                    pre_section="cell1_soma",
                    pre_seg_index=0,
                    pre_x=0.5,
                    post_section="cell0_soma",
                    post_seg_index=0,
                    post_x=0.5,
                    g_uS=0.002,
                    e_syn_mV=-75.0,
                    **syn_common,
                ),
            ],
            "recordings": [loc("cell0_soma", 1, 0), loc("cell1_soma", 1, 0)],
            "ion_recordings": [],
        }
    )

    # 4. Hay single compartment ----------------------------------------------------------------
    hay_soma = {
        "NaTs2T": {"gbar": 0.983955},
        "SKv3_1": {"gbar": 0.303472},
        "SKE2": {"gbar": 0.008407},
        "CaHVA": {"gbar": 0.000994},
        "CaLVA": {"gbar": 0.000333},
        "M": {"gbar": 0.000143},
        "H": {"gbar": 1e-4, "ehcn": -45.0},
        "pas": {"g": 3e-5, "e": -75.0},
        "CaPump": dict(CA_PUMP),
    }
    for amp in HAY_AMPS:
        cases.append(
            {
                "name": f"hay_single_{fmt_amp(amp)}",
                "group": "hay_single",
                "description": "single compartment with the Hay et al. 2011 channel set",
                "celsius_degC": 34.0,
                "tstop_ms": 200.0,
                "sections": [sec("soma", 10.0, 2.0, 1, 100.0, 1.0, hay_soma)],
                "ions": dict(HAY_IONS),
                "stimuli": [
                    dict(loc("soma", 1, 0), delay_ms=10.0, dur_ms=150.0, amp_nA=amp)
                ],
                "synapses": [],
                "recordings": [loc("soma", 1, 0)],
                "ion_recordings": [dict(loc("soma", 1, 0), var="cai")],
            }
        )

    # 5. the paper's RNN cell ---------------------------------------------------------------------
    apical = {
        "NaTs2T": {"gbar": 0.026145},
        "SKv3_1": {"gbar": 0.004226},
        "M": {"gbar": 0.000143},
        "H": {"gbar": 1e-4, "ehcn": -45.0},
        "pas": {"g": 3e-5, "e": -75.0},
    }
    soma = {
        "CaHVA": {"gbar": 0.000994},
        "CaLVA": {"gbar": 0.000333},
        "SKv3_1": {"gbar": 0.303472},
        "SKE2": {"gbar": 0.008407},
        "NaTs2T": {"gbar": 0.983955},
        "CaPump": dict(CA_PUMP),
        "pas": {"g": 3e-5, "e": -75.0},
    }
    basal = {"H": {"gbar": 8e-5, "ehcn": -45.0}, "pas": {"g": 3e-5, "e": -75.0}}
    cases.append(
        {
            "name": "paper_cell",
            "group": "paper_cell",
            "description": "evidence-integration RNN cell of the Jaxley paper: apical (root), "
            "soma and basal both attached to apical(1)",
            "celsius_degC": 34.0,
            "tstop_ms": 200.0,
            "sections": [
                sec("apical", 10.0, 2.0, 1, 100.0, 2.0, apical),
                sec("soma", 10.0, 2.0, 1, 100.0, 1.0, soma, parent="apical"),
                sec("basal", 10.0, 2.0, 1, 100.0, 1.0, basal, parent="apical"),
            ],
            "ions": dict(HAY_IONS),
            "stimuli": [
                dict(loc("basal", 1, 0), delay_ms=10.0, dur_ms=150.0, amp_nA=PAPER_AMP)
            ],
            "synapses": [],
            "recordings": [loc("apical", 1, 0), loc("soma", 1, 0), loc("basal", 1, 0)],
            "ion_recordings": [dict(loc("soma", 1, 0), var="cai")],
        }
    )
    return cases


HAY_AMPS = (0.01, 0.05)
PAPER_AMP = 0.02


# ----------------------------------------------------------------------------------------
# Build / run
# ----------------------------------------------------------------------------------------
class Model:
    """A NEURON model built from a case dict; drop the object to delete it."""

    def __init__(self, case):
        assert len(list(h.allsec())) == 0, "sections left over from a previous case"
        h.celsius = case["celsius_degC"]
        ions = case["ions"]
        if "cai0_mM" in ions:
            h.cai0_ca_ion = ions["cai0_mM"]
            h.cao0_ca_ion = ions["cao_mM"]
        self.secs = {}
        for s in case["sections"]:
            sc = h.Section(name=s["name"])
            sc.nseg = s["nseg"]
            sc.L = s["L_um"]
            sc.diam = s["diam_um"]
            sc.Ra = s["Ra_ohm_cm"]
            sc.cm = s["cm_uF_cm2"]
            for mech, params in s["mechanisms"].items():
                sc.insert(mech)
                for p, val in params.items():
                    for seg in sc:
                        setattr(seg, f"{p}_{mech}", val)
            self.secs[s["name"]] = sc
        for s in case["sections"]:
            if s["parent"] is not None:
                self.secs[s["name"]].connect(
                    self.secs[s["parent"]](s["parent_x"]), s["child_x"]
                )
        for sc in self.secs.values():
            if h.ismembrane("na_ion", sec=sc):
                sc.ena = ions["ena_mV"]
            if h.ismembrane("k_ion", sec=sc):
                sc.ek = ions["ek_mV"]
        self.stims = []
        for st in case["stimuli"]:
            ic = h.IClamp(self.seg(st))
            ic.delay = st["delay_ms"]
            ic.dur = st["dur_ms"]
            ic.amp = st["amp_nA"]
            self.stims.append(ic)
        self.syns = []
        for sy in case["synapses"]:
            pre = self.secs[sy["pre_section"]](sy["pre_x"])
            gs = h.GradedSyn(self.secs[sy["post_section"]](sy["post_x"]))
            h.setpointer(pre._ref_v, "vpre", gs)
            gs.g = sy["g_uS"]
            gs.e_syn = sy["e_syn_mV"]
            gs.v_th = sy["v_th_mV"]
            gs.delta = sy["delta_mV"]
            gs.k_minus = sy["k_minus_per_ms"]
            self.syns.append(gs)

    def seg(self, d):
        sc = self.secs[d["section"]]
        assert abs(d["x"] - (d["seg_index"] + 0.5) / sc.nseg) < 1e-12
        return sc(d["x"])


def crossings(t, v, thr=0.0):
    """Upward crossings v[i] < thr <= v[i+1], linearly interpolated."""
    v = np.asarray(v)
    i = np.nonzero((v[:-1] < thr) & (v[1:] >= thr))[0]
    return t[i] + (t[i + 1] - t[i]) * (thr - v[i]) / (v[i + 1] - v[i])


def pad(lists):
    n = max([len(x) for x in lists] + [1])
    out = np.full((len(lists), n), np.nan)
    for k, x in enumerate(lists):
        out[k, : len(x)] = x
    return out


def run(case, method, extra_record=False, atol=CVODE_ATOL, dt=DT):
    """Run one case with one integrator (fixed step: step dt; CVODE: samples every dt).
    Returns a dict of numpy arrays."""
    model = Model(case)
    nsteps = int(round(case["tstop_ms"] / dt))
    tstop = nsteps * dt
    h.dt = dt
    refs = [model.seg(r)._ref_v for r in case["recordings"]]
    ion_refs = [
        getattr(model.seg(r), f"_ref_{r['var']}") for r in case["ion_recordings"]
    ]
    eca_refs = [
        model.seg(r)._ref_eca for r in case["ion_recordings"] if r["var"] == "cai"
    ]
    out = {}
    if method in ("be", "cn"):
        CV.active(0)
        h.secondorder = 0 if method == "be" else 2
        tvec = h.Vector().record(h._ref_t)
        vecs = [h.Vector().record(r) for r in refs]
        ivecs = [h.Vector().record(r) for r in ion_refs]
        evecs = [h.Vector().record(r) for r in eca_refs]
        stim_vecs = [h.Vector().record(s._ref_i) for s in model.stims]
        extra = {}
        if extra_record:  # for the ordering self-check
            sg = model.seg(case["recordings"][0])
            for name in ("z_SKE2", "ica"):
                extra[name] = h.Vector().record(getattr(sg, f"_ref_{name}"))
        h.finitialize(V_INIT)
        for _ in range(nsteps):
            h.fadvance()
        t = np.array(tvec)
        assert len(t) == nsteps + 1, (len(t), nsteps)
        assert np.max(np.abs(t - dt * np.arange(nsteps + 1))) < 1e-9
        out["t"] = dt * np.arange(nsteps + 1)
        out["v"] = np.column_stack([np.array(x) for x in vecs])
        if ivecs:
            out["ion"] = np.column_stack([np.array(x) for x in ivecs])
            eca_rec = np.column_stack([np.array(x) for x in evecs])
            # The recorded eca at sample n+1 is the value NEURON used during step n
            # (ca_ion recomputes eca from cai at the start of each step's current
            # evaluation).  Shift it so that eca[n] = value in effect from t_n on; for the
            # last sample let NEURON evaluate it once more (fcurrent).
            h.fcurrent()
            last = np.array([r[0] for r in eca_refs])
            out["eca_raw"] = eca_rec
            out["eca"] = np.vstack([eca_rec[1:], last[None, :]])
        out["stim_i"] = [np.array(x) for x in stim_vecs]
        out["extra"] = {k: np.array(x) for k, x in extra.items()}
        out["spikes"] = [crossings(out["t"], out["v"][:, k]) for k in range(len(refs))]
    else:
        CV.active(1)
        CV.atol(atol)
        CV.rtol(CVODE_RTOL)
        # default condition_order 1 puts a NetCon event at the end of the CVODE step
        # (errors ~1e-3 ms); order 2 interpolates within the step (~1e-7 ms at atol 1e-12)
        CV.condition_order(2)
        ts = h.Vector(dt * np.arange(nsteps + 1))
        vecs = [h.Vector().record(r, ts) for r in refs]
        ivecs = [h.Vector().record(r, ts) for r in ion_refs]
        spk = []
        ncs = []
        for r in case["recordings"]:
            sg = model.seg(r)
            nc = h.NetCon(sg._ref_v, None, sec=sg.sec)
            nc.threshold = 0.0
            sv = h.Vector()
            nc.record(sv)
            ncs.append(nc)
            spk.append(sv)
        h.finitialize(V_INIT)
        CV.solve(tstop)
        assert abs(h.t - tstop) < 1e-12
        # the sample at t = tstop itself is not delivered by solve(tstop): append it
        for vec, r in zip(vecs + ivecs, refs + ion_refs, strict=True):
            if len(vec) == nsteps:
                vec.append(r[0])
        out["t"] = dt * np.arange(nsteps + 1)
        out["v"] = np.column_stack([np.array(x) for x in vecs])
        assert out["v"].shape[0] == nsteps + 1
        if ivecs:
            out["ion"] = np.column_stack([np.array(x) for x in ivecs])
            cao = case["ions"]["cao_mM"]
            out["eca"] = nernst_ca(out["ion"], cao, case["celsius_degC"])
        out["spikes"] = [np.array(x) for x in spk]
        out["spikes_from_samples"] = [
            crossings(out["t"], out["v"][:, k]) for k in range(len(refs))
        ]
        del ncs
        CV.active(0)
    del model
    return out


# ----------------------------------------------------------------------------------------
# Self-checks
# ----------------------------------------------------------------------------------------
def check_stim_rule(case, res, method):
    """NEURON's IClamp current during step n (recorded at sample n+1) vs the stated rule."""
    n = np.arange(len(res["t"]) - 1)
    tn = n * DT
    worst = 0.0
    for st, i_rec in zip(case["stimuli"], res["stim_i"], strict=True):
        on = (st["delay_ms"] <= tn + DT / 2) & (
            tn + DT / 2 < st["delay_ms"] + st["dur_ms"]
        )
        expected = np.where(on, st["amp_nA"], 0.0)
        worst = max(worst, float(np.max(np.abs(i_rec[1:] - expected))))
        assert i_rec[0] == 0.0
    if worst != 0.0:
        raise AssertionError(f"{case['name']} {method}: IClamp rule mismatch {worst}")
    return worst


def _efun(x, y):
    return y if x == 0 else x / (math.exp(x / y) - 1.0)


QT = 2.3 ** ((34 - 21) / 10)


def hay_rates(v):
    """(inf, tau) of every voltage gate, as in the .mod files."""
    r = {}
    a, b = 0.182 * _efun(-(v + 32), 6), 0.124 * _efun(v + 32, 6)
    r["na_m"] = (a / (a + b), 1 / (a + b) / QT)
    a, b = 0.015 * _efun(v + 60, 6), 0.015 * _efun(-(v + 60), 6)
    r["na_h"] = (a / (a + b), 1 / (a + b) / QT)
    r["kv3_m"] = (
        1 / (1 + math.exp((v - 18.7) / -9.7)),
        0.2 * 20.0 / (1 + math.exp((v + 46.56) / -44.14)),
    )
    a, b = (
        3.3e-3 * math.exp(2.5 * 0.04 * (v + 35)),
        3.3e-3 * math.exp(-2.5 * 0.04 * (v + 35)),
    )
    r["m_m"] = (a / (a + b), 1 / (a + b) / QT)
    a, b = 0.001 * 6.43 * _efun(v + 154.9, 11.9), 0.001 * 193 * math.exp(v / 33.1)
    r["h_m"] = (a / (a + b), 1 / (a + b))
    a, b = 0.055 * _efun(-27 - v, 3.8), 0.94 * math.exp((-75 - v) / 17)
    r["hva_m"] = (a / (a + b), 1 / (a + b))
    a, b = 0.000457 * math.exp((-13 - v) / 50), 0.0065 / (math.exp((-v - 15) / 28) + 1)
    r["hva_h"] = (a / (a + b), 1 / (a + b))
    vs = v + 10
    r["lva_m"] = (
        1 / (1 + math.exp((vs + 30) / -6)),
        (5.0 + 20.0 / (1 + math.exp((vs + 25) / 5))) / QT,
    )
    r["lva_h"] = (
        1 / (1 + math.exp((vs + 80) / 6.4)),
        (20.0 + 50.0 / (1 + math.exp((vs + 40) / 7))) / QT,
    )
    return r


def ske2_zinf(cai):
    ca = cai + 1e-7 if cai < 1e-7 else cai
    return 1 / (1 + (0.00043 / ca) ** 4.8)


def replica_hay_single(
    case, method, ske2_old_cai=False, eca_old=False, no_ica_corr=False
):
    """Pure-Python fixed step for the single-compartment Hay case, with the ordering of
    the manifest: (a) voltage solve with gates/eca of t_n, (b) cai with ica(t_n)
    (CN: + dica/dv * dv_half), eca = Nernst(new cai), (c) gates at v_{n+1}, z with new cai.
    """
    s = case["sections"][0]
    mech = s["mechanisms"]
    ions = case["ions"]
    st = case["stimuli"][0]
    area = math.pi * s["diam_um"] * s["L_um"]  # um^2
    cm = s["cm_uF_cm2"]
    ena, ek, cao = ions["ena_mV"], ions["ek_mV"], ions["cao_mM"]
    ehcn = mech["H"]["ehcn"]
    gp, ep = mech["pas"]["g"], mech["pas"]["e"]
    pump = mech["CaPump"]
    g = {
        k: mech[k]["gbar"]
        for k in ("NaTs2T", "SKv3_1", "SKE2", "CaHVA", "CaLVA", "M", "H")
    }
    celsius = case["celsius_degC"]
    ktf = 1000.0 * R_GAS * (celsius + 273.15) / FARADAY
    v = V_INIT
    cai = ions["cai0_mM"]
    eca = ktf / 2 * math.log(cao / cai)
    x = {k: val[0] for k, val in hay_rates(v).items()}
    z = ske2_zinf(cai)
    nsteps = int(round(case["tstop_ms"] / DT))
    vs, cais = [v], [cai]
    cfac = (1.0 if method == "be" else 2.0) * cm / DT * 1e-3
    for n in range(nsteps):
        tmid = n * DT + DT / 2
        istim = (
            st["amp_nA"]
            if st["delay_ms"] <= tmid < st["delay_ms"] + st["dur_ms"]
            else 0.0
        )
        gna = g["NaTs2T"] * x["na_m"] ** 3 * x["na_h"]
        gk = g["SKv3_1"] * x["kv3_m"] + g["M"] * x["m_m"] + g["SKE2"] * z
        gh = g["H"] * x["h_m"]
        gca = (
            g["CaHVA"] * x["hva_m"] ** 2 * x["hva_h"]
            + g["CaLVA"] * x["lva_m"] ** 2 * x["lva_h"]
        )
        ica = gca * (v - eca)
        iion = gna * (v - ena) + gk * (v - ek) + gh * (v - ehcn) + ica + gp * (v - ep)
        rhs = istim * 100.0 / area - iion
        dv = rhs / (cfac + gna + gk + gh + gca + gp)
        if method == "cn":
            if not no_ica_corr:
                ica = ica + gca * dv
            v = v + 2 * dv
        else:
            v = v + dv
        cai_old = cai
        drive = -10000.0 * ica * pump["gamma"] / (2 * FARADAY * pump["depth"])
        cinf = pump["minCai"] + pump["decay"] * drive
        cai = cai + (1 - math.exp(-DT / pump["decay"])) * (cinf - cai)
        if not eca_old:
            eca = ktf / 2 * math.log(cao / cai)
        r = hay_rates(v)
        for k in x:
            inf, tau = r[k]
            x[k] = x[k] + (1 - math.exp(-DT / tau)) * (inf - x[k])
        z = z + (1 - math.exp(-DT / 1.0)) * (
            ske2_zinf(cai_old if ske2_old_cai else cai) - z
        )
        if (
            eca_old
        ):  # lagged: the next step uses Nernst(cai_n) instead of Nernst(cai_{n+1})
            eca = ktf / 2 * math.log(cao / cai_old)
        vs.append(v)
        cais.append(cai)
    return np.array(vs), np.array(cais)


# ----------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------
def n_common(res, m, k):
    return min(len(res[m]["spikes"][k]), len(res["cvode"]["spikes"][k]))


def first_spike_diff(a, b):
    n = min(len(a), len(b))
    if n == 0:
        return None
    return float(np.max(np.abs(np.asarray(a[:n]) - np.asarray(b[:n]))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--only", default=None, help="run only cases whose name contains this"
    )
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    t_start = time.time()
    cases = make_cases()
    if args.only:
        cases = [c for c in cases if args.only in c["name"]]
    checks = {
        "stim_rule_verified": [],
        "hay_replica": {},
        "eca_nernst_max_abs_err_mV": {},
        "eca_range_mV": {},
    }
    manifest_cases = []
    for case in cases:
        t0 = time.time()
        res = {
            m: run(case, m, extra_record=case["group"] == "hay_single") for m in METHODS
        }
        nsteps = len(res["be"]["t"]) - 1
        tight = run(case, "cvode", atol=CVODE_ATOL_CHECK)
        cvode_acc = {
            "reference_atol": CVODE_ATOL_CHECK,
            "max_abs_dv_mV": float(np.max(np.abs(res["cvode"]["v"] - tight["v"]))),
            "max_abs_spike_dt_ms": max(
                [
                    first_spike_diff(a, b) or 0.0
                    for a, b in zip(
                        res["cvode"]["spikes"], tight["spikes"], strict=True
                    )
                ]
            ),
            "same_spike_counts": [len(a) for a in res["cvode"]["spikes"]]
            == [len(b) for b in tight["spikes"]],
        }
        for m in ("be", "cn"):
            check_stim_rule(case, res[m], m)
        checks["stim_rule_verified"].append(case["name"])

        data = {"t_ms": res["be"]["t"]}
        for m in METHODS:
            data[f"v_{m}_mV"] = res[m]["v"]
            data[f"spikes_{m}_ms"] = pad(res[m]["spikes"])
            data[f"nspikes_{m}"] = np.array(
                [len(s) for s in res[m]["spikes"]], dtype=np.int64
            )
            if case["ion_recordings"]:
                data[f"cai_{m}_mM"] = res[m]["ion"]
                data[f"eca_{m}_mV"] = res[m]["eca"]
        data["spikes_cvode_from_samples_ms"] = pad(res["cvode"]["spikes_from_samples"])

        if case["ion_recordings"]:
            cao = case["ions"]["cao_mM"]
            errs = []
            for m in ("be", "cn"):
                cai = res[m]["ion"]
                # raw recorded eca at n+1 == Nernst(cai at n)
                errs.append(
                    np.max(
                        np.abs(
                            res[m]["eca_raw"][1:]
                            - nernst_ca(cai[:-1], cao, case["celsius_degC"])
                        )
                    )
                )
                errs.append(
                    np.max(
                        np.abs(
                            res[m]["eca"] - nernst_ca(cai, cao, case["celsius_degC"])
                        )
                    )
                )
            checks["eca_nernst_max_abs_err_mV"][case["name"]] = float(max(errs))
            assert max(errs) < 1e-9, errs
            e = res["be"]["eca"]
            checks["eca_range_mV"][case["name"]] = [float(e.min()), float(e.max())]
            assert e.max() - e.min() > 1.0, "eca did not change with cai"

        if case["group"] == "hay_single":
            rep = {}
            for m in ("be", "cn"):
                for variant, kw in (
                    ("stated_order", {}),
                    ("variant_SKE2_sees_old_cai", {"ske2_old_cai": True}),
                    ("variant_eca_from_old_cai", {"eca_old": True}),
                    ("variant_no_cn_ica_correction", {"no_ica_corr": True}),
                ):
                    if m == "be" and "cn_ica" in variant:
                        continue
                    vv, cc = replica_hay_single(case, m, **kw)
                    rep[f"{m}_{variant}"] = {
                        "max_abs_dv_mV": float(np.max(np.abs(vv - res[m]["v"][:, 0]))),
                        "max_rel_dcai": float(
                            np.max(
                                np.abs(cc - res[m]["ion"][:, 0]) / res[m]["ion"][:, 0]
                            )
                        ),
                    }
            checks["hay_replica"][case["name"]] = rep
            for m in ("be", "cn"):
                assert rep[f"{m}_stated_order"]["max_abs_dv_mV"] < 1e-6, rep
                assert (
                    rep[f"{m}_variant_SKE2_sees_old_cai"]["max_abs_dv_mV"]
                    > 100 * rep[f"{m}_stated_order"]["max_abs_dv_mV"]
                ), rep

        # NEURON's own fixed-step convergence (soma spike times vs the stored CVODE run)
        soma_k = next(
            (
                k
                for k, r in enumerate(case["recordings"])
                if r["section"].endswith("soma")
            ),
            0,
        )
        sweep = {}
        for m in ("be", "cn"):
            sweep[m] = {}
            for dt in SWEEP_DTS:
                sp = (
                    res[m]["spikes"][soma_k]
                    if dt == DT
                    else run(case, m, dt=dt)["spikes"][soma_k]
                )
                ref = res["cvode"]["spikes"][soma_k]
                sweep[m][f"{dt:g}"] = {
                    "nspikes": len(sp),
                    "max_abs_dt_ms": first_spike_diff(sp, ref),
                }

        # summary ------------------------------------------------------------------------
        summary = {}
        for m in METHODS:
            summary[m] = [len(s) for s in res[m]["spikes"]]
        diffs = {}
        for m in ("be", "cn"):
            diffs[m] = [
                first_spike_diff(res[m]["spikes"][k], res["cvode"]["spikes"][k])
                for k in range(len(case["recordings"]))
            ]
        netcon_vs_samples = [
            first_spike_diff(a, b)
            for a, b in zip(
                res["cvode"]["spikes"], res["cvode"]["spikes_from_samples"], strict=True
            )
        ]
        print(f"== {case['name']}  ({time.time() - t0:.1f} s, {nsteps} steps)")
        for m in METHODS:
            sp = res[m]["spikes"][soma_k]
            print(
                f"   {m:5s} n_spikes per site {summary[m]}; "
                f"{case['recordings'][soma_k]['section']} spikes: "
                + (
                    np.array2string(sp, precision=4, max_line_width=200)
                    if len(sp)
                    else "none"
                )
            )
        for m in ("be", "cn"):
            print(
                f"   max|t_{m} - t_cvode| per site (common spikes): "
                + ", ".join("-" if d is None else f"{d:.4g}" for d in diffs[m])
            )
        print(
            f"   cvode (atol {CVODE_ATOL:g}) vs atol {CVODE_ATOL_CHECK:g}: max|dt_spike| "
            f"{cvode_acc['max_abs_spike_dt_ms']:.2g} ms, max|dv| {cvode_acc['max_abs_dv_mV']:.2g} mV"
        )
        if case["ion_recordings"]:
            c = res["be"]["ion"][:, 0]
            print(
                f"   cai range {c.min():.3g}..{c.max():.3g} mM, eca range "
                f"{checks['eca_range_mV'][case['name']]} mV"
            )
        if case["group"] == "hay_single":
            print(
                "   replica:",
                {
                    k: f"{v['max_abs_dv_mV']:.2e}"
                    for k, v in checks["hay_replica"][case["name"]].items()
                },
            )

        entry = copy.deepcopy(case)
        entry["n_steps"] = nsteps
        entry["npz"] = f"{case['name']}.npz"
        entry["npz_keys"] = {
            k: {"shape": list(np.shape(val)), "dtype": str(np.asarray(val).dtype)}
            for k, val in data.items()
        }
        entry["results"] = {
            "nspikes": summary,
            "soma_recording_index": soma_k,
            "max_abs_spike_time_diff_vs_cvode_ms": diffs,
            "soma_spike_time_diff_vs_cvode_ms": {
                m: (
                    np.asarray(res[m]["spikes"][soma_k][: n_common(res, m, soma_k)])
                    - np.asarray(
                        res["cvode"]["spikes"][soma_k][: n_common(res, m, soma_k)]
                    )
                ).tolist()
                for m in ("be", "cn")
            },
            "cvode_error_estimate_vs_tighter_run": cvode_acc,
            "neuron_fixed_step_dt_sweep_soma_vs_cvode": sweep,
            "cvode_max_abs_netcon_vs_linear_interp_of_dt_samples_ms": netcon_vs_samples,
        }
        manifest_cases.append(entry)
        if not args.no_write:
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(OUT_DIR / entry["npz"], **data)

    manifest = build_manifest(manifest_cases, checks)
    if not args.no_write:
        if args.only:
            # merge into an existing manifest
            old = OUT_DIR / "manifest.json"
            if old.exists():
                prev = json.loads(old.read_text())
                keep = [
                    c
                    for c in prev["cases"]
                    if c["name"] not in {c2["name"] for c2 in manifest_cases}
                ]
                order = [c2["name"] for c2 in make_cases()]
                manifest["cases"] = sorted(
                    keep + manifest_cases, key=lambda c: order.index(c["name"])
                )
                done = set(prev["self_checks"]["stim_rule_verified"]) | set(
                    checks["stim_rule_verified"]
                )
                manifest["self_checks"]["stim_rule_verified"] = [
                    n for n in order if n in done
                ]
                for k in ("hay_replica", "eca_nernst_max_abs_err_mV", "eca_range_mV"):
                    merged = dict(prev["self_checks"][k])
                    merged.update(checks[k])
                    manifest["self_checks"][k] = merged
        (OUT_DIR / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"total {time.time() - t_start:.1f} s")


def build_manifest(cases, checks):
    return {
        "format_version": 1,
        "generated_by": "scripts/make_neuron_references.py",
        "neuron_version": h.nrnversion(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "units": {
            "time": "ms",
            "voltage": "mV",
            "length": "um",
            "diam": "um",
            "Ra": "ohm*cm",
            "cm": "uF/cm2",
            "channel densities": "S/cm2 (NEURON)",
            "stimulus amp": "nA",
            "synaptic conductance g": "uS",
            "concentrations": "mM",
            "CaPump depth": "um",
            "CaPump decay": "ms",
            "membrane current density in NEURON": "mA/cm2",
            "point-process current": "nA; enters a segment as i*100/area_um2 mA/cm2",
        },
        "dt_ms": DT,
        "v_init_mV": V_INIT,
        "initialisation": "h.finitialize(v_init): every voltage = v_init, every gate at its "
        "steady state for v_init (GradedSyn s = s_inf(vpre = v_init)), "
        "cai = cai0, SKE2 z = z_inf(cai0), eca = Nernst(cai0, cao)",
        "integrators": {
            "be": "fixed step, h.secondorder = 0, cvode off; N = round(tstop/dt) h.fadvance() "
            "calls; traces have N+1 samples (t = 0 ... tstop)",
            "cn": "fixed step, h.secondorder = 2 (Crank-Nicolson: voltage solve with 2*cm/dt, "
            "v_{n+1} = v_n + 2*dv; ionic currents corrected by di/dv*dv before the "
            "state updates), otherwise as be",
            "cvode": {
                "setting": "h.CVode().active(1), global variable step",
                "atol": CVODE_ATOL,
                "rtol": CVODE_RTOL,
                "atolscale": "all 1 (defaults)",
                "voltage samples": "Vector.record(ref, tvec) at t = n*dt, n = 0..N "
                "(CVODE interpolation)",
                "spikes": "NetCon(seg._ref_v, None) threshold 0 mV, NetCon.record, with "
                "CVode.condition_order(2) (crossing interpolated within the CVODE "
                "step; the default order 1 reports the step end, ~1e-3 ms off). "
                "Error estimate per case: results.cvode_error_estimate_vs_tighter_run",
                "stimulus discontinuities": "NEURON's built-in IClamp stops and re-initialises "
                "CVODE at delay and delay+dur (at_time; checked: "
                "step boundaries at t = delay +- 1e-13)",
            },
        },
        "fixed_step_spike_detection": "upward 0-mV crossings v[i] < 0 <= v[i+1] of the stored "
        "trace, linear interpolation in t; npz spikes_* arrays "
        "have shape (n_recordings, max_count), NaN padded; "
        "nspikes_* gives the counts",
        "stimulus_timing_rule": "IClamp(delay, dur, amp): the step from t_n = n*dt to t_n+dt "
        "gets amp [nA] iff delay <= t_n + dt/2 < delay + dur (NEURON "
        "evaluates BREAKPOINT at t_n + dt/2; stim.mod: "
        "i = amp if del <= t < del + dur). Verified against the "
        "recorded IClamp current for every case (be and cn).",
        "constants": {
            "FARADAY_C_per_mol": FARADAY,
            "R_J_per_mol_K": R_GAS,
            "FARADAY_in_CaPump_mod": float(h.faraday_CaPump()),
            "nernst": "e = 1000*R*(celsius + 273.15)/FARADAY / z * ln(c_out/c_in) mV, z = 2 "
            "for Ca (NEURON nrn_nernst)",
            "hay_q10_factor_qt": QT,
            "qt_note": "Hay channels use qt = 2.3^((34-21)/10) hard-coded (as jaxley_mech), "
            "independent of celsius; celsius enters only the Ca Nernst potential",
            "segment_area": "pi*diam*L/nseg um^2 (no end caps)",
        },
        "topology": "each child connects its 0 end to its parent's 1 end. NEURON places a "
        "zero-area node at every section end (x = 0 of the root, x = 1 of each "
        "section); children attached to parent(1) all join at that zero-area "
        "node, reached from the parent's last segment centre through half a "
        "segment (resistance Ra*(L/nseg/2)/(pi*(diam/2)^2)) and from each child's "
        "first segment centre through half of that child's segment. A zero-area "
        "node has no membrane and no capacitance (its voltage is algebraic). "
        "Neighbouring segments inside a section: sum of the two half-segment "
        "resistances.",
        "hh": "NEURON built-in hh with usetable_hh = 0: q10 = 3^((celsius-6.3)/10) (= 1 at "
        "6.3); vtrap(x, y) = y*(1 - x/y/2) if |x/y| < 1e-6 else x/(exp(x/y) - 1); "
        "METHOD cnexp (gates m,h,n advanced after the voltage solve at the new v)",
        "mod_mechanisms": MOD_MECHANISMS,
        "mod_files": sorted(
            f"scripts/neuron_mod/{p.name}" for p in MOD_DIR.glob("*.mod")
        ),
        "jaxley_mech_names": {
            "NaTs2T": "NaTs2T",
            "SKv3_1": "SKv3_1",
            "M": "M",
            "H": "H",
            "CaHVA": "CaHVA",
            "CaLVA": "CaLVA",
            "SKE2": "SKE2",
            "CaPump": "CaPump (= Hay CaDynamics_E2)",
            "eca": "CaNernstReversal (here NEURON's ca_ion, T = celsius "
            "+ 273.15 K, R and FARADAY of constants)",
        },
        "graded_synapse": {
            "mechanism": "GradedSyn (scripts/neuron_mod/graded_syn.mod), POINTER vpre -> "
            "presynaptic segment v (h.setpointer)",
            "equations": "x = (v_th - vpre)/delta; s_inf = 1/(1 + exp(x)); tau_s = "
            "(exp(x)/(1 + exp(x)))/k_minus [ms]; s' = (s_inf - s)/tau_s "
            "(cnexp: s += (1 - exp(-dt/tau_s))*(s_inf - s)); i = g*s*(v_post - "
            "e_syn) nA with g in uS (NONSPECIFIC_CURRENT, enters the post "
            "segment as i*100/area mA/cm2); initial s = s_inf(v_init)",
            "timing": "current of step n uses s_n and v_post,n (implicit in v_post through "
            "di/dv = g*s); s is advanced after the voltage solve with vpre = "
            "v_pre,n+1",
        },
        "mod_notes": "scripts/neuron_mod/*.mod: equations of jaxley_mech 0.4.0 l5pc.py with "
        "plain exp (no clipping), efun(x,y) = x/(exp(x/y)-1) and = y at x == 0 "
        "exactly, every gate x' = (x_inf - x)/tau with METHOD cnexp, i.e. "
        "x += (1 - exp(-dt/tau))*(x_inf - x) with x_inf, tau at the new voltage",
        "fixed_step_ordering": {
            "per_step": [
                "t += dt/2; every mechanism's current evaluated at v_n with its states of t_n "
                "(ca_ion first recomputes eca = Nernst(cai_n)); IClamp at t_n + dt/2",
                "voltage solve (be: cm/dt; cn: 2*cm/dt and v_{n+1} = v_n + 2*dv)",
                "cn only: ionic currents (ica, ina, ik) corrected by di/dv * dv (= value at the "
                "mid-step voltage); non-ionic currents (pas, H, synapse) not needed",
                "t += dt/2; states advanced (nonvint) in mechanism registration order: hh, pas "
                "(built-in) then CaHVA, CaLVA, CaPump, H, M, NaTs2T, SKE2, SKv3_1, GradedSyn "
                "(nrnivmodl registers .mod files in file-name order)",
            ],
            "cai": "CaPump advances cai with the ica of step start (cn: mid-step corrected)",
            "SKE2_cai": "CaPump is registered before SKE2, so SKE2's z uses the NEW cai "
            "(cai_{n+1}) in the same step",
            "eca": "eca_{n+1} = Nernst(cai_{n+1}) is in effect for the next step (ca_ion "
            "ion_style 247: cai state, eca computed, eadvance). NEURON recomputes it "
            "at the start of the next step's current evaluation, so a raw "
            "Vector.record of eca lags cai by one sample; the stored eca_* arrays are "
            "shifted so that eca[n] = Nernst(cai[n]) (= the value used in step n)",
            "gates": "all voltage gates advanced at v_{n+1} (cnexp); GradedSyn s advanced "
            "with vpre = v_pre at t_{n+1}",
            "verified": "pure-Python replica of this ordering reproduces NEURON's v and cai "
            "for hay_single (self_checks.hay_replica)",
        },
        "recording_conventions": "v_<method>_mV has shape (N+1, n_recordings), columns in the "
        "order of case.recordings; cai_<method>_mM / eca_<method>_mV "
        "columns follow case.ion_recordings; segment index k <-> "
        "x = (k+0.5)/nseg",
        "self_checks": checks,
        "cases": cases,
    }


if __name__ == "__main__":
    main()
