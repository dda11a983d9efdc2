"""Forward-mode analyses of the evidence plant: stability, closed loop, sensitivities.

Four applications of `neuroctl.analysis` (functions in `neuroctl.analysis.evidence`):

(a) Maximal Lyapunov exponent [1/ms] of the evidence plant before and after training,
    with no input and with the evidence input (g = 1), over ``--seeds`` initial
    conditions (rest at -65 mV + N(0, 2²) mV per node; own stimulus and tangent per
    seed). "Before training" is reported twice: the network's default parameters
    (g = 0.001 µS, w = 0.5: ``envs.evidence_stim.untrained_plant``) and the actual
    initialisation the shipped plant trained from (seed 0, g ≈ 0.02 g_max).
(b) Closed-loop maximal exponent of plant + a memoryless policy (obs = readout
    voltages and t/T, action = input gain, held for 1-ms control periods), per
    held-out 520-ms trial, for the fixed gain g = 1, a hand feedback law
    (`confidence_gate`) and, with ``--policy``, a trained policy.
(c) Sensitivity of the decision d = logit1 − logit0 [mV] to a current injected into
    each of the 20 cells in 20-ms bins (reverse mode, checkpointed), on held-out
    trials: a cells × time heatmap.
(d) Ranking of the 109 synaptic conductances by |∂d/∂g| (and ∂CE/∂g, g·∂d/∂g).

Writes results/analysis_applications.{md,json} and results/analysis_exponents.png,
results/analysis_stimulation_sensitivity.png, results/analysis_conductances.png,
each table with provenance. float64 throughout.

Run: ``python scripts/analysis_applications.py`` (~10 min on a loaded 2-core CPU;
open-loop horizon ``--seconds 3`` per seed by default);
``--quick`` for a smoke run (short horizons, few trials; writes to a temp folder
unless ``--out`` is given); ``--replot`` redraws the exponent and conductance figures
from the JSON (seconds).
"""

import argparse
import dataclasses
import json
import tempfile
import time
from functools import partial
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from neuroctl import analysis as an  # noqa: E402
from neuroctl import biophysics as bp  # noqa: E402
from neuroctl.analysis import evidence as ev  # noqa: E402
from neuroctl.envs.evidence_stim import untrained_plant  # noqa: E402
from neuroctl.errors import ConfigError  # noqa: E402
from neuroctl.io import save_figure  # noqa: E402
from neuroctl.plants import EvidencePlant, load  # noqa: E402
from neuroctl.plants import evidence_task as et  # noqa: E402
from neuroctl.plotting.analysis import conductance_figure  # noqa: E402
from neuroctl.train import plant as tp  # noqa: E402
from neuroctl.train.ship import provenance  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
PAPER = {"untrained": -1.0e-5, "trained": 1.69e-3}  # [1/ms], Jaxley paper (FACTS.md)
SEED_ROOT = 2**31 - 3  # open-loop initial conditions/stimuli (never used to train)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="measured [s]")
    ap.add_argument("--transient-ms", type=float, default=100.0, help="[ms]")
    ap.add_argument("--renorm-every", type=int, default=10, help="[steps]")
    ap.add_argument("--seeds", type=int, default=3, help="initial conditions")
    ap.add_argument("--v-jitter", type=float, default=2.0, help="[mV]")
    ap.add_argument("--trials", type=int, default=8, help="closed-loop trials")
    ap.add_argument("--grad-trials", type=int, default=6, help="(c), (d) trials")
    ap.add_argument("--bin-ms", type=float, default=20.0, help="(c) bins [ms]")
    ap.add_argument("--gate-mv", type=float, default=0.5, help="hand law scale [mV]")
    ap.add_argument(
        "--policy",
        type=Path,
        default=None,
        help="shipped memoryless policy folder, e.g. policies/evidence_gain_mlp",
    )
    ap.add_argument("--quick", action="store_true", help="smoke run")
    ap.add_argument(
        "--rewrite-md", action="store_true", help="only rewrite the .md from .json"
    )
    ap.add_argument(
        "--replot",
        action="store_true",
        help="only redraw analysis_exponents.png and analysis_conductances.png from "
        "the .json (the sensitivity heatmap needs per-trial data it does not hold)",
    )
    ap.add_argument("--out", type=Path, default=None, help="default: results/")
    ap.add_argument(
        "--closed-loop-only",
        action="store_true",
        help="recompute only (b) (e.g. with --policy) into the existing .json/.md",
    )
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.transient_ms, args.seeds = 0.1, 20.0, 2
        args.trials, args.grad_trials = 2, 1
        if args.out is None:
            args.out = Path(tempfile.mkdtemp(prefix="analysis_quick_"))
    args.out = RESULTS if args.out is None else args.out
    return args


# ------------------------------------------------------------------------ plants


def with_params(template: EvidencePlant, g, w, name: str) -> EvidencePlant:
    """`template`'s network and task (shared: one compile) with g [µS], w [1]."""
    params = et.apply_to_params(template.params, g)
    return EvidencePlant(template.network, params, g, w, template.task, name)


def plants() -> dict[str, EvidencePlant]:
    """Trained (shipped), default-untrained, and the training initialisation."""
    trained = load("evidence_integration")
    default = untrained_plant()
    n_syn, n_in = trained.g.shape[0], trained.input_weights.shape[0]
    init = tp.init_state(tp.TrainConfig(), n_syn, n_in).params
    g0, w0 = init.to_physical(trained.task)
    return {
        "untrained (default g = 0.001 µS, w = 0.5)": with_params(
            trained, default.g, default.input_weights, "default"
        ),
        "untrained (training init, seed 0)": with_params(trained, g0, w0, "init"),
        "trained (shipped)": trained,
    }


# -------------------------------------------------------------------- (a) open loop


def long_stimuli(plant: EvidencePlant, keys, n_steps: int):
    """One evidence stream of `n_steps` [1] per key (the task's process)."""
    trial_ms = n_steps * plant.task.dt  # [ms]
    task = dataclasses.replace(
        plant.task, trial_ms=trial_ms, response_window_ms=(trial_ms - 20.0, trial_ms)
    )
    return jax.vmap(lambda k: et.sample_trial(k, task).stimulus)(keys)


def open_loop(all_plants: dict, args) -> list[dict]:
    tmpl = next(iter(all_plants.values()))
    dt = tmpl.task.dt
    n_tr = round(args.transient_ms / dt)
    n_steps = n_tr + round(args.seconds * 1000 / dt)
    keys = jax.random.split(jax.random.key(SEED_ROOT), args.seeds)
    stims = long_stimuli(
        tmpl, jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys), n_steps
    )
    opts = {"renorm_every": args.renorm_every, "n_transient": n_tr}
    opts["v_jitter"] = args.v_jitter

    def one(g, w, key, stim):
        plant = with_params(tmpl, g, w, "x")
        if stim is None:
            return ev.plant_exponent(plant, key, None, n_steps=n_steps, **opts)
        return ev.plant_exponent(plant, key, stim, **opts)

    rows = []
    for inp in ("none", "evidence"):
        s_axis = None if inp == "none" else 0
        fn = jax.jit(jax.vmap(one, in_axes=(None, None, 0, s_axis)))
        s_arg = None if inp == "none" else stims
        t0 = time.perf_counter()
        compiled = fn.lower(tmpl.g, tmpl.input_weights, keys, s_arg).compile()
        t_compile = time.perf_counter() - t0
        for name, plant in tqdm(all_plants.items(), desc=f"(a) input={inp}"):
            t0 = time.perf_counter()
            lam = np.asarray(compiled(plant.g, plant.input_weights, keys, s_arg))
            rows.append(
                _row(name, inp, lam, time.perf_counter() - t0, t_compile, n_steps)
            )
            print(_fmt(rows[-1]), flush=True)
    return rows


def _row(name, inp, lam, wall, t_compile, n_steps) -> dict:
    return {
        "plant": name,
        "input": inp,
        "lambda_per_ms": lam.tolist(),
        "mean": float(lam.mean()),
        "std": float(lam.std(ddof=1)) if lam.size > 1 else 0.0,
        "wall_s": round(wall, 1),
        "compile_s": round(t_compile, 1),
        "steps_per_seed": n_steps,
    }


def _fmt(r: dict) -> str:
    return (
        f"{r['plant']:45s} {r['input']:9s} λ = {r['mean']:+.2e} ± {r['std']:.1e} "
        f"/ms  ({r['wall_s']:.0f} s)"
    )


# ------------------------------------------------------------------ (b) closed loop


def policies(args) -> dict:
    """Name → (policy, control period [ms], g_max [1])."""
    out = {
        "fixed gain g = 1": (ev.constant_gain(1.0), 1.0, 2.0),
        f"confidence gate (hand, {args.gate_mv} mV)": (
            ev.confidence_gate(args.gate_mv),
            1.0,
            2.0,
        ),
    }
    if args.policy is not None:
        out[f"trained ({args.policy.name})"] = load_policy(args.policy)
    return out


def load_policy(path: Path) -> tuple[ev.Policy, float, float]:
    """A shipped memoryless policy as ``obs -> gain``, its control period and g_max.

    Uses `neuroctl.policies.load_policy` (verifies the checkpoint and that it was
    trained on the shipped plant); the module is called as ``module(carry, obs)``
    with its empty initial carry.
    """
    from neuroctl.policies import load_policy as load_shipped

    module, spec, _ = load_shipped(path)
    if spec.observe_evidence:
        raise ConfigError(
            f"--policy: got {str(path)!r}, which also observes the mean stimulus; "
            "the closed-loop exponent here feeds the seed's observation [v_readout0, "
            "v_readout1, t/T]; pass a policy shipped without observe_evidence."
        )
    carry = module.initial_carry()
    if carry.size:
        raise ConfigError(
            f"--policy: got {str(path)!r}, a {spec.policy!r} policy with a "
            f"{carry.size}-unit memory; expected a memoryless one (mlp, fixed): the "
            "closed-loop exponent here acts on the plant state only."
        )
    return partial(_call_policy, module, carry), spec.control_ms, spec.g_max


def _call_policy(module, carry, obs):
    return module(carry, obs)[1]


def closed_loop(plant: EvidencePlant, args) -> list[dict]:
    keys = tp.evaluation_keys(args.trials, tp.EVAL_SEED)
    trials = jax.vmap(plant.sample_trial)(keys)
    t_keys = jax.vmap(lambda k: jax.random.fold_in(k, 7))(keys)
    rows = []
    for name, pol in tqdm(policies(args).items(), desc="(b) closed loop"):
        t0 = time.perf_counter()
        lam, out = _closed_loop_batch(plant, pol, trials.stimulus, t_keys)
        lam = np.asarray(lam)
        correct = np.asarray(jax.vmap(et.accuracy)(out.logits, trials.label))
        rows.append(
            {
                "policy": name,
                "lambda_per_ms": lam.tolist(),
                "mean": float(lam.mean()),
                "std": float(lam.std(ddof=1)) if lam.size > 1 else 0.0,
                "accuracy": float(correct.mean()),
                "mean_gain": float(np.mean(out.gains)),
                "current_power_nA2": float(np.mean(out.current_power)),
                "wall_s": round(time.perf_counter() - t0, 1),
            }
        )
        print(f"{name:40s} λ = {lam.mean():+.2e} ± {rows[-1]['std']:.1e} /ms")
    return rows


def _closed_loop_batch(plant, pol, stimuli, keys):
    policy, control_ms, g_max = pol
    opts = {"control_ms": control_ms, "g_max": g_max}

    @jax.jit
    def run(stimuli, keys):
        exp = jax.vmap(
            lambda s, k: ev.closed_loop_exponent(plant, policy, s, k, **opts)
        )
        roll = jax.vmap(lambda s: ev.closed_loop_trial(plant, policy, s, **opts))
        return exp(stimuli, keys), roll(stimuli)

    return run(stimuli, keys)


# ---------------------------------------------------------- (c, d) decision gradients


def gradients(plant: EvidencePlant, args) -> tuple[dict, dict]:
    bin_steps = round(args.bin_ms / plant.task.dt)
    lengths = bp.checkpoint_lengths_for(plant.task.n_steps)
    keys = tp.evaluation_keys(args.grad_trials, tp.EVAL_SEED - 1)

    @jax.jit
    def one(key):
        trial = plant.sample_trial(key)
        return trial.label, ev.decision_gradients(plant, trial, bin_steps, lengths)

    t0 = time.perf_counter()
    out = [one(k) for k in tqdm(keys, desc="(c, d) gradients")]
    wall = time.perf_counter() - t0
    labels = np.array([int(o[0]) for o in out])
    stacked = jax.tree.map(lambda *x: np.stack(x), *[o[1] for o in out])
    check = jvp_check(plant, plant.sample_trial(keys[0]), bin_steps, stacked)
    meta = {"wall_s": round(wall, 1), "bin_steps": bin_steps, "labels": labels}
    return stacked._asdict(), {**meta, "jvp_check": check}


def jvp_check(plant, trial, bin_steps, grads) -> dict:
    """Reverse-mode ∂d/∂u · r vs a forward-mode JVP along a random r [mV]."""
    fn = jax.jit(ev.decision_function(plant, trial.stimulus, bin_steps))
    u = jnp.zeros(grads.wrt_current.shape[1:], plant.g.dtype)
    r = an.random_direction(jax.random.key(5), u)
    _, fwd = jax.jit(an.directional_derivative, static_argnums=0)(
        fn, (plant.g, u), (None, r)
    )
    fwd, rev = float(fwd), float(jnp.vdot(grads.wrt_current[0], r))
    return {"jvp": fwd, "grad_dot": rev, "rel_error": abs(fwd - rev) / abs(fwd)}


# ------------------------------------------------------------------------ figures


def exponent_figure(open_rows: list[dict], cl_rows: list[dict]):
    fig, ax = plt.subplots(figsize=(8.5, 3.8), layout="constrained")
    labels = [f"{r['plant']}\ninput: {r['input']}" for r in open_rows]
    labels += [f"closed loop\n{r['policy']}" for r in cl_rows]
    for i, r in enumerate(open_rows + cl_rows):
        lam = np.asarray(r["lambda_per_ms"])
        ax.plot(np.full(lam.size, i), lam, "o", ms=4, alpha=0.6, color=f"C{i % 10}")
        ax.errorbar(i + 0.2, r["mean"], yerr=r["std"], fmt="s", color="k", ms=4)
    for key, val in PAPER.items():
        ax.axhline(val, ls="--", lw=0.8, color="0.5")
        ax.text(len(labels) - 0.5, val, f"paper {key}", fontsize=7, va="bottom")
    ax.axhline(0.0, lw=0.6, color="k")
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=6)
    ax.set_ylabel("max Lyapunov exponent λ₁ [1/ms]")
    ax.set_title("Evidence plant: open loop (seeds) and closed loop (trials)")
    return fig


def cell_names(n_inhibitory: int = 10, n_cells: int = 20) -> list[str]:
    return [("I" if i < n_inhibitory else "E") + str(i) for i in range(n_cells)]


def sensitivity_figure(wrt_current: np.ndarray, labels: np.ndarray, bin_ms: float):
    toward = (2 * labels - 1)[:, None, None] * wrt_current  # + = toward the answer
    panels = [
        (toward.mean(0), "mean (2y−1)·∂d/∂u: + pushes toward the correct answer"),
        (np.abs(wrt_current).mean(0), "mean |∂d/∂u|"),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
    n_bins = wrt_current.shape[1]
    extent = (0, n_bins * bin_ms, wrt_current.shape[2] - 0.5, -0.5)
    for ax, (img, title) in zip(axes, panels, strict=True):
        lim = np.abs(img).max()
        signed = img.min() < 0
        im = ax.imshow(
            img.T,
            aspect="auto",
            extent=extent,
            cmap="RdBu_r" if signed else "viridis",
            vmin=-lim if signed else 0,
            vmax=lim,
        )
        fig.colorbar(im, ax=ax, label="[mV/nA]")
        ax.set_yticks(range(img.shape[1]), cell_names(n_cells=img.shape[1]), fontsize=6)
        ax.set(xlabel="injection bin start [ms]", title=title)
        ax.title.set_fontsize(8)
    fig.suptitle(
        f"Decision d = logit1 − logit0 vs current into each cell's basal "
        f"compartment, {bin_ms:g}-ms bins ({len(labels)} held-out trials)",
        fontsize=9,
    )
    return fig


# ------------------------------------------------------------------------ tables


def conductance_table(plant: EvidencePlant, grads: dict) -> list[dict]:
    g = np.asarray(plant.g)
    dd, dce = grads["wrt_conductance"], grads["ce_wrt_conductance"]
    n = plant.network.n_stimuli
    rows = []
    for k, s in enumerate(ev.synapse_labels()):
        post = f"R{s.post - n}" if s.kind == "readout" else cell_names()[s.post]
        rows.append(
            {
                "index": k,
                "pre": cell_names()[s.pre],
                "post": post,
                "kind": s.kind,
                "type": s.sign,
                "g_uS": float(g[k]),
                "mean_abs_dd_dg": float(np.abs(dd[:, k]).mean()),
                "mean_dd_dg": float(dd[:, k].mean()),
                "mean_abs_dce_dg": float(np.abs(dce[:, k]).mean()),
                "mean_abs_elasticity": float(np.abs(g[k] * dd[:, k]).mean()),
            }
        )
    return rows


def markdown(out: dict) -> str:
    a, hw = out["settings"], out["provenance"]["hardware"]
    lines = [
        "# Evidence plant: stability, closed loop and sensitivities (JVP/VJP)",
        "",
        "`python scripts/analysis_applications.py` — float64, dt = 0.025 ms, "
        "backward Euler; functions in `neuroctl.analysis.evidence`. "
        f"Shared {hw['cpu_count']}-core CPU (load average "
        f"{hw['load_average_1_5_15']}), JAX {out['provenance']['jax_version']}, "
        f"commit {str(out['provenance']['git_commit'])[:7]}, "
        f"{out['provenance']['date_utc']}. "
        f"Total wall time {out['total_wall_s']:.0f} s.",
        "",
        *_open_section(out["open_loop"], a),
        *_closed_section(out["closed_loop"], a),
        *_sensitivity_section(out, a),
    ]
    return "\n".join(lines) + "\n"


def _open_section(rows: list[dict], a: dict) -> list[str]:
    body = [
        f"| {r['plant']} | {r['input']} | {r['mean']:+.2e} | {r['std']:.1e} | "
        f"{', '.join(f'{x:+.2e}' for x in r['lambda_per_ms'])} | {r['wall_s']:.0f} |"
        for r in rows
    ]
    return [
        "## (a) Maximal Lyapunov exponent before and after training",
        "",
        f"Horizon {a['seconds']:g} s measured after a {a['transient_ms']:g}-ms "
        f"transient ({rows[0]['steps_per_seed']:,} steps per seed), one JVP "
        f"tangent renormalised every {a['renorm_every']} steps "
        f"({a['renorm_every'] * 0.025:g} ms), on the dynamic state components "
        "(`solver_state_mask`: 491 of 635). "
        f"{a['seeds']} seeds: initial voltages -65 mV + N(0, {a['v_jitter']}²) mV "
        "per node, gates at rest, own tangent; with input, each seed gets its own "
        "evidence stream of the task's process (white noise N(±0.005, 0.05²) per "
        "step, 80-Hz Butterworth), g = 1. Mean ± sample std over seeds. Compile "
        f"{rows[0]['compile_s']:.0f} s (none) / {rows[-1]['compile_s']:.0f} s "
        "(evidence), once for all plants; wall = all seeds of one row (vmapped).",
        "",
        "| plant | input | λ₁ mean [1/ms] | std | per seed [1/ms] | wall [s] |",
        "|---|---|---|---|---|---|",
        *body,
        "",
        f"The paper reports {PAPER['untrained']:+.1e} /ms untrained and "
        f"{PAPER['trained']:+.2e} /ms trained (Jaxley paper, fig. 5; FACTS.md). "
        "Its horizon, input condition, initial state and renormalisation are not "
        "known to us, and its network was trained with its own initialisation and "
        "input scale (ours: FACTS.md, `TaskConfig`), so the comparison is of signs "
        "and magnitudes only.",
        "",
        *_comparison(rows),
        "",
    ]


def _comparison(rows: list[dict]) -> list[str]:
    by = {(r["plant"], r["input"]): r for r in rows}
    out = []
    for (plant, inp), r in by.items():
        paper = PAPER["trained" if plant.startswith("trained") else "untrained"]
        agree = (
            "agrees with" if np.sign(r["mean"]) == np.sign(paper) else "differs from"
        )
        out.append(
            f"- {plant}, input {inp}: λ₁ = {r['mean']:+.2e} ± {r['std']:.1e} /ms; "
            f"sign {agree} the paper's {paper:+.2e} /ms."
        )
    return out + [
        "",
        "Reading: without input the network is autonomous, so a trajectory that "
        "does not settle has an exponent ≥ 0 (the flow direction gives exactly 0); "
        "a clearly negative λ₁ means it settled to rest. The paper's -1.0e-5 /ms "
        "is 0 within any finite-time error. With the evidence noise as input the "
        "map is non-autonomous and λ₁ measures whether two copies of the network "
        "driven by the same evidence converge (< 0: reliable, input-driven "
        "response) or diverge (> 0: chaotic).",
    ]


def _closed_section(rows: list[dict], a: dict) -> list[str]:
    body = [
        f"| {r['policy']} | {r['mean']:+.2e} | {r['std']:.1e} | "
        f"{r['accuracy']:.3f} | {r['mean_gain']:.3f} | "
        f"{r['current_power_nA2']:.2e} | {r['wall_s']:.0f} |"
        for r in rows
    ]
    return [
        "## (b) Closed-loop maximal exponent (trained plant + policy)",
        "",
        "One-step map = one 1-ms control period: obs = [v_readout0, v_readout1, t/T] "
        "→ gain g = clip(policy(obs), 0, 2), held for 40 solver steps. The tangent "
        "lives on the plant's ODE state and is pushed through the policy (∂g/∂v); "
        "the stimulus and t/T are inputs. Per held-out 520-ms trial (keys "
        f"`split(key(2**31-1), {a['trials']})`), renormalised every period, 20-ms "
        "transient: a finite-time exponent per trial; mean ± std over trials. "
        "g = 1 is exactly the open-loop plant on that trial (a test checks the "
        "equality). Accuracy, mean gain and mean current power "
        "mean_{t,i} I_i(t)² from a closed-loop rollout of the same trials.",
        "",
        "| policy | λ₁ mean [1/ms] | std | accuracy | mean gain | power [nA²] | "
        "wall [s] |",
        "|---|---|---|---|---|---|---|",
        *body,
        "",
    ]


def _sensitivity_section(out: dict, a: dict) -> list[str]:
    top = sorted(out["conductances"], key=lambda r: -r["mean_abs_dd_dg"])[:10]
    body = [
        f"| {i + 1} | {r['index']} | {r['pre']} | {r['post']} | {r['kind']} | "
        f"{r['type']} | {r['g_uS']:.2e} | {r['mean_abs_dd_dg']:.3g} | "
        f"{r['mean_dd_dg']:+.3g} | {r['mean_abs_dce_dg']:.3g} | "
        f"{r['mean_abs_elasticity']:.3g} |"
        for i, r in enumerate(top)
    ]
    g = out["gradients"]
    chk = g["jvp_check"]
    return [
        "## (c) Decision sensitivity to stimulation of each cell",
        "",
        f"{a['grad_trials']} held-out trials (keys `split(key(2**31-2), n)`), "
        "decision d = mean(v_readout1) − mean(v_readout0) over (500, 520] ms [mV]. "
        f"∂d/∂u for a current u [nA] added to each cell's basal compartment over "
        f"each {a['bin_ms']:g}-ms bin, by one checkpointed reverse pass per trial "
        f"({g['wall_s']:.0f} s in all, incl. compile). Forward-mode check on trial "
        f"0 along a random direction: JVP {chk['jvp']:+.6e} vs gradient·direction "
        f"{chk['grad_dot']:+.6e} (relative difference {chk['rel_error']:.1e}). "
        "Figure: `analysis_stimulation_sensitivity.png`.",
        "",
        f"Largest mean |∂d/∂u|: {out['sensitivity_summary']}",
        "",
        "## (d) Ranking of the 109 synaptic conductances",
        "",
        "Same trials and reverse pass: ∂d/∂g [mV/µS]; ∂CE/∂g = ∂CE/∂d · ∂d/∂g "
        "[nats/µS] (two-class CE depends on d only); elasticity |g·∂d/∂g| [mV] "
        "(effect of a relative change). Ranked by mean |∂d/∂g| over trials. R0/R1 "
        "are the readouts. Figure: `analysis_conductances.png`.",
        "",
        "| rank | index | pre | post | kind | type | g [µS] | mean abs dd/dg "
        "[mV/µS] | mean dd/dg | mean abs dCE/dg [nats/µS] | mean abs g·dd/dg [mV] |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *body,
        "",
    ]


def sensitivity_summary(wrt_current: np.ndarray, bin_ms: float) -> str:
    mag = np.abs(wrt_current).mean(0)  # (bins, cells) [mV/nA]
    per_cell = mag.max(0)
    order = np.argsort(-per_cell)[:5]
    names = cell_names(n_cells=mag.shape[1])
    parts = [
        f"{names[c]} {per_cell[c]:.3g} mV/nA (bin at "
        f"{np.argmax(mag[:, c]) * bin_ms:g} ms)"
        for c in order
    ]
    late = mag[-1].mean() / max(mag[0].mean(), 1e-300)
    return "; ".join(parts) + f". Last bin vs first bin (mean over cells): {late:.3g}x."


def main() -> None:
    args = parse_args()
    if args.replot:  # redraw what the JSON holds the data of
        out = json.loads((args.out / "analysis_applications.json").read_text())
        for name, fig in (
            (
                "analysis_exponents.png",
                exponent_figure(out["open_loop"], out["closed_loop"]),
            ),
            ("analysis_conductances.png", conductance_figure(out["conductances"])),
        ):
            print("wrote", save_figure(fig, args.out / name))
        return
    if args.rewrite_md:  # regenerate the markdown from an existing JSON
        out = json.loads((args.out / "analysis_applications.json").read_text())
        (args.out / "analysis_applications.md").write_text(markdown(out))
        return
    if args.closed_loop_only:  # (b) again, the rest kept from the existing JSON
        path = args.out / "analysis_applications.json"
        out = json.loads(path.read_text())
        t0 = time.perf_counter()
        out["closed_loop"] = closed_loop(plants()["trained (shipped)"], args)
        out["settings"]["policy"] = None if args.policy is None else str(args.policy)
        out["closed_loop_provenance"] = provenance()
        out["closed_loop_wall_s"] = round(time.perf_counter() - t0, 1)
        fig = exponent_figure(out["open_loop"], out["closed_loop"])
        save_figure(fig, args.out / "analysis_exponents.png")
        path.write_text(json.dumps(out, indent=1) + "\n")
        (args.out / "analysis_applications.md").write_text(markdown(out))
        print(f"rewrote (b) in {args.out}/analysis_applications.md and .json")
        return
    t_start = time.perf_counter()
    all_plants = plants()
    trained = all_plants["trained (shipped)"]
    open_rows = open_loop(all_plants, args)
    cl_rows = closed_loop(trained, args)
    grads, meta = gradients(trained, args)
    table = conductance_table(trained, grads)
    out = {
        "settings": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
        },
        "paper_per_ms": PAPER,
        "open_loop": open_rows,
        "closed_loop": cl_rows,
        "gradients": {
            "wall_s": meta["wall_s"],
            "bin_steps": meta["bin_steps"],
            "labels": meta["labels"].tolist(),
            "jvp_check": meta["jvp_check"],
            "decision_mV": grads["decision"].tolist(),
            "cross_entropy": grads["cross_entropy"].tolist(),
            "mean_wrt_current_mV_per_nA": grads["wrt_current"].mean(0).tolist(),
            "mean_abs_wrt_current_mV_per_nA": np.abs(grads["wrt_current"])
            .mean(0)
            .tolist(),
        },
        "sensitivity_summary": sensitivity_summary(grads["wrt_current"], args.bin_ms),
        "conductances": table,
        "provenance": provenance(),
    }
    out["total_wall_s"] = round(time.perf_counter() - t_start, 1)
    write(out, grads, meta, args)


def write(out: dict, grads: dict, meta: dict, args) -> None:
    d = args.out
    d.mkdir(parents=True, exist_ok=True)
    figs = {
        "analysis_exponents.png": exponent_figure(out["open_loop"], out["closed_loop"]),
        "analysis_stimulation_sensitivity.png": sensitivity_figure(
            grads["wrt_current"], meta["labels"], args.bin_ms
        ),
        "analysis_conductances.png": conductance_figure(out["conductances"]),
    }
    for name, fig in figs.items():
        save_figure(fig, d / name)
        plt.close(fig)
    (d / "analysis_applications.json").write_text(json.dumps(out, indent=1) + "\n")
    (d / "analysis_applications.md").write_text(markdown(out))
    print(f"wrote {d}/analysis_applications.md, .json and {len(figs)} figures")


if __name__ == "__main__":
    main()
