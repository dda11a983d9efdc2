"""Stimulation policies (Flax NNX), written for one observation; vmap outside.

Final policies for any env (`neuroctl.policies.networks`: `MLP`, `GRU`,
`OpenLoop`, `Constant`, built with `build_policy(kind, io)`) and wrappers that
compose around them, reading observation fields by name
(`neuroctl.policies.wrappers`: `EvidenceSwitch`, `CurrentShaping`,
`ReadoutFeedback`, `CurrentTracking`). `make_policy(kind)` builds the evidence
plant's gain policies from those (`POLICIES`: mlp, gru, open_loop,
feedback_profile, tracking_profile, fixed); `design` designs label-0 current
profiles without training; `load_policy(folder)` loads a shipped, verified one
(checks the plant it was trained on).
"""

from neuroctl.policies.base import AbstractPolicy
from neuroctl.policies.gain import POLICIES, baseline_policy, make_policy
from neuroctl.policies.networks import (
    GRU,
    MLP,
    Constant,
    OpenLoop,
    PolicyIO,
    build_policy,
)
from neuroctl.policies.shipped import load_policy, plant_checksum
from neuroctl.policies.wrappers import (
    CurrentShaping,
    CurrentTracking,
    EvidenceSwitch,
    ReadoutFeedback,
)

__all__ = [
    "GRU",
    "MLP",
    "POLICIES",
    "AbstractPolicy",
    "Constant",
    "CurrentShaping",
    "CurrentTracking",
    "EvidenceSwitch",
    "OpenLoop",
    "PolicyIO",
    "ReadoutFeedback",
    "baseline_policy",
    "build_policy",
    "load_policy",
    "make_policy",
    "plant_checksum",
]
