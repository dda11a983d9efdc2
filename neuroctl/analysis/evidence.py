r"""Applications of the analysis tools to the evidence-integration plant.

Open loop, the plant is driven by the filtered evidence stimulus :math:`s(t)` [1]
through its input weights :math:`w_i` [1]: ``I_i(t) = g · input_scale · w_i · s(t)``
[nA] into the basal compartment of cell ``i`` (``g = 1``: the plant's native input).

Closed loop, a memoryless policy sees ``obs = [v_readout0 [mV], v_readout1 [mV],
t/T [1]]`` at the start of each control period (as `neuroctl.envs.EvidenceStim`
does) and returns the gain ``g`` [1], clipped to ``[0, g_max]`` and held for the
period. The closed-loop one-step map acts on the plant's ODE state only (the
policy has no state); the evidence ``s(t)`` and the clock ``t/T`` are per-step
*inputs* (they do not depend on the state), so they enter the tangent dynamics
only through ``∂g/∂obs``. The stimulus is `evidence_task.sample_trial`'s (the
env draws the same process, not the same samples).

The decision variable is the readout logit difference
:math:`d = \bar v_1 - \bar v_0` [mV] over the response window (decision = 1 iff
``d > 0``). With two classes the softmax cross-entropy is a function of ``d``
alone, :math:`\mathrm{CE} = \mathrm{softplus}((1 - 2y)\, d)`, so its gradient is
:math:`\partial \mathrm{CE}/\partial d \cdot \nabla d`: one reverse pass gives the
sensitivity of both to injected currents and to the synaptic conductances.

Everything here is written for one trial / one initial condition; vmap over keys.
"""

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from neuroctl import biophysics as bp
from neuroctl.analysis._flat import Step
from neuroctl.analysis.lyapunov import max_lyapunov_exponent
from neuroctl.analysis.masks import solver_state_mask
from neuroctl.errors import bad_value
from neuroctl.plants import evidence_task as et
from neuroctl.plants.evidence import EvidencePlant
from neuroctl.plants.evidence_net import EvidenceNetConfig, recurrent_pairs

#: ``policy(obs) -> gain``: obs ``(3,)`` = [v_readout0 [mV], v_readout1 [mV], t/T
#: [1]], gain [1] (a scalar or shape ``(1,)``). Must be JAX-traceable.
Policy = Callable[[Array], Array]


def decision_value(logits: Float[Array, " 2"]) -> Float[Array, ""]:
    """Logit difference ``d = logit1 - logit0`` [mV]; the decision is ``d > 0``."""
    return logits[1] - logits[0]


def dynamic_mask(plant: EvidencePlant, dtype) -> Bool[np.ndarray, " n"]:
    """`solver_state_mask` of the plant's state (NumPy; safe to call under jit)."""
    with jax.ensure_compile_time_eval():
        state = bp.init_state(plant.network, plant.params, plant.task.v_init, dtype)
        return solver_state_mask(plant.network, state)


def initial_state(
    plant: EvidencePlant, key: Array, v_jitter: float = 0.0, dtype=None
) -> bp.State:
    """Rest at ``task.v_init`` (gates at steady state), voltages + N(0, v_jitter²) [mV].

    Args:
        plant: the plant.
        key: draws the voltage jitter.
        v_jitter: standard deviation of the per-node voltage offset [mV].
        dtype: float dtype of the state (default: the plant's conductances').
    """
    dtype = plant.g.dtype if dtype is None else dtype
    state = bp.init_state(plant.network, plant.params, plant.task.v_init, dtype)
    dv = v_jitter * jax.random.normal(key, state.v.shape, dtype)  # [mV]
    return eqx.tree_at(lambda s: s.v, state, state.v + dv)


def stimulus_step(plant: EvidencePlant, gain: float | Array = 1.0) -> Step:
    """One-step map ``step(state, s)`` of the plant for a stimulus sample ``s`` [1].

    The current into cell ``i`` is ``gain · input_scale · w_i · s`` [nA]; ``s=None``
    means no input. The step is ``task.dt`` [ms], backward Euler.
    """
    return partial(_stimulus_step, plant, gain)


def _stimulus_step(plant: EvidencePlant, gain, state: bp.State, s) -> bp.State:
    s = jnp.zeros((), state.v.dtype) if s is None else s
    params = plant.network.cast_params(plant.params, state.v.dtype)
    w = plant.input_weights.astype(state.v.dtype)
    currents = gain * plant.task.input_scale * w * s  # [nA]
    return bp.step(plant.network, params, state, currents, plant.task.dt)


def plant_exponent(
    plant: EvidencePlant,
    key: Array,
    stimulus: Float[Array, " T"] | None = None,
    *,
    n_steps: int | None = None,
    renorm_every: int = 10,
    n_transient: int = 4000,
    v_jitter: float = 2.0,
) -> Float[Array, ""]:
    """Maximal Lyapunov exponent [1/ms] of the open-loop plant.

    Args:
        plant: the plant (its float dtype is used throughout).
        key: split into the initial-state jitter and the initial tangent.
        stimulus: filtered evidence per solver step ``(T,)`` [1], or None for no
            input (then give `n_steps`).
        n_steps: horizon T [steps] when `stimulus` is None.
        renorm_every: steps between renormalisations [steps].
        n_transient: steps before the exponent is accumulated [steps].
        v_jitter: initial-voltage jitter [mV] (see `initial_state`).
    """
    dtype = plant.g.dtype
    k_state, k_tangent = jax.random.split(key)
    return max_lyapunov_exponent(
        stimulus_step(plant),
        initial_state(plant, k_state, v_jitter, dtype),
        None if stimulus is None else jnp.asarray(stimulus, dtype),
        dt=plant.task.dt,
        n_steps=n_steps,
        renorm_every=renorm_every,
        n_transient=n_transient,
        mask=dynamic_mask(plant, dtype),
        key=k_tangent,
    )


# ------------------------------------------------------------------------ closed loop


def control_inputs(
    stimulus: Float[Array, " T"], substeps: int
) -> tuple[Float[Array, "n substeps"], Float[Array, " n"]]:
    """Per control period: the stimulus samples ``(n, substeps)`` [1] and t/T [1].

    ``t/T = k / n`` at the start of period ``k`` (as `EvidenceStim` observes it).
    """
    stimulus = jnp.asarray(stimulus)
    t = stimulus.shape[0]
    if t % substeps:
        raise bad_value(
            "stimulus",
            f"{t} steps",
            f"a multiple of the control period's {substeps} solver steps",
            "pick control_ms so that control_ms / dt divides the trial.",
        )
    n = t // substeps
    return stimulus.reshape(n, substeps), jnp.arange(n, dtype=stimulus.dtype) / n


def substeps_of(plant: EvidencePlant, control_ms: float) -> int:
    """Solver steps per control period [1], or `ConfigError`."""
    ratio = control_ms / plant.task.dt
    if not (math.isfinite(ratio) and ratio >= 1 and abs(ratio - round(ratio)) < 1e-9):
        raise bad_value(
            "control_ms",
            control_ms,
            f"a positive multiple of dt = {plant.task.dt} ms",
            "e.g. control_ms=1.0 (40 solver steps).",
        )
    return round(ratio)


def closed_loop_step(plant: EvidencePlant, policy: Policy, g_max: float = 2.0) -> Step:
    """One control period of plant + policy: ``step(state, (s, t_frac)) -> state``.

    Args:
        plant: the frozen plant.
        policy: ``policy(obs) -> gain`` (see `Policy`), JAX-traceable.
        g_max: the gain is clipped to ``[0, g_max]`` [1] (the env's action space).

    The input of one period is its stimulus samples ``(substeps,)`` [1] and ``t/T``
    [1] (`control_inputs`); the period lasts ``substeps · task.dt`` [ms].
    """
    return partial(_closed_loop_state, plant, policy, g_max)


def _closed_loop_state(plant, policy, g_max, state, inp) -> bp.State:
    return _closed_loop_period(plant, policy, g_max, state, inp)[0]


def _closed_loop_period(plant, policy, g_max, state, inp):
    """State after one period, and (gain [1], readout voltages (substeps, 2) [mV])."""
    s, t_frac = inp
    readouts = plant.network.recording_nodes[: et.N_READOUTS]
    obs = jnp.concatenate([state.v[readouts], jnp.reshape(t_frac, (1,))])
    gain = jnp.clip(jnp.reshape(policy(obs), ()), 0.0, g_max)  # [1]
    body = partial(_record_step, stimulus_step(plant, gain), readouts)
    state, v_read = jax.lax.scan(body, state, s)
    return state, (gain, v_read)


def _record_step(step, readouts, state, s):
    state = step(state, s)
    return state, state.v[readouts]


def closed_loop_exponent(
    plant: EvidencePlant,
    policy: Policy,
    stimulus: Float[Array, " T"],
    key: Array,
    *,
    control_ms: float = 1.0,
    g_max: float = 2.0,
    transient_ms: float = 20.0,
    v_jitter: float = 0.0,
) -> Float[Array, ""]:
    """Maximal Lyapunov exponent [1/ms] of plant + `policy` over one trial.

    The tangent lives on the plant's ODE state (`dynamic_mask`), is pushed by JVP
    through the policy as well, and is renormalised once per control period.

    Args:
        plant: the frozen plant.
        policy: ``policy(obs) -> gain`` (`Policy`).
        stimulus: filtered evidence per solver step ``(T,)`` [1].
        key: split into the initial-state jitter and the initial tangent.
        control_ms: control period [ms]; a multiple of ``task.dt``.
        g_max: gain bound [1].
        transient_ms: time before the exponent is accumulated [ms].
        v_jitter: initial-voltage jitter [mV].
    """
    dtype = plant.g.dtype
    substeps = substeps_of(plant, control_ms)
    inputs = control_inputs(jnp.asarray(stimulus, dtype), substeps)
    k_state, k_tangent = jax.random.split(key)
    return max_lyapunov_exponent(
        closed_loop_step(plant, policy, g_max),
        initial_state(plant, k_state, v_jitter, dtype),
        inputs,
        dt=control_ms,
        renorm_every=1,
        n_transient=round(transient_ms / control_ms),
        mask=dynamic_mask(plant, dtype),
        key=k_tangent,
    )


class ClosedLoopTrial(NamedTuple):
    """One closed-loop trial.

    Attributes:
        gains: gain per control period ``(n,)`` [1].
        logits: readout means over the response window ``(2,)`` [mV].
        current_power: mean over steps and cells of ``I_i(t)²`` [nA²].
    """

    gains: Float[Array, " n"]
    logits: Float[Array, " 2"]
    current_power: Float[Array, ""]


def closed_loop_trial(
    plant: EvidencePlant,
    policy: Policy,
    stimulus: Float[Array, " T"],
    *,
    control_ms: float = 1.0,
    g_max: float = 2.0,
) -> ClosedLoopTrial:
    """Roll plant + `policy` through one trial from rest (no jitter)."""
    dtype = plant.g.dtype
    substeps = substeps_of(plant, control_ms)
    s, t_frac = control_inputs(jnp.asarray(stimulus, dtype), substeps)
    state = initial_state(plant, jax.random.key(0), 0.0, dtype)
    body = partial(_closed_loop_period, plant, policy, g_max)
    _, (gains, v_read) = jax.lax.scan(body, state, (s, t_frac))
    logits = et.readout_logits(v_read.reshape(-1, et.N_READOUTS), plant.task)
    w = plant.input_weights.astype(dtype)
    amp = plant.task.input_scale * w[None, None, :] * s[:, :, None]  # [nA] at g = 1
    power = jnp.mean((gains[:, None, None] * amp) ** 2)  # [nA²]
    return ClosedLoopTrial(gains, logits, power)


def constant_gain(gain: float = 1.0) -> Policy:
    """The policy ``obs ↦ gain`` [1] (``gain = 1``: the plant's native input)."""
    return partial(_constant, gain)


def _constant(gain, obs):
    return jnp.asarray(gain, obs.dtype)


def confidence_gate(scale_mv: float = 2.0, g_max: float = 2.0) -> Policy:
    """Hand feedback law: full input while undecided, less once the readouts split.

    ``g = g_max · σ(−|Δv| / scale_mv)`` with ``Δv = v_readout1 − v_readout0`` [mV]
    (smoothed ``|·|``): ``g = g_max/2`` at ``Δv = 0``, → 0 as ``|Δv|`` grows. A
    stand-in for a learned policy, with real feedback (∂g/∂v ≠ 0).
    """
    return partial(_confidence_gate, scale_mv, g_max)


def _confidence_gate(scale_mv, g_max, obs):
    dv = obs[1] - obs[0]  # [mV]
    return g_max * jax.nn.sigmoid(-jnp.sqrt(dv**2 + 0.01) / scale_mv)


# ----------------------------------------------------------------- decision gradients


class DecisionGradients(NamedTuple):
    """Sensitivities of one trial's decision (one reverse pass).

    Attributes:
        decision: ``d = logit1 - logit0`` [mV].
        cross_entropy: of the readout means vs the label [nats].
        wrt_current: ``∂d/∂u_{b,i}`` for a current ``u`` [nA] added to cell ``i``'s
            basal compartment through time bin ``b``, ``(n_bins, n_cells)`` [mV/nA].
        wrt_conductance: ``∂d/∂g_k`` per synapse ``(n_syn,)`` [mV/µS].
        ce_wrt_conductance: ``∂CE/∂g_k`` ``(n_syn,)`` [nats/µS].
    """

    decision: Float[Array, ""]
    cross_entropy: Float[Array, ""]
    wrt_current: Float[Array, "bins cells"]
    wrt_conductance: Float[Array, " n_syn"]
    ce_wrt_conductance: Float[Array, " n_syn"]


def decision_function(
    plant: EvidencePlant,
    stimulus: Float[Array, " T"],
    bin_steps: int,
    checkpoint_lengths: Sequence[int] | None = None,
) -> Callable[[Array, Array], Array]:
    """``d(g, u)`` [mV]: the decision for conductances ``g`` [µS] and bin currents.

    ``u`` ``(T // bin_steps, n_cells)`` [nA] is added, held over each bin of
    `bin_steps` solver steps, to the evidence currents of the plant's basal sites.
    """
    t = jnp.shape(stimulus)[0]
    if not (isinstance(bin_steps, int) and bin_steps >= 1 and t % bin_steps == 0):
        raise bad_value(
            "bin_steps",
            bin_steps,
            f"an int >= 1 dividing the trial's {t} steps",
            "e.g. bin_steps=800 (20 ms at dt = 0.025 ms).",
        )
    return partial(_decision, plant, stimulus, bin_steps, checkpoint_lengths)


def _decision(plant, stimulus, bin_steps, checkpoint_lengths, g, u):
    params = et.apply_to_params(plant.params, g)
    state = bp.init_state(plant.network, params, plant.task.v_init, g.dtype)
    currents = plant.currents(stimulus) + jnp.repeat(u, bin_steps, axis=0)  # [nA]
    _, rec = bp.simulate(
        plant.network,
        params,
        state,
        currents,
        plant.task.dt,
        checkpoint_lengths=checkpoint_lengths,
    )
    return decision_value(et.readout_logits(rec, plant.task))


def decision_gradients(
    plant: EvidencePlant,
    trial: et.Trial,
    bin_steps: int = 800,
    checkpoint_lengths: Sequence[int] | None = None,
) -> DecisionGradients:
    """`DecisionGradients` of one trial by reverse mode (`jax.value_and_grad`).

    Args:
        plant: the plant.
        trial: a trial of its task (stimulus ``(T,)`` [1], label).
        bin_steps: solver steps per stimulation bin [steps] (800 = 20 ms).
        checkpoint_lengths: gradient checkpointing of the rollout (e.g.
            ``bp.checkpoint_lengths_for(T)`` for full trials); None stores all.
    """
    fn = decision_function(plant, trial.stimulus, bin_steps, checkpoint_lengths)
    u = jnp.zeros((trial.stimulus.shape[0] // bin_steps, plant.network.n_stimuli))
    u = u.astype(plant.g.dtype)
    d, (dg, du) = jax.value_and_grad(fn, argnums=(0, 1))(plant.g, u)
    sign = 1.0 - 2.0 * trial.label  # CE = softplus(sign · d)
    ce = jax.nn.softplus(sign * d)  # [nats]
    dce_dd = sign * jax.nn.sigmoid(sign * d)  # [nats/mV]
    return DecisionGradients(d, ce, du, dg, dce_dd * dg)


# ----------------------------------------------------------------------- synapses


class SynapseLabel(NamedTuple):
    """Who a conductance connects.

    Attributes:
        pre: presynaptic cell (soma) [index].
        post: postsynaptic cell [index]; readouts are ``n_cells`` and ``n_cells+1``.
        kind: ``"recurrent"`` (onto the apical branch) or ``"readout"``.
        sign: ``"E"`` (e_syn = e_excitatory) or ``"I"`` (e_syn = e_inhibitory).
    """

    pre: int
    post: int
    kind: str
    sign: str


def synapse_labels(cfg: EvidenceNetConfig | None = None) -> list[SynapseLabel]:
    """Labels of the conductances in `build_network`'s order (recurrent, readout).

    Args:
        cfg: the network's structure (default: `EvidenceNetConfig()`, the shipped
            plant's).
    """
    cfg = EvidenceNetConfig() if cfg is None else cfg
    n = cfg.n_cells

    def sign(i: int) -> str:
        return "I" if i < cfg.n_inhibitory else "E"

    rec = [SynapseLabel(i, j, "recurrent", sign(i)) for i, j in recurrent_pairs(cfg)]
    out = [SynapseLabel(i, r, "readout", sign(i)) for i in range(n) for r in (n, n + 1)]
    return rec + out
