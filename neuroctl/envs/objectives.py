"""Objectives: what a control step costs and what the task pays.

The env owns its objective: the reward of a control step is the task's term (a
`neuroctl.envs.tasks` task: rate error, decision outcome, …) minus the energy
cost of `EnergyCost`. The loss BPTT minimises is −(the episode return), so RL and
BPTT optimise the same number.
"""

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from neuroctl.envs.core import Energy, check_value
from neuroctl.typing import Array, ArrayLike


class EnergyCost(eqx.Module):
    """Per-control-step energy cost (weights are leaves; summed over the episode).

    ``cost = current_power · mean I² + charge · Q + action_sq · mean a²``

    Attributes:
        current_power: weight of the step's mean squared source current [1/nA²].
        charge: weight of the step's injected charge Σ|I|·dt [1/pC].
        action_sq: weight of the mean squared action [1/(action unit)²].
    """

    current_power: ArrayLike = 0.0  # [1/nA²]
    charge: ArrayLike = 0.0  # [1/pC]
    action_sq: ArrayLike = 0.0  # [1/(action unit)²]

    def __check_init__(self) -> None:
        for name in ("current_power", "charge", "action_sq"):
            check_value(name, getattr(self, name), lambda x: np.all(x >= 0), ">= 0")

    def __call__(self, energy: Energy, action: Array) -> Array:
        """The step's cost [1] (subtracted from the reward)."""
        return (
            self.current_power * energy.current_power  # [1/nA²]·[nA²]
            + self.charge * energy.charge  # [1/pC]·[pC]
            + self.action_sq * jnp.mean(action**2)
        )
