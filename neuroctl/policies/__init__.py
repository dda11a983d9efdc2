"""Stimulation policies (Flax NNX), written for one observation; vmap outside.

`make_policy(kind)` builds a fresh one (`POLICIES`: mlp, gru, open_loop,
feedback_profile, tracking_profile, fixed); `design` designs label-0 current
profiles without training;
`load_policy(folder)` loads a shipped, verified one (checks the plant it was
trained on).
"""

from neuroctl.policies.gain import (
    POLICIES,
    FeedbackProfile,
    FixedGain,
    GainPolicy,
    GRUGain,
    MLPGain,
    OpenLoopGain,
    TrackingProfile,
    make_policy,
)
from neuroctl.policies.shipped import load_policy, plant_checksum

__all__ = [
    "POLICIES",
    "FeedbackProfile",
    "FixedGain",
    "GRUGain",
    "GainPolicy",
    "MLPGain",
    "OpenLoopGain",
    "TrackingProfile",
    "load_policy",
    "make_policy",
    "plant_checksum",
]
