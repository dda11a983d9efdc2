"""How little stimulation can hold beta down? results/dbs_intermittent.md.

Issue #16's target asks for HF-DBS's beta suppression at ≤ 10 % of its energy. This
script maps what intermittent stimulation buys on `BetaSuppression-v0` (somatic
DBS, the env of results/dbs.md, on its 16 held-out episodes):

* open-loop 130-Hz DBS at amplitudes around HF-DBS's best (10 nA);
* on/off adaptive DBS (Little et al. 2013) over a grid of amplitude × envelope
  threshold × hold (the number of control periods it stays on).

Every setting is reported (nothing is picked on these episodes). Energy = mean I²
[nA²] as a % of HF-DBS at 10 nA, as in results/dbs.md. Writes
results/dbs_intermittent.{md,json,png}. ``--quick``: a smoke run into a temporary
folder unless --out is given.

    taskset -c 0 python scripts/dbs_intermittent.py
"""

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neuroctl.envs import make  # noqa: E402
from neuroctl.io import save_figure  # noqa: E402
from neuroctl.policies.base import split  # noqa: E402
from neuroctl.policies.dbs import OnOffDBS, dbs_io  # noqa: E402
from neuroctl.train import evaluate as ev  # noqa: E402
from neuroctl.train.ship import code_version, provenance  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENV = "BetaSuppression-v0"
HF_NA = 10.0  # HF-DBS's best amplitude in results/dbs.md [nA]: the energy's 100 %
OPEN_LOOP = (5.0, 7.0, 8.0, 9.0, 10.0, 12.0)  # [nA]; holds HF_NA
AMPLITUDES = (7.0, 10.0, 14.0)  # on/off amplitude [nA]
# envelope thresholds [nV]; results/dbs.md's tuned on/off uses P25 of the unstimulated
# envelope on the validation episodes, 29.2 nV
THRESHOLDS = (15.0, 20.0, 23.0, 26.0, 28.0, 29.2)
HOLDS = (1, 2)  # control periods on after each crossing [1]
TARGET_ENERGY = 10.0  # [% of HF-DBS's]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--episodes", type=int, default=16)
    ap.add_argument("--episode-ms", type=float, default=500.0)
    ap.add_argument("--quick", action="store_true", help="a smoke run")
    args = ap.parse_args()
    open_loop, amplitudes, thresholds, holds = OPEN_LOOP, AMPLITUDES, THRESHOLDS, HOLDS
    if args.quick:
        args.episodes, args.episode_ms = 2, 46.0
        open_loop, amplitudes, thresholds, holds = (5.0, 10.0), (10.0,), (20.0,), (1, 2)
        args.out = args.out or Path(tempfile.mkdtemp(prefix="dbs_intermittent_"))
    out = args.out or ROOT / "results"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    env = make(ENV, episode_ms=args.episode_ms)
    params = env.prepare_params(None)
    keys = ev.evaluation_keys(args.episodes)  # results/dbs.md's held-out episodes
    io = dbs_io(env, params)

    def constant(amp):
        return ev.run_constant(env, params, jnp.asarray([amp]), keys)

    none = constant(0.0)
    trains = {a: constant(a) for a in open_loop}  # includes HF_NA: the 100 %
    hf_power = float(np.mean(trains[HF_NA]["current_power"]))  # [nA²]

    def record(kind, stats, **setting):
        beta, sem = ev.percent_of(stats, none, "beta_power")
        power = float(np.mean(stats["current_power"]))
        return {
            "kind": kind,
            **setting,
            "beta_pct": beta,
            "beta_sem": sem,
            "current_power": power,
            "energy_pct": 100.0 * power / hf_power,
            "charge": float(np.mean(stats["charge"])),
            "return": float(np.mean(stats["return"])),
        }

    rows = [record("open-loop", st, amplitude=a) for a, st in trains.items()]
    for amp in amplitudes:
        for th in thresholds:
            for hold in holds:
                policy = OnOffDBS(io, amplitude=amp, threshold=th, hold=hold)
                stats = ev.run_policy(env, params, *split(policy), keys)
                on = float(np.mean(stats["action_sq"])) / amp**2  # periods on [1]
                rows.append(
                    record(
                        "on/off",
                        stats,
                        amplitude=amp,
                        threshold=th,
                        hold=hold,
                        on_fraction=on,
                    )
                )
                print(
                    f"on/off {amp:g} nA, {th:g} nV, hold {hold}: beta "
                    f"{rows[-1]['beta_pct']:.1f} % at {rows[-1]['energy_pct']:.1f} %",
                    flush=True,
                )

    traces = _traces(env, params, keys[0], io, rows)
    rec = {
        "env": ENV,
        "episode_ms": args.episode_ms,
        "episodes": args.episodes,
        "hf_amplitude_nA": HF_NA,
        "hf_current_power": hf_power,
        "rows": rows,
        # periods with a pulse / all periods, on the traced episode [1]
        "episode0_pulses": {
            label: [int(np.count_nonzero(acts)), len(acts)]
            for label, acts, _, _ in traces
        },
        "wall_s": time.perf_counter() - t0,
        "quick": args.quick,
        "provenance": provenance(),
    }
    (out / "dbs_intermittent.json").write_text(json.dumps(rec, indent=1))
    figure(rec, traces, out / "dbs_intermittent.png")
    (out / "dbs_intermittent.md").write_text(markdown(rec))
    print(f"wrote {out / 'dbs_intermittent.md'} ({rec['wall_s']:.0f} s)")


def _traces(env, params, key, io, rows: list[dict]) -> list[tuple]:
    """(label, actions [nA], beta envelope [nV], amplitude [nA]) on one held-out
    episode: no stimulation, HF-DBS and the on/off setting with the least beta at
    ≤ 10 % energy."""
    field = io.field("beta_envelope", "traces")
    shown = [("no stimulation", None, 0.0), (f"HF-DBS {HF_NA:g} nA", None, HF_NA)]
    onoff = [r for r in rows if r["kind"] == "on/off"]
    best = _least_beta(onoff, TARGET_ENERGY) or _least_beta(onoff)
    policy = OnOffDBS(
        io, amplitude=best["amplitude"], threshold=best["threshold"], hold=best["hold"]
    )
    shown.append((_label(best), policy, best["amplitude"]))
    out = []
    for label, pol, amp in shown:
        if pol is None:
            acts, obs = ev.episode_traces(env, params, key, action=jnp.asarray([amp]))
        else:
            acts, obs = ev.episode_traces(env, params, key, *split(pol))
        out.append((label, acts[:, 0], obs[:, field], amp))
    return out


def _least_beta(rows: list[dict], max_energy: float = math.inf) -> dict | None:
    """The row with the least beta at ≤ `max_energy` [% of HF-DBS's]; None if none."""
    within = [r for r in rows if r["energy_pct"] <= max_energy]
    return min(within, key=lambda r: r["beta_pct"]) if within else None


def _hf(rows: list[dict]) -> dict:
    """The open-loop row at HF-DBS's best amplitude (the energy's 100 %)."""
    return next(r for r in rows if r["kind"] == "open-loop" and r["amplitude"] == HF_NA)


def _label(r: dict) -> str:
    return (
        f"on/off {r['amplitude']:g} nA, θ {r['threshold']:g} nV, hold {r['hold']}"
        if r["kind"] == "on/off"
        else f"open-loop {r['amplitude']:g} nA"
    )


def figure(rec: dict, traces: list[tuple], path: Path) -> None:
    rows = rec["rows"]
    hf = _hf(rows)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    ax.fill_between(
        [0.3, TARGET_ENERGY],
        0,
        hf["beta_pct"],
        color="C2",
        alpha=0.15,
        label=f"target: ≤ HF beta at ≤ {TARGET_ENERGY:g} % energy",
    )
    ol = sorted(
        (r for r in rows if r["kind"] == "open-loop"), key=lambda r: r["amplitude"]
    )
    ax.plot(
        [r["energy_pct"] for r in ol],
        [r["beta_pct"] for r in ol],
        "k-o",
        ms=4,
        label="open-loop 130 Hz (5–12 nA)",
    )
    for r in ol:
        ax.annotate(
            f"{r['amplitude']:g}",
            (r["energy_pct"], r["beta_pct"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=7,
        )
    amps = sorted({r["amplitude"] for r in rows if r["kind"] == "on/off"})
    for i, amp in enumerate(amps):
        for hold, marker in ((1, "o"), (2, "s")):
            sel = [
                r
                for r in rows
                if r["kind"] == "on/off" and r["amplitude"] == amp and r["hold"] == hold
            ]
            if sel:
                ax.errorbar(
                    [max(r["energy_pct"], 0.3) for r in sel],
                    [r["beta_pct"] for r in sel],
                    yerr=[r["beta_sem"] for r in sel],
                    fmt=marker,
                    color=f"C{i}",
                    mfc="none" if hold == 2 else f"C{i}",
                    ms=5,
                    lw=0.8,
                    label=f"on/off {amp:g} nA, hold {hold}",
                )
    ax.set_xscale("log")
    ax.set_xlim(0.3, 300)  # a setting that never stimulates sits at the left edge
    ax.set_ylim(0, 110)
    ax.set_xlabel("energy: mean I² [% of HF-DBS at 10 nA]")
    ax.set_ylabel("beta power [% of the same episode unstimulated]")
    ax.set_title(f"{rec['episodes']} held-out episodes, mean ± s.e.m.")
    ax.legend(fontsize=7, loc="upper left")
    t = np.arange(len(traces[0][2])) * rec["episode_ms"] / len(traces[0][2])  # [ms]
    for i, (label, acts, env_, amp) in enumerate(traces):
        last = i == len(traces) - 1  # the on/off setting: its amplitude's colour
        color = f"C{amps.index(amp)}" if last and amp in amps else ("0.5", "k")[i % 2]
        ax2.plot(t, env_, color=color, lw=1.0, label=label)
        if last:
            on = acts != 0  # one bar per control period with a pulse
            ax2.bar(
                t[on],
                np.max(env_) * 1.05,
                width=t[1] - t[0],
                align="edge",
                color=color,
                alpha=0.15,
                label="on/off: control periods with a pulse",
            )
    ax2.set_xlabel("time [ms]")
    ax2.set_ylabel("observed beta envelope [nV]")
    ax2.set_title("held-out episode 0")
    ax2.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def markdown(rec: dict) -> str:
    rows = rec["rows"]
    lines = [
        "# How little stimulation holds beta down: intermittent vs open-loop DBS",
        "",
        f"Regenerated by `python scripts/dbs_intermittent.py` ({rec['wall_s']:.0f} s; "
        f"code {code_version(rec['provenance'])}). `{rec['env']}` (somatic DBS, "
        f"the env of results/dbs.md), {rec['episode_ms']:g}-ms episodes, the same "
        f"{rec['episodes']} held-out episodes as results/dbs.md. Every setting is "
        "listed; none is picked on these episodes. Beta = the env's beta term as a % "
        "of the same episode unstimulated (mean ± s.e.m.); energy = mean I² as a % "
        f"of HF-DBS at {HF_NA:g} nA ({rec['hf_current_power']:.3f} nA²); on = the "
        "fraction of control periods with a pulse.",
        "",
        "| controller | beta [% no-stim] | energy [% HF] | on [%] | charge [pC] | "
        "return |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        on = f"{100 * r['on_fraction']:.0f}" if "on_fraction" in r else "100"
        lines.append(
            f"| {_label(r)} | {r['beta_pct']:.1f} ± {r['beta_sem']:.1f} | "
            f"{r['energy_pct']:.1f} | {on} | {r['charge']:.0f} | {r['return']:.3f} |"
        )
    lines += ["", "## What it shows", "", *findings(rec), ""]
    lines += [
        "Figure: results/dbs_intermittent.png (left: beta vs energy of every "
        "setting, log energy axis, the target's corner shaded; right: the observed "
        "beta envelope on held-out episode 0 without stimulation, under HF-DBS and "
        "under the on/off setting with the least beta at ≤ 10 % energy, with a bar "
        "for each control period in which it pulsed).",
        "",
    ]
    return "\n".join(lines)


def findings(rec: dict) -> list[str]:
    rows = rec["rows"]
    hf = _hf(rows)
    onoff = [r for r in rows if r["kind"] == "on/off"]
    cheap = [r for r in onoff if r["energy_pct"] <= TARGET_ENERGY]
    out = [
        f"- HF-DBS at {HF_NA:g} nA: beta {hf['beta_pct']:.1f} ± {hf['beta_sem']:.1f} %."
    ]
    ol = [r for r in rows if r["kind"] == "open-loop" and r["amplitude"] < HF_NA]
    if ol:
        weaker = ", ".join(
            f"{r['amplitude']:g} nA {r['beta_pct']:.0f} % at {r['energy_pct']:.0f} %"
            for r in ol
        )
        out.append(f"- Weaker open-loop trains: {weaker} (beta, energy).")
    best = _least_beta(onoff, TARGET_ENERGY)
    if best is not None:
        out.append(
            f"- At ≤ {TARGET_ENERGY:g} % energy ({len(cheap)} of {len(onoff)} on/off "
            f"settings), the least beta is {best['beta_pct']:.1f} ± "
            f"{best['beta_sem']:.1f} % ({_label(best)}, {best['energy_pct']:.1f} % "
            f"energy, on {100 * best['on_fraction']:.0f} % of periods): "
            f"{best['beta_pct'] / hf['beta_pct']:.1f}x HF-DBS's beta."
        )
    lowest = _least_beta(onoff)
    if lowest is not None:
        out.append(
            f"- The least beta of any on/off setting: {lowest['beta_pct']:.1f} ± "
            f"{lowest['beta_sem']:.1f} % ({_label(lowest)}) at "
            f"{lowest['energy_pct']:.1f} % energy; HF-DBS's {hf['beta_pct']:.1f} % is "
            + (
                "reached"
                if lowest["beta_pct"] <= hf["beta_pct"]
                else "not reached by any of them"
            )
            + "."
        )
    pulses = rec.get("episode0_pulses", {})
    if pulses:
        counted = "; ".join(f"{k} {n} of {total}" for k, (n, total) in pulses.items())
        out.append(
            "- Held-out episode 0 (the figure's right panel), control periods with a "
            f"pulse: {counted}."
        )
    met = [r for r in cheap if r["beta_pct"] <= hf["beta_pct"]]
    out.append(
        f"- Settings at ≤ HF-DBS's beta and ≤ {TARGET_ENERGY:g} % of its energy: "
        f"{len(met)} of {len(onoff)}."
    )
    return out


if __name__ == "__main__":
    main()
