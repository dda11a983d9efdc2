"""Healthy vs parkinsonian Rubin & Terman (2004) network, and 130-Hz DBS into STN.

Simulates `neuroctl.plants.beta` (10 cells per population, STN with an axon,
float64, backward Euler, dt = 0.025 ms) for ``--seconds`` (default 3 s; the first
500 ms are discarded) over ``--seeds`` seeds (GPe I_app jitter, initial voltages,
sensorimotor pulse times), in the healthy and parkinsonian sets, and the
parkinsonian set with monophasic 130-Hz, 0.3-ms DBS current pulses into every STN
soma over an amplitude sweep.

Measures, per condition (mean ± sd over seeds): firing rate per population [Hz];
STN population-rate spectrum (Welch, 1-ms bins, 1-s segments): peak frequency in
2–100 Hz, beta (13–30 Hz) power [(spikes/s)²] and its fraction of 2–100 Hz power;
STN voltage synchrony χ²; the TC relay error index (Rubin & Terman 2004); the beta
fraction of the LFP beside the STN axons.

Writes results/dbs_plant.md and
results/dbs_plant_{rasters,spectra,lfp,tc,dbs_sweep}.png; with ``--ship`` also the
sealed plant folders envs/beta_healthy and envs/beta_parkinsonian (spec, verified
parameters of the seed-0 network, card = the measurements above with provenance).
Run: ``taskset -c 1 python scripts/dbs_plant.py --ship`` (~3 min on one core);
``--quick`` for a smoke run into a temporary folder.
"""

import argparse
import tempfile
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neuroctl.biophysics import LFPElectrodes, simulate_with_lfp  # noqa: E402
from neuroctl.plants import beta as B  # noqa: E402
from neuroctl.train.ship import provenance  # noqa: E402

DT = 0.025  # [ms]
T0 = 500.0  # discarded transient [ms]
CFG = B.BetaNetConfig()
DBS_AMPLITUDES = (0.0, 50.0, 100.0, 200.0, 300.0)  # [µA/cm²]
LFP_AT = (170.0, 180.0, 50.0)  # LFP electrode [µm]: beside the STN axons' middle
ROOT = Path(__file__).resolve().parents[1]
DESCRIPTION = (
    "Rubin & Terman (2004) STN-GPe-GPi-TC network, 10 cells per population, STN "
    "with a 300-um HH axon; inputs: DBS current into STN somata [nA], sensorimotor "
    "current into TC [nA]; readouts: somata and STN axon ends [mV]. Regenerate with "
    "scripts/dbs_plant.py --ship."
)


def plant_spec(state: str, seed: int = 0) -> B.BetaSpec:
    """The spec of the `state` network drawn with `seed` (seed 0 is shipped)."""
    return B.BetaSpec(
        name=f"beta_{state}",
        state=state,
        seed=seed,
        dt=DT,
        network=CFG,
        params=B.STATES[state],
        description=DESCRIPTION,
    )


def run(state: str, seed: int, t_stop: float, dbs_amp: float) -> dict:
    """One simulation: voltages [mV], spikes [ms], pulse onsets [ms], LFP [µV]."""
    plant = B.plant_of(plant_spec(state, seed))
    k_sm, k_init = jax.random.split(jax.random.fold_in(jax.random.key(seed), 1))
    n = int(round(t_stop / DT))
    onsets = B.sensorimotor_onsets(k_sm, t_stop)
    dbs = (
        B.dbs_input(CFG, n, DT, dbs_amp) if dbs_amp > 0 else np.zeros((n, CFG.n_cells))
    )
    stim = B.stimulus(dbs, B.sensorimotor_input(CFG, onsets, n, DT))
    lfp = LFPElectrodes.build(plant.network, np.array([LFP_AT]))
    state0 = B.initial_state(plant, k_init)
    _, (v, phi) = jax.jit(
        lambda s, x: simulate_with_lfp(
            plant.network, plant.params, s, x, DT, lfp, include_electrodes=True
        )
    )(state0, jnp.asarray(stim))
    v = np.asarray(v)
    spikes = B.spike_times(v[:, : 4 * CFG.n_cells], DT)
    return {"v": v, "spikes": spikes, "onsets": onsets, "lfp": np.asarray(phi)[:, 0]}


def measure(sim: dict, t_stop: float) -> dict:
    """Rates, STN and LFP spectra, synchrony and relay error index of one run."""
    n, sp = CFG.n_cells, sim["spikes"]
    out = {
        f"rate_{p}": B.firing_rate(sp[i * n : (i + 1) * n], T0, t_stop)
        for i, p in enumerate(B.POPULATIONS)
    }
    f, psd = B.spectrum(B.population_rate(sp[:n], T0, t_stop), 1000.0)
    out |= B.beta_summary(f, psd)
    out["chi_stn"] = B.synchrony(sim["v"][int(T0 / DT) :, :n])
    out["error_index"] = B.error_index(sp[3 * n : 4 * n], sim["onsets"], T0, t_stop)
    lfp = sim["lfp"][int(T0 / DT) :]
    lfp = lfp[: len(lfp) // 40 * 40].reshape(-1, 40).mean(1)  # 1-ms means [µV]
    f_lfp, psd_lfp = B.spectrum(lfp, 1000.0)
    out["lfp_beta_fraction"] = B.beta_summary(f_lfp, psd_lfp)["beta_fraction"]
    return out | {"f": f, "psd": psd, "psd_lfp": psd_lfp}


def condition(state, seeds, t_stop, dbs_amp=0.0) -> tuple[list[dict], dict]:
    """Measures over seeds, and the first seed's simulation (for figures)."""
    sims = [run(state, s, t_stop, dbs_amp) for s in seeds]
    return [measure(s, t_stop) for s in sims], sims[0]


SCALARS = (
    ("rate_stn", "STN rate [Hz]", "{:.1f}"),
    ("rate_gpe", "GPe rate [Hz]", "{:.1f}"),
    ("rate_gpi", "GPi rate [Hz]", "{:.1f}"),
    ("rate_tc", "TC rate [Hz]", "{:.1f}"),
    ("peak_hz", "STN peak freq. [Hz]", "{:.0f}"),
    ("beta_power", "STN beta power [(sp/s)²]", "{:.0f}"),
    ("beta_fraction", "beta fraction [1]", "{:.2f}"),
    ("chi_stn", "STN synchrony χ² [1]", "{:.2f}"),
    ("error_index", "TC error index [1]", "{:.2f}"),
    ("lfp_beta_fraction", "LFP beta fraction [1]", "{:.2f}"),
)


def table(results: dict[str, list[dict]]) -> str:
    names = list(results)
    lines = ["| quantity | " + " | ".join(names) + " |"]
    lines.append("|---" * (len(names) + 1) + "|")
    for key, label, fmt in SCALARS:
        cells = []
        for name in names:
            x = np.array([r[key] for r in results[name]])
            cells.append(f"{fmt.format(x.mean())} ± {fmt.format(x.std())}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def raster_figure(examples: dict[str, dict], path: Path, t_stop: float) -> None:
    n = CFG.n_cells
    fig, axes = plt.subplots(len(examples), 1, figsize=(9, 2.6 * len(examples)))
    colors = ("tab:red", "tab:blue", "tab:green", "tab:purple")
    for ax, (name, sim) in zip(axes, examples.items(), strict=True):
        for i, s in enumerate(sim["spikes"]):
            pop = i // n
            label = B.POPULATIONS[pop].upper() if i % n == 0 else None
            ax.plot(s, np.full_like(s, i), "|", ms=4, color=colors[pop], label=label)
        for t in sim["onsets"]:
            ax.axvline(t, color="0.8", lw=0.6, zorder=0)
        ax.set_xlim(t_stop - 1000.0, t_stop)
        ax.set_ylim(-1, 4 * n)
        ax.set_ylabel("cell")
        ax.set_title(f"{name} (grey: sensorimotor pulses to TC)", fontsize=10)
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
                   markerscale=2)  # fmt: skip
    axes[-1].set_xlabel("time [ms]")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def spectra_figure(results: dict[str, list[dict]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, rs in results.items():
        psd = np.mean([r["psd"] for r in rs], axis=0)
        ax.semilogy(rs[0]["f"], psd, label=name)
    ax.axvspan(*B.BETA_BAND, color="0.9", label="beta 13–30 Hz")
    ax.set_xlim(0, 100)
    ax.set_ylim(1e-2, 1e4)  # a 130-Hz-locked train has ~0 power between its lines
    ax.set_xlabel("frequency [Hz]")
    ax.set_ylabel("STN population-rate PSD [(spikes/s)²/Hz]")
    ax.set_title("STN population activity (mean over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def tc_figure(examples: dict[str, dict], path: Path, t_stop: float) -> None:
    n = CFG.n_cells
    t = np.arange(1, examples[next(iter(examples))]["v"].shape[0] + 1) * DT
    fig, axes = plt.subplots(len(examples), 1, figsize=(9, 2.0 * len(examples)))
    for ax, (name, sim) in zip(axes, examples.items(), strict=True):
        keep = t > t_stop - 600.0
        ax.plot(t[keep], sim["v"][keep, 3 * n], lw=0.7, color="k", label="TC cell 0")
        for k, on in enumerate(sim["onsets"][sim["onsets"] > t_stop - 600.0]):
            ax.axvspan(on, on + 5.0, color="tab:orange", alpha=0.4,
                       label="SM pulse" if k == 0 else None)  # fmt: skip
        ax.set_ylabel("v [mV]")
        ax.set_title(name, fontsize=10)
        ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time [ms]")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep_figure(sweep: dict[float, list[dict]], path: Path) -> None:
    amps = np.array(list(sweep))
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    for ax, (key, label) in zip(
        axes,
        (
            ("beta_power", "STN beta power [(sp/s)²]"),
            ("error_index", "TC error index"),
            ("rate_stn", "STN rate [Hz]"),
        ),  # fmt: skip
        strict=True,
    ):
        x = np.array([[r[key] for r in sweep[a]] for a in amps])
        ax.errorbar(amps, x.mean(1), x.std(1), marker="o", capsize=3)
        ax.set_xlabel("DBS amplitude [µA/cm²] (130 Hz, 0.3 ms)")
        ax.set_ylabel(label)
    fig.suptitle("Parkinsonian network under STN DBS (mean ± sd over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def lfp_figure(results, examples, path: Path, t_stop: float) -> None:
    """LFP beside the STN axons: the last 500 ms (top), PSD over seeds (bottom)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5))
    t = np.arange(1, examples[next(iter(examples))]["lfp"].shape[0] + 1) * DT
    keep = t > t_stop - 500.0
    step = 1.2 * max(np.ptp(sim["lfp"][keep]) for sim in examples.values())  # [µV]
    for k, (name, sim) in enumerate(examples.items()):
        lfp = sim["lfp"][keep] - np.median(sim["lfp"][keep])
        top.plot(t[keep], lfp - k * step, lw=0.7, label=name)
    top.set_xlabel("time [ms]")
    top.set_ylabel(f"LFP [µV] (traces {step:.2g} µV apart)")
    top.set_title(f"LFP at {LFP_AT} µm (beside the STN axons), seed 0", fontsize=10)
    top.legend(loc="upper right", fontsize=8)
    for name, rs in results.items():
        psd = np.mean([r["psd_lfp"] for r in rs], axis=0)
        bottom.semilogy(rs[0]["f"][: len(psd)], psd, label=name)
    bottom.axvspan(*B.BETA_BAND, color="0.9", label="beta 13–30 Hz")
    bottom.set_xlim(0, 100)
    bottom.set_xlabel("frequency [Hz]")
    bottom.set_ylabel("LFP PSD [µV²/Hz] (1-ms means)")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


CARD_KEYS = ("rate_stn", "rate_gpe", "rate_gpi", "rate_tc", "peak_hz", "beta_power")
CARD_KEYS += ("beta_fraction", "chi_stn", "error_index", "lfp_beta_fraction")
HOW = {
    "simulation": "float64, backward Euler, dt 0.025 ms, {seconds:g} s per run, "
    "first 0.5 s discarded; networks drawn with seeds {seeds} (seed 0 is the "
    "shipped one); sensorimotor input to TC: 5 uA/cm2, 5-ms pulses, gamma "
    "intervals (14 Hz, CV 0.2)",
    "rate_*": "mean firing rate per population [Hz] (soma crossings of -20 mV)",
    "peak_hz, beta_power, beta_fraction": "Welch PSD of the STN population rate "
    "(1-ms bins, 1-s segments): peak in 2-100 Hz [Hz], power in 13-30 Hz "
    "[(spikes/s)^2], its fraction of 2-100 Hz power [1]",
    "chi_stn": "Golomb-Rinzel synchrony of STN somatic voltages [1]",
    "error_index": "thalamic relay error index of Rubin & Terman 2004: misses, "
    "bursts (>1 spike in 25 ms) and spikes between pulses per pulse [1]",
    "lfp_beta_fraction": "beta fraction of the point-source LFP (sigma 0.3 S/m) "
    "at (170, 180, 50) um, 1-ms means [1]",
    "dbs": "130-Hz, 0.3-ms monophasic current pulses into every STN soma [uA/cm2]",
}


def summary(rs: list[dict]) -> dict:
    """Mean, sd and per-seed values of each card metric."""
    out = {}
    for k in CARD_KEYS:
        x = [float(r[k]) for r in rs]
        out[k] = {"mean": float(np.mean(x)), "sd": float(np.std(x)), "per_seed": x}
    return out


def ship(results, sweep, args, t_stop: float) -> None:
    """Write envs/beta_healthy and envs/beta_parkinsonian (sealed plant folders)."""
    how = {k: v.format(seconds=args.seconds, seeds=list(range(args.seeds)))
           for k, v in HOW.items()}  # fmt: skip
    for state in ("healthy", "parkinsonian"):
        spec = plant_spec(state)
        card = {
            "kind": B.KIND,
            "name": spec.name,
            "state": state,
            "metrics": summary(results[state]),
            "how_measured": how,
            "provenance": provenance(),
        }
        if state == "parkinsonian":
            card["dbs_sweep"] = {f"{a:g}": summary(sweep[a]) for a in sweep}
        folder = B.write_plant(ROOT / "envs" / spec.name, spec, card, overwrite=True)
        print(f"shipped {folder}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--ship",
        action="store_true",
        help="also write envs/beta_healthy and envs/beta_parkinsonian (overwrite)",
    )
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.seeds = 1.0, 1
    out = args.out or (Path(tempfile.mkdtemp()) if args.quick else Path("results"))
    out.mkdir(parents=True, exist_ok=True)
    t_stop, seeds = 1000.0 * args.seconds, range(args.seeds)
    start = time.time()
    results, examples, sweep = {}, {}, {}
    for name in ("healthy", "parkinsonian"):
        results[name], examples[name] = condition(name, seeds, t_stop)
    for amp in DBS_AMPLITUDES[1:]:
        rs, ex = condition("parkinsonian", seeds, t_stop, amp)
        sweep[amp] = rs
        if amp == max(DBS_AMPLITUDES):
            results[f"PD + DBS {amp:g}"], examples[f"PD + DBS {amp:g}"] = rs, ex
    sweep = {0.0: results["parkinsonian"]} | sweep
    raster_figure(examples, out / "dbs_plant_rasters.png", t_stop)
    spectra_figure(results, out / "dbs_plant_spectra.png")
    tc_figure(examples, out / "dbs_plant_tc.png", t_stop)
    sweep_figure(sweep, out / "dbs_plant_dbs_sweep.png")
    lfp_figure(results, examples, out / "dbs_plant_lfp.png", t_stop)
    if args.ship:
        ship(results, sweep, args, t_stop)
    sweep_rows = {f"DBS {a:g}": sweep[a] for a in sweep}
    write_report(out, results, sweep_rows, args, time.time() - start)
    print(f"wrote {out}/dbs_plant.md in {time.time() - start:.0f} s")


def write_report(out: Path, results, sweep_rows, args, seconds: float) -> None:
    text = REPORT.format(
        seconds=args.seconds,
        seeds=args.seeds,
        table=table(results),
        sweep=table(sweep_rows),
        healthy=B.HEALTHY,
        pd=B.PARKINSONIAN,
        wall=seconds,
    )
    (out / "dbs_plant.md").write_text(text)


REPORT = """# Rubin & Terman (2004) basal-ganglia plant: healthy, parkinsonian, STN DBS

Regenerate: `taskset -c 1 python scripts/dbs_plant.py --ship` ({wall:.0f} s on one
core; `--ship` also rewrites the sealed plant folders `envs/beta_healthy` and
`envs/beta_parkinsonian`, whose metrics.json cards hold the tables' numbers).
Load one with `neuroctl.plants.load("beta_parkinsonian")`.

Model: `neuroctl.plants.beta` (channels in `neuroctl.biophysics.basal_ganglia`),
10 cells per population. STN: Rubin–Terman soma (20 × 8 µm cylinder) with a
300-µm, 0.25-µm-radius axon of HH membrane (10 compartments, Ra 150 Ω·cm) along +x;
STN synapses onto GPe/GPi take their presynaptic voltage at the axon's end. GPe,
GPi, TC: single somata. Each TC cell receives all 10 GPi cells (total 0.3 mS/cm²,
decay β = 0.2 /ms, i.e. τ = 5 ms). float64, backward Euler, dt = 0.025 ms,
{seconds:g} s per run with the first 0.5 s discarded, mean ± sd over {seeds}
network seeds (GPe I_app jitter, initial voltages, sensorimotor pulse times).
Sensorimotor input to TC: 5 µA/cm², 5-ms pulses, gamma intervals (14 Hz, CV 0.2).
DBS: monophasic 0.3-ms current pulses at 130 Hz into every STN soma (as the paper).
LFP: point-source potential of all transmembrane currents (σ = 0.3 S/m, electrode
currents counted with their return so each cell's sources sum to 0) at
(170, 180, 50) µm, beside the STN axons; only the STN soma–axon cells make one.

Parameter sets (`BetaParams`):

- healthy: `{healthy}`
- parkinsonian: `{pd}`

## Healthy vs parkinsonian vs parkinsonian + DBS

{table}

Figures: `dbs_plant_rasters.png` (last second, all cells),
`dbs_plant_spectra.png` (STN population-rate PSD), `dbs_plant_lfp.png` (LFP traces
and PSD), `dbs_plant_tc.png` (one TC cell with its input pulses),
`dbs_plant_dbs_sweep.png` (DBS amplitude sweep).

## Parkinsonian network, DBS amplitude sweep [µA/cm²]

{sweep}

## Reading the numbers

- **Beta.** The parkinsonian set (GPe I_app 8 → −2 µA/cm², GPe→GPe 1.0 → 0.2
  mS/cm², Rubin & Terman's "more striatal inhibition of GPe, weaker intra-GPe
  inhibition") turns the irregular, asynchronous healthy STN into synchronised
  activity in which STN, GPe and GPi fire about one spike per beta cycle (rasters):
  STN beta power, beta fraction and χ² rise by orders of magnitude, and so does the
  LFP's beta fraction. With the axon the population peak sits at the cell rate on
  every seed here; without it (single-compartment STN, earlier version) one seed
  in three settled into two alternating clusters with a ~47-Hz population peak, so
  the tests assert beta power/fraction over two seeds and the STN cell rate, not the
  peak.
- **Relay.** Rubin & Terman's mechanism is reproduced: healthy GPi cells fire
  asynchronously, and a TC cell that sums all of them sees nearly constant
  inhibition and relays each sensorimotor pulse with one spike (error index ≈ 0);
  parkinsonian GPi cells fire in synchrony at beta, the summed inhibition is
  phasic, and TC cells miss pulses or fire extra rebound spikes (error index up);
  130-Hz DBS makes GPi fire fast and regularly, the inhibition tonic again, and the
  error index returns to the healthy level. Calibration (2-s runs, 2 seeds): with
  the first version's one GPi input per TC and slow GP kinetics (β = 0.04 /ms) the
  error index was 0.11 / 0.13 / 0.02 (healthy / PD / PD+DBS 200); faster decay
  alone (β = 0.2) made the healthy one worse (0.55 / 0.33 / 0.02: one irregular GPi
  input is itself phasic); convergence of all GPi cells onto each TC with β = 0.2
  gave 0.02 / 0.29 / 0.02 at 0.2 mS/cm², 0.02 / 0.40 / 0.02 at 0.3 (chosen),
  0.02 / 0.79 / 0.05 at 0.4, and 0.02 / 0.76 / 0.29 at 0.6 (too strong: DBS's tonic
  inhibition then blocks relay too). These scans ran
  before the STN synapses moved to the axon's end; the tables above are with it.
- **DBS.** 130-Hz pulses into STN somata suppress the beta peak from ~100 µA/cm²
  on and bring the error index to 0. With the axon's load the somata follow every
  pulse only at 300 µA/cm² (STN rate in the sweep); GPi is driven fast and
  regularly, which is the paper's mechanism for restoring relay. At 50 µA/cm² the
  STN locks to every fifth pulse (26 Hz, inside the beta band): STN beta power
  *rises* although relay already improves; weak DBS entrains rather than
  suppresses, a case a closed-loop controller must avoid. 1-ms bins alias a
  130-Hz-locked train to lines at multiples of 10 Hz in the spectra.
- **STN axon.** The HH axon (squid densities at 6.3 °C; a generic excitable axon,
  not an STN-specific one) loads the soma: with a 0.5-µm radius the isolated STN's
  spontaneous rate fell from 2.7 to 0.7 Hz (and 33 → 23 Hz at I_app = 25), so the
  radius is 0.25 µm (2.0 Hz and 31 Hz; rebound burst after hyperpolarisation kept,
  tests/biophysics/test_basal_ganglia.py). A point electrode 30 µm from the axon's
  middle fires it with a −100 µA, 0.2-ms cathodic pulse and not with −3 µA
  (tests/biophysics/test_beta_plant.py); axonal spikes evoked this way do not
  invade the large soma, which is why STN output synapses sit on the axon's end.
  Release from long hyperpolarisation can fire one anode-break spike in the HH
  axon even without I_T (never a burst).
- **Not done.** DBS here is the paper's intracellular current; an extracellular
  electrode drives the same plant (`simulate(..., electrodes=PointElectrodes(...))`)
  but is not swept in this report. The paper's instantaneous gates lag one step
  (error < 1 % of the ISI at dt = 0.01 ms against an RK4 reference).
"""


if __name__ == "__main__":
    main()
