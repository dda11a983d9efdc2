"""Closed-loop DBS through an extracellular electrode: results/dbs_extracellular.md.

`BetaSuppression-v0` with ``stimulation="extracellular"``: one point electrode
30 µm from the plane of the ten STN axons, at their midpoint, in a homogeneous
medium (σ = 0.3 S/m); its charge-balanced biphasic 130-Hz pulses reach the cells
only through the field they set (the activating function along the axons), as in
real DBS. Controllers on the same episodes as results/dbs.md (validation keys to
tune, held-out keys to report):

* no stimulation;
* open-loop 130-Hz DBS over an amplitude sweep, both polarities;
* on/off adaptive DBS (Little et al. 2013) at the best open-loop amplitude, the
  threshold a percentile of the unstimulated beta envelope;
* a BPTT-trained MLP (`neuroctl.train.runs.train_run`, the toolkit's trainer),
  started at the best open-loop amplitude.

Writes results/dbs_extracellular.{md,json} and results/dbs_extracellular.png.
Runs in runs/dbs_extracellular/ (the BPTT run resumes). ``--quick``: a smoke run
(into a temporary folder unless --out/--runs are given).

    taskset -c 0 python scripts/dbs_extracellular.py
"""

import argparse
import dataclasses
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

import neuroctl  # noqa: E402, F401  (registers the envs)
from neuroctl.io import save_figure  # noqa: E402
from neuroctl.policies import dbs  # noqa: E402
from neuroctl.policies.base import split  # noqa: E402
from neuroctl.train import bptt  # noqa: E402
from neuroctl.train import evaluate as ev  # noqa: E402
from neuroctl.train.runs import RunOptions, RunSpec, build_env, train_run  # noqa: E402
from neuroctl.train.ship import code_version, provenance  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
AMPLITUDES = (5.0, 10.0, 12.5, 15.0, 20.0, 30.0, 50.0, 75.0, 100.0)  # sweep [µA]
PERCENTILES = (25.0, 50.0, 75.0)  # of the unstimulated envelope: on/off thresholds
# BPTT rows: (name, run folder, charge weight in training [1/pC] or None: the
# default, run folder whose best policy starts it or None: the constant at HF-DBS's
# best amplitude, iterations [1] or None: --iterations). Past 10x the weight is
# raised in steps, each run starting from the one before (a continuation path
# along the beta-vs-charge trade-off): (multiplier of the default, iterations)
CHAIN = ((100, None), (300, 80), (1000, 80), (3000, 80), (10000, 80), (30000, 80))


def _charge_row(k: int, source: str | None, iterations: int | None) -> tuple:
    return (
        f"BPTT MLP, {k}x charge weight",
        f"bptt_mlp_charge{k}",
        k / 1e6,  # [1/pC]: the default 1e-6/pC times k
        source,
        iterations,
    )


BPTT_ROWS = (
    ("BPTT MLP", "bptt_mlp", None, None, None),
    _charge_row(10, None, None),
    *(
        _charge_row(k, f"bptt_mlp_charge{prev}", it)
        for (k, it), prev in zip(CHAIN, (10, *(k for k, _ in CHAIN)), strict=False)
    ),
)


def spec_for(args) -> RunSpec:
    options = {"stimulation": "extracellular", "episode_ms": args.episode_ms}
    return RunSpec(
        env="BetaSuppression-v0",
        env_options=options,
        policy="mlp",
        train=bptt.BPTTConfig(
            seed=0, batch=args.batch, lr=args.lr, truncation=args.truncation
        ),
    )


def stats(env, params, keys, policy=None, action=None) -> dict:
    """Per-episode numbers (NumPy) of a policy module or a constant action."""
    if policy is not None:
        parts, p = split(policy)
        return ev.run_policy(env, params, parts, p, keys)
    return ev.run_constant(env, params, jnp.asarray(action), keys)


def beta_pct(held: dict, none: dict) -> tuple[float, float]:
    """Beta as a % of the same episode unstimulated: mean ± s.e.m. over episodes."""
    return ev.percent_of(held, none, "beta_power")


def row(name: str, params: str, held: dict, none: dict, val_return: float) -> dict:
    pct, sem = beta_pct(held, none)
    means = ev.summarise(held)  # means over episodes and the return's s.e.m.
    return {
        "name": name,
        "params": params,
        "beta_pct": pct,
        "beta_sem": sem,
        **{k: means[k] for k in ("return", "return_sem", "current_power", "charge")},
        "val_return": val_return,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episode-ms", type=float, default=500.0)
    ap.add_argument("--eval-episodes", type=int, default=16)
    ap.add_argument("--val-episodes", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--truncation", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None, help="default: results/")
    ap.add_argument(
        "--runs", type=Path, default=None, help="default: runs/dbs_extracellular/"
    )
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        tmp = Path(tempfile.mkdtemp(prefix="dbs_extracellular_"))
        args.episode_ms, args.eval_episodes, args.val_episodes = 46.2, 2, 2
        args.iterations, args.batch = 2, 2
        args.out, args.runs = args.out or tmp / "results", args.runs or tmp / "runs"
    args.out = args.out or ROOT / "results"
    args.runs = args.runs or ROOT / "runs" / "dbs_extracellular"
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    spec = spec_for(args)
    env, params = build_env(spec)
    io = dbs.dbs_io(env, params)
    val, held = (
        bptt.validation_keys(args.val_episodes),
        ev.evaluation_keys(args.eval_episodes),
    )
    log = lambda m: print(m, flush=True)  # noqa: E731

    none_val, none_held = (
        stats(env, params, val, action=[0.0]),
        stats(env, params, held, action=[0.0]),
    )
    rows = [
        row(
            "no stimulation",
            "0 µA",
            none_held,
            none_held,
            float(np.mean(none_val["return"])),
        )
    ]
    sweep = []
    for a in [s * x for x in AMPLITUDES for s in (1.0, -1.0)]:
        v, h = stats(env, params, val, action=[a]), stats(env, params, held, action=[a])
        r = row(
            f"HF {a:+g} µA", f"{a:+g} µA", h, none_held, float(np.mean(v["return"]))
        )
        sweep.append({**r, "amplitude": a})
        log(
            f"HF {a:+g} µA: val return {r['val_return']:.3f}, "
            f"held beta {r['beta_pct']:.1f} %"
        )
    best = max(sweep, key=lambda r: r["val_return"])
    rows.append({**best, "name": f"HF-DBS best ({best['params']})"})

    levels = _envelope_levels(env, params, io, val)
    amp = best["amplitude"]  # [µA]; its sign picks the leading phase
    onoff = []
    for q in PERCENTILES:
        pol = dbs.OnOffDBS(io, amp, levels[q], 1)
        v = stats(env, params, val, policy=pol)
        onoff.append((float(np.mean(v["return"])), q, pol))
    v_ret, q, pol = max(onoff, key=lambda x: x[0])
    rows.append(
        row(
            "on/off aDBS",
            f"A {amp:+g} µA ({'cathodic' if amp < 0 else 'anodic'} phase first) "
            "while the envelope > "
            f"P{q:g} = {levels[q]:.1f} nV",
            stats(env, params, held, policy=pol),
            none_held,
            v_ret,
        )
    )

    frac = (best["amplitude"] + env.action_space(params).high[0]) / (
        2 * env.action_space(params).high[0]
    )
    spec = dataclasses.replace(spec, init_fraction=float(min(max(frac, 0.02), 0.98)))
    learned = {}
    for name, folder, weight, source, iterations in BPTT_ROWS:
        if iterations is None or args.quick:
            iterations = args.iterations
        run = train_run(
            dataclasses.replace(
                spec,
                env_params={} if weight is None else {"charge_cost": weight},
                init_from=None if source is None else str(args.runs / source),
            ),
            RunOptions(
                args.runs / folder,
                iterations,
                save_every=5,
                resume=(args.runs / folder / "checkpoints").exists(),
                validate_every=5,
                validate_episodes=args.val_episodes,
            ),
        )
        # held-out rows under the default objective (same dynamics and spaces)
        h = ev.run_policy(env, params, run.parts, run.best_params, held)
        trained = (
            "" if weight is None else f"trained with charge weight {weight:g}/pC; "
        )
        if source is not None:
            trained += f"started from the {source} row's policy; "
        rows.append(
            row(
                name,
                f"{trained}iteration {run.best_iteration} of {iterations}, "
                f"batch {args.batch}, lr {args.lr:g}, truncation {args.truncation}",
                h,
                none_held,
                run.best_return,
            )
        )
        learned[name] = run
    hf_power = rows[1]["current_power"]
    least = (
        least_energy_at_hf_beta(rows)
        or min(
            (r for r in rows if r["name"].startswith("BPTT")),
            key=lambda r: r["current_power"],
        )
    )["name"]
    record = {
        "rows": rows,
        "sweep": sweep,
        "levels": levels,
        "hf_best_power": hf_power,
        "episode_ms": args.episode_ms,
        "eval_episodes": args.eval_episodes,
        "val_episodes": args.val_episodes,
        "wall_s": round(time.perf_counter() - t0, 1),
        "provenance": provenance(),
    }
    (args.out / "dbs_extracellular.json").write_text(json.dumps(record, indent=1))
    traces = {
        "no stimulation": ev.episode_traces(env, params, held[0], action=[0.0]),
        rows[1]["name"]: ev.episode_traces(
            env, params, held[0], action=[best["amplitude"]]
        ),
        "on/off aDBS": ev.episode_traces(env, params, held[0], *split(pol)),
        **{  # the default-weight row and the one at the least energy
            name: ev.episode_traces(env, params, held[0], run.parts, run.best_params)
            for name, run in learned.items()
            if name in (BPTT_ROWS[0][0], least)
        },
    }
    save_figure(
        figure(env, sweep, rows, traces, hf_power), args.out / "dbs_extracellular.png"
    )
    (args.out / "dbs_extracellular.md").write_text(markdown(record, args))
    log(f"wrote {args.out / 'dbs_extracellular.md'}")


def _envelope_levels(env, params, io, keys) -> dict[float, float]:
    """Percentiles of the unstimulated beta envelope over validation episodes [nV]."""
    field = io.field(dbs.ENVELOPE, "script")
    obs = [ev.episode_traces(env, params, k, action=[0.0])[1][:, field] for k in keys]
    flat = np.concatenate(obs)
    return {q: float(np.percentile(flat, q)) for q in PERCENTILES}


def least_energy_at_hf_beta(rows: list[dict]) -> dict | None:
    """The BPTT row with the least mean I² among those at HF-DBS's beta or less."""
    hf = next(r for r in rows if r["name"].startswith("HF-DBS best"))
    as_good = [
        r
        for r in rows
        if r["name"].startswith("BPTT") and r["beta_pct"] <= hf["beta_pct"]
    ]
    return min(as_good, key=lambda r: r["current_power"]) if as_good else None


def figure(env, sweep, rows, traces, hf_power):
    fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(16, 4.6))
    for sign, label, marker in (
        (1.0, "anodic phase first (A > 0)", "o-"),
        (-1.0, "cathodic phase first (A < 0)", "s--"),
    ):
        pts = sorted(
            (abs(r["amplitude"]), r["beta_pct"])
            for r in sweep
            if math.copysign(1, r["amplitude"]) == sign
        )
        ax0.plot(*zip(*pts, strict=True), marker, label=label)
    ax0.axhline(100.0, color="grey", lw=0.8, ls=":")
    ax0.set_xlabel("pulse amplitude |A| [µA] (biphasic, 0.3 ms per phase, 130 Hz)")
    ax0.set_ylabel("LFP beta power [% of no stimulation]")
    ax0.set_title("open-loop DBS, held-out episodes")
    ax0.legend(fontsize=8)

    # beta vs energy: the open-loop sweep, on/off and the BPTT continuation path
    def share(r):
        return 100.0 * r["current_power"] / hf_power  # [% of HF best]

    hf = next(r for r in rows if r["name"].startswith("HF-DBS best"))
    cath = sorted((share(r), r["beta_pct"]) for r in sweep if r["amplitude"] < 0)
    ax1.plot(*zip(*cath, strict=True), "s--", color="C1", ms=4, label="open loop")
    onoff = next(r for r in rows if r["name"] == "on/off aDBS")
    ax1.plot(share(onoff), onoff["beta_pct"], "D", color="C2", label="on/off aDBS")
    learned = [r for r in rows if r["name"].startswith("BPTT")]
    ax1.plot(
        [share(r) for r in learned],
        [r["beta_pct"] for r in learned],
        "o-",
        color="C3",
        label="BPTT MLP, charge weight ×1 … ×30000",
    )
    for i, r in enumerate(learned):  # weight tags, alternately above and below
        tag = r["name"].split(", ")[1].split(" ")[0] if ", " in r["name"] else "1x"
        ax1.annotate(
            tag,
            (share(r), r["beta_pct"]),
            fontsize=7,
            xytext=(2, 5 if i % 2 else -10),
            textcoords="offset points",
        )
    ax1.axvline(10.0, color="grey", lw=0.8, ls=":")
    ax1.axhline(hf["beta_pct"], color="grey", lw=0.8, ls=":")
    left = min(1.0, 0.5 * min(share(r) for r in [*learned, onoff] if share(r) > 0))
    ax1.text(
        1.2 * left,
        hf["beta_pct"] - 3,
        "target region:\nHF-DBS's beta\nat ≤ 10 % of its energy",
        fontsize=7,
        color="grey",
        va="top",
    )
    ax1.set_xscale("log")
    ax1.set_xlim(left, None)
    ax1.set_ylim(0.0, 1.3 * max(100.0, *(b for _, b in cath)))  # room for the legend
    ax1.set_xlabel("energy: mean I² [% of HF-DBS at its best amplitude]")
    ax1.set_ylabel("LFP beta power [% of no stimulation]")
    ax1.set_title("beta vs energy, held-out episodes")
    ax1.legend(fontsize=8, loc="upper right")

    fields = [n for n, _ in env.observation_fields()]
    k = fields.index(dbs.ENVELOPE)
    t = np.arange(env.n_steps) * env.config.control_ms  # [ms]
    for name, (_, obs) in traces.items():
        ax2.plot(t, obs[:, k], lw=1.0, label=name)
    ax2.set_xlabel("time [ms]")
    ax2.set_ylabel("beta envelope of the LFP [nV]")
    ax2.set_title("held-out episode 0")
    ax2.legend(fontsize=8)
    fig.suptitle("BetaSuppression-v0, extracellular electrode 30 µm from the STN axons")
    fig.tight_layout()
    return fig


def markdown(rec: dict, args) -> str:
    hf = rec["hf_best_power"]
    lines = [
        "# Closed-loop DBS through an extracellular electrode",
        "",
        "Regenerated by `python scripts/dbs_extracellular.py` "
        f"({rec['wall_s']:.0f} s; code {code_version(rec['provenance'])}). "
        '`BetaSuppression-v0` with `stimulation="extracellular"`: one point electrode '
        "30 µm from the plane of the ten STN axons at their midpoint (σ = 0.3 S/m), "
        "charge-balanced biphasic pulses (0.3 ms per phase) at 130 Hz whose amplitude "
        "[µA] is the action; the cells feel them only through the field along their "
        "axons. The LFP is the point-source potential of the membrane currents "
        "without the direct stimulus term (as if the pulses were blanked). "
        f"{rec['episode_ms']:.0f}-ms episodes; settings picked on "
        f"{rec['val_episodes']} "
        f"validation episodes, rows on {rec['eval_episodes']} held-out episodes "
        "(the keys of results/dbs.md). Beta = mean over episodes of the LFP beta "
        "power as a % of the same episode unstimulated (± s.e.m.); energy = mean I² "
        "of the electrode current [nA²] as a % of HF-DBS at its best amplitude; charge "
        "per episode [pC]; return = the env's objective (beta cost + "
        "1e-6/pC · charge).",
        "",
        "| controller | parameters | beta [% no-stim] | return ± s.e.m. | "
        "mean I² [nA²] | energy [% HF best] | charge [pC] |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rec["rows"]:
        lines.append(
            f"| {r['name']} | {r['params']} | "
            f"{r['beta_pct']:.1f} ± {r['beta_sem']:.1f} | "
            f"{r['return']:+.3f} ± {r['return_sem']:.3f} | {r['current_power']:.3g} | "
            f"{100 * r['current_power'] / hf:.1f} | {r['charge']:.3g} |"
        )
    lines += ["", "Open-loop sweep (held-out beta % and validation return):", ""]
    lines += [
        "| amplitude [µA] | beta [% no-stim] | validation return |",
        "|---:|---:|---:|",
    ]
    for r in sorted(rec["sweep"], key=lambda r: r["amplitude"]):
        lines.append(
            f"| {r['amplitude']:+g} | {r['beta_pct']:.1f} ± {r['beta_sem']:.1f} | "
            f"{r['val_return']:+.3f} |"
        )
    lines += ["", "## What it shows", "", *findings(rec)]
    lines += [
        "",
        "Figure: results/dbs_extracellular.png (left: open-loop beta vs amplitude for "
        "both polarities; middle: beta vs energy of every row and the cathodic "
        "sweep, with the target's corner; right: the beta envelope of held-out "
        "episode 0 without stimulation, under HF-DBS, on/off, BPTT at the default "
        "weight and the BPTT row with the least energy at HF-DBS's beta or less).",
        "",
    ]
    return "\n".join(lines)


def findings(rec: dict) -> list[str]:
    """The sweep's thresholds and the issue's energy target, from the record."""
    rows = {r["name"].split(" (")[0]: r for r in rec["rows"]}
    hf, hf_power = rows["HF-DBS best"], rec["hf_best_power"]
    out = []
    for sign, phase in ((-1.0, "cathodic"), (1.0, "anodic")):
        pts = sorted(
            (abs(r["amplitude"]), r["beta_pct"])
            for r in rec["sweep"]
            if math.copysign(1.0, r["amplitude"]) == sign
        )
        works = [a for a, b in pts if b < 50.0]
        out.append(
            f"- {phase.capitalize()} phase first: beta "
            + ", ".join(f"{b:.0f} % at {a:g} µA" for a, b in pts)
            + (
                f"; the first amplitude below 50 % is {works[0]:g} µA."
                if works
                else "; no amplitude brings it below 50 %."
            )
        )
    out.append(
        f"- The best open-loop setting (highest validation return) is "
        f"{hf['params']}: {hf['beta_pct']:.1f} % beta."
    )
    met = []
    for name in ("on/off aDBS", *(b[0] for b in BPTT_ROWS)):
        r = rows[name]
        share = 100.0 * r["current_power"] / hf_power
        ok = r["beta_pct"] <= hf["beta_pct"] and share <= 10.0
        met += [name] if ok and name.startswith("BPTT") else []
        out.append(
            f"- {name}: beta {r['beta_pct']:.1f} ± {r['beta_sem']:.1f} % at "
            f"{share:.1f} % of HF-DBS's energy (return {r['return']:+.3f} vs HF's "
            f"{hf['return']:+.3f}); HF-DBS's beta at ≤ 10 % of its energy: "
            f"{'**met**' if ok else 'missed'}."
        )
    least = least_energy_at_hf_beta(rec["rows"])
    if least is not None:
        out.append(
            f"- The least energy at which a BPTT row keeps HF-DBS's beta or less: "
            f"{100.0 * least['current_power'] / hf_power:.1f} % ({least['name']}). "
            "Raising the charge weight further trades beta for energy past "
            "HF-DBS's level (the rows above)."
        )
    out.append(
        "- Target of issue #16 (a BPTT policy at HF-DBS's beta with ≤ 10 % of its "
        f"energy): {'met by ' + ', '.join(met) if met else '**missed**'}. "
        "The returns above are all under the default objective (charge weight "
        "1e-6/pC)."
    )
    return out


if __name__ == "__main__":
    main()
