"""Stimulation policies (Flax NNX), written for one observation; vmap outside.

`make_policy(kind)` builds a fresh one (`POLICIES`: mlp, gru, open_loop, fixed);
`load_policy(folder)` loads a shipped, verified one (checks the plant it was
trained on).
"""

from neuroctl.policies.gain import (
    POLICIES,
    FixedGain,
    GainPolicy,
    GRUGain,
    MLPGain,
    OpenLoopGain,
    make_policy,
)
from neuroctl.policies.shipped import load_policy, plant_checksum

__all__ = [
    "POLICIES",
    "FixedGain",
    "GRUGain",
    "GainPolicy",
    "MLPGain",
    "OpenLoopGain",
    "load_policy",
    "make_policy",
    "plant_checksum",
]
