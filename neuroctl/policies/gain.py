"""Gain policies of `EvidenceStim`: the generic policies and wrappers, composed.

The observation is ``[v_readout0 [mV], v_readout1 [mV], t/T [1]]`` (``n_obs =
3``), with the env's ``observe_evidence`` also the mean filtered stimulus so far
[1] (``n_obs = 4``), with ``observe_stimulus`` as well the latest filtered
stimulus sample [1] (``n_obs = 5``); the action is the gain, shape ``(1,)``, in
``[0, g_max]`` [1] (``g = sigmoid(z) · g_max``, `ActionBox`). `make_policy(kind)`
builds (names as in shipped spec.toml files):

* ``mlp``, ``gru``: `MLP`, `GRU` over the observation.
* ``open_loop``: an `OpenLoop` profile of ``n_bins`` bins; with ``n_obs = 4``
  wrapped in `EvidenceSwitch` (the profile applies only while the mean stimulus
  so far is negative: label-0 evidence; the frozen plant answers 1 without
  input); with ``n_obs = 5`` also in `CurrentShaping` (the profile sets the
  current, ``g = p · EVIDENCE_SCALE / (−s)`` while the sample ``s`` < 0): for a
  given mean drive a constant current costs the least power (Cauchy–Schwarz);
  gating the noisy stream at a constant gain pays ``E[s²]/E[s]²`` (≈ 1.4 here)
  times more.
* ``feedback_profile``: ``EvidenceSwitch(CurrentShaping(ReadoutFeedback(
  OpenLoop)))`` (``n_obs = 5``): the readout difference against a reference
  trajectory corrects the profile late in the trial (from `FEEDBACK_ONSET`).
* ``tracking_profile``: ``CurrentTracking(ReadoutFeedback(OpenLoop))``: books on
  the current delivered make up the shortfall at once.
* ``fixed``: `Constant`, one gain for the whole trial (trained: the cheapest
  constant gain); the ``g = 1`` baseline is `baseline_policy`.

Voltages enter the networks as ``(v − V_REF) / V_SCALE`` and the stimulus entries
as ``s / EVIDENCE_SCALE`` (`ObsScale`, fixed), so their inputs are O(1). A fresh
policy applies ``g_init`` (default 1, the plant's native input) everywhere.
"""

import math

import jax.numpy as jnp

from neuroctl.errors import bad_value
from neuroctl.policies.base import AbstractPolicy
from neuroctl.policies.networks import Constant, OpenLoop, PolicyIO, build_policy
from neuroctl.policies.wrappers import (
    EVIDENCE_SCALE,
    CurrentShaping,
    CurrentTracking,
    EvidenceSwitch,
    ReadoutFeedback,
)

V_REF = -70.0  # voltage centring of the observations [mV]
V_SCALE = 20.0  # voltage scaling of the observations [mV]
# [v_readout0 [mV], v_readout1 [mV], t/T [1], (mean stimulus [1], (sample [1]))]
OBS_FIELDS = ("v_readout0", "v_readout1", "t/T", "mean_stimulus", "stimulus")
OBS_SIZES = (3, 4, 5)
# the feedback's onset [t/T] and reference points: constants spec.toml does not
# record, so shipped feedback policies use these
FEEDBACK_ONSET = 0.8
FEEDBACK_REF = 520
#: control steps of the evidence plant's 520-ms trial at the default 1-ms period
TRIAL_STEPS = 520
POLICIES = (
    "mlp",
    "gru",
    "open_loop",
    "feedback_profile",
    "tracking_profile",
    "fixed",
)


def _check_gains(g_max: float, g_init: float) -> None:
    if not (isinstance(g_max, (int, float)) and math.isfinite(g_max) and g_max > 0):
        raise bad_value("g_max", g_max, "a finite number > 0 [1]", "e.g. g_max=2.0.")
    if not (isinstance(g_init, (int, float)) and 0 < g_init < g_max):
        raise bad_value(
            "g_init",
            g_init,
            f"a number in (0, g_max={g_max}) [1]",
            "e.g. g_init=1.0 (the plant's native gain).",
        )


def gain_io(n_obs: int, g_max: float, n_steps: int) -> PolicyIO:
    """The `PolicyIO` of `EvidenceStim` with `n_obs` observation entries."""
    if n_obs not in OBS_SIZES:
        raise bad_value(
            "n_obs",
            n_obs,
            f"one of {OBS_SIZES} (3: readouts and t/T; 4: also the mean stimulus; "
            "5: also the latest stimulus sample)",
            "match the env's observation (observe_evidence=True gives 4, with "
            "observe_stimulus=True 5).",
        )
    return PolicyIO(
        obs_loc=(V_REF, V_REF, 0.0, 0.0, 0.0)[:n_obs],
        obs_scale=(V_SCALE, V_SCALE, 1.0, EVIDENCE_SCALE, EVIDENCE_SCALE)[:n_obs],
        action_low=(0.0,),
        action_high=(float(g_max),),
        n_steps=n_steps,
        obs_fields=OBS_FIELDS[:n_obs],
    )


def make_policy(
    kind: str,
    *,
    n_steps: int = TRIAL_STEPS,
    seed: int = 0,
    hidden: int = 16,
    n_bins: int = 52,
    g_max: float = 2.0,
    g_init: float = 1.0,
    param_dtype=jnp.float32,
    n_obs: int = 3,
) -> AbstractPolicy:
    """A fresh gain policy of `kind` (one of `POLICIES`), initialised from `seed`.

    Args:
        kind: see the module docstring.
        n_steps: control steps per trial [1] (the open-loop profiles' time axis;
            `control_steps`); default: the 520-ms trial at 1-ms control periods.
        seed: initialisation seed (mlp, gru).
        hidden: hidden units (mlp, gru) [1].
        n_bins: profile bins (open_loop, feedback_profile, tracking_profile) [1].
        g_max: largest gain [1].
        g_init: the gain a fresh policy applies [1].
        param_dtype: parameter dtype.
        n_obs: observation entries (3, 4 or 5; feedback_profile and
            tracking_profile need 5; fixed reads none).
    """
    if kind not in POLICIES:
        raise bad_value(
            "policy", kind, f"one of {sorted(POLICIES)}", "pick a known policy kind."
        )
    _check_gains(g_max, g_init)
    if kind in ("feedback_profile", "tracking_profile") and n_obs != 5:
        raise bad_value(
            "n_obs",
            n_obs,
            "5 (it reads the readouts, the mean stimulus and the latest sample)",
            "use --observe-evidence --observe-stimulus.",
        )
    io = gain_io(n_obs, g_max, n_steps)
    common = dict(init_fraction=g_init / g_max, dtype=param_dtype)
    if kind in ("mlp", "gru"):
        return build_policy(kind, io, seed=seed, hidden=hidden, **common)
    if kind == "fixed":
        return Constant(io, **common)
    policy = OpenLoop(io, n_bins, **common)
    if kind == "tracking_profile":
        feedback = ReadoutFeedback(
            io, policy, FEEDBACK_REF, FEEDBACK_ONSET, dtype=param_dtype
        )
        return CurrentTracking(io, feedback, dtype=param_dtype)
    if kind == "feedback_profile":
        policy = ReadoutFeedback(
            io, policy, FEEDBACK_REF, FEEDBACK_ONSET, dtype=param_dtype
        )
    if n_obs == 5:
        policy = CurrentShaping(io, policy)
    if n_obs >= 4:
        policy = EvidenceSwitch(io, policy)
    return policy


def baseline_policy(g_max: float, dtype=jnp.float32) -> AbstractPolicy:
    """The ``g = 1`` baseline: the plant's native input, whatever it observes."""
    return Constant(gain_io(3, g_max, n_steps=1), 1.0 / g_max, dtype=dtype)


def control_steps(plant, control_ms: float) -> int:
    """Control steps of an `EvidenceStim` trial of `plant` at `control_ms` [1]."""
    substeps = round(control_ms / plant.task.dt)
    return plant.task.n_steps // substeps


def layer_of(policy: AbstractPolicy, cls: type) -> AbstractPolicy:
    """The first layer of type `cls` down a composed policy's ``inner`` chain."""
    layer = policy
    while not isinstance(layer, cls):
        if not hasattr(layer, "inner"):
            raise bad_value(
                "policy",
                type(policy).__name__,
                f"a composition containing a {cls.__name__}",
                f"pass a policy built with {cls.__name__} inside.",
            )
        layer = layer.inner
    return layer


def profile_of(policy: AbstractPolicy) -> OpenLoop:
    """The `OpenLoop` profile at the heart of a composed profile policy."""
    return layer_of(policy, OpenLoop)


def feedback_of(policy: AbstractPolicy) -> ReadoutFeedback:
    """The `ReadoutFeedback` layer of a feedback or tracking profile policy."""
    return layer_of(policy, ReadoutFeedback)


#: leaf names only checkpoints written before the composed policies have
LEGACY_LEAVES = {"logits", "logit"}


def legacy_params(flat: dict, names: list[str]) -> dict:
    """A checkpoint saved before the redesign, renamed to `make_policy`'s leaves.

    Shipped profile checkpoints name the profile ``logits`` ``(n_bins,)`` (a fixed
    gain ``logit``) and keep the feedback and tracking params at the top level;
    the composed policy nests them under its wrappers (`names`: its leaf names,
    `neuroctl.io.checkpoints.leaf_names`). Values are unchanged; a leaf the old
    checkpoint lacks is left out, for `tree_like` to name.
    """
    renamed = {"profile": ("logits", lambda a: a[:, None]), "z": ("logit", None)}
    out = {}
    for name in names:
        old, reshape = renamed.get(
            name.rsplit("/", 1)[-1], (name.rsplit("/", 1)[-1], None)
        )
        if old in flat:
            out[name] = flat[old] if reshape is None else reshape(flat[old])
    return out
