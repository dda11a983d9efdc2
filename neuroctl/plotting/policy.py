"""Figures of stimulation policies on the evidence plant."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def example_trial_figure(
    env, env_params, policy, label: str, n_trials: int = 2
) -> Figure:
    """Evidence stimulus, policy gain and readout voltages on held-out trials.

    One column per trial (the first held-out trial of each label, so both decisions
    show), the ``g = 1`` baseline's readouts dashed for comparison; the response
    window is shaded.

    Args:
        env: the `EvidenceStim` env.
        env_params: its params.
        policy: a gain policy module (`neuroctl.policies`).
        label: the policy's name for the legend.
        n_trials: columns (trials) [1].
    """
    from neuroctl.envs.core import episode_keys
    from neuroctl.envs.evidence_stim import trial_stimulus
    from neuroctl.train.plant import evaluation_keys
    from neuroctl.train.policy_eval import baseline_policy, gain_trace

    keys = evaluation_keys(64)
    chosen, seen = [], set()
    for k in keys:  # first trial of each label
        lab = int(env.init_state(episode_keys(k)[0], env_params).mean > 0)
        if lab not in seen:
            seen.add(lab)
            chosen.append(k)
        if len(chosen) == n_trials:
            break
    base = baseline_policy(env_params, env.config.jnp_dtype)
    ctrl_ms = env.config.control_ms
    t_ctrl = (np.arange(env.n_steps) + 1) * ctrl_ms  # end of each control step [ms]
    window = env.task.response_window_ms
    fig, axes = plt.subplots(
        3,
        len(chosen),
        figsize=(5.5 * len(chosen), 7),
        sharex=True,
        constrained_layout=True,
        squeeze=False,
    )
    for col, key in enumerate(chosen):
        ep = gain_trace(env, env_params, policy, key)
        ep0 = gain_trace(env, env_params, base, key)
        stim = np.asarray(trial_stimulus(env, episode_keys(key)[0], env_params))
        t_sim = (np.arange(stim.shape[0]) + 1) * env.config.dt
        lab = int(np.sum(stim) > 0)
        ax = axes[0, col]
        ax.plot(t_sim, stim, lw=0.6, color="0.3")
        ax.axhline(0, color="k", lw=0.5)
        ax.set(ylabel="evidence s(t) [1]", title=f"held-out trial, label {lab}")
        ax = axes[1, col]
        ax.plot(t_ctrl, np.asarray(ep0.gains), "--", color="0.5", lw=1, label="g = 1")
        ax.plot(t_ctrl, np.asarray(ep.gains), color="C3", lw=1.2, label=label)
        ax.set(ylabel="gain g [1]")
        ax.legend(loc="upper left", fontsize=8)
        ax = axes[2, col]
        for r in range(2):
            ax.plot(
                t_ctrl,
                np.asarray(ep.readouts)[:, r],
                color=f"C{r}",
                lw=1.1,
                label=f"readout {r} ({label})",
            )
            ax.plot(
                t_ctrl,
                np.asarray(ep0.readouts)[:, r],
                "--",
                color=f"C{r}",
                lw=0.8,
                alpha=0.7,
                label=f"readout {r} (g = 1)",
            )
        ax.set(xlabel="time [ms]", ylabel="readout voltage [mV]")
        ax.text(
            0.01,
            0.02,
            f"{label}: {'correct' if ep.correct else 'WRONG'}, "
            f"mean g² = {float(ep.mean_gain_sq):.4f}",
            transform=ax.transAxes,
            fontsize=8,
        )
        ax.legend(loc="upper left", fontsize=7, ncol=2)
        for row in axes[:, col]:
            row.axvspan(*window, color="gold", alpha=0.3, lw=0)
    return fig
