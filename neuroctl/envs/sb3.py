"""A Stable-Baselines3 `VecEnv` over the ``jit(vmap(...))`` vector env.

SB3 rejects Gymnasium's `VectorEnv`; `SB3VecEnv` gives it its own `VecEnv` API on top
of `GymVectorEnv` (one jitted, vmapped step for all envs)::

    from stable_baselines3 import PPO
    venv = SB3VecEnv(make("SpikeRate-v0", episode_ms=50.0), num_envs=8)
    PPO("MlpPolicy", venv).learn(10_000)

SB3 conventions: ``reset()`` returns observations only (seeded by ``seed()``);
``step_wait()`` returns ``(obs, rewards, dones, infos)`` with a list of per-env info
dicts; a finished env is reset at once, its last observation in
``info["terminal_observation"]`` and ``info["TimeLimit.truncated"] = False`` (episodes
end by the env's own clock, which is in the observation as t/T). Actions are
normalised as in `GymVectorEnv` (``[0, 1]`` or ``[-1, 1]`` → the physical space).

Needs the ``rl`` extra (``pip install -e ".[rl]"``); `neuroctl.envs` imports this module
only when `SB3VecEnv` is first used.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    from stable_baselines3.common.vec_env import VecEnv
except ImportError as err:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "neuroctl.envs.sb3 needs stable-baselines3; install the rl extra: "
        "pip install -e '.[rl]'."
    ) from err

from neuroctl.envs.core import AbstractEnv, AbstractEnvParams
from neuroctl.envs.gym import GymVectorEnv

_SKIP = ("final_obs", "final_info")  # SAME_STEP extras, handled separately


class SB3VecEnv(VecEnv):
    """``num_envs`` copies of a functional env as an SB3 `VecEnv`.

    Args:
        env: the functional env.
        num_envs: number of parallel envs (one vmapped step) [1].
        params: env params (default: ``env.default_params``); concrete.
        normalize_actions: expose normalised actions (see `GymVectorEnv`).
    """

    def __init__(
        self,
        env: AbstractEnv,
        num_envs: int,
        params: AbstractEnvParams | None = None,
        normalize_actions: bool = True,
    ):
        self.vector_env = GymVectorEnv(env, num_envs, params, normalize_actions)
        self.render_mode = None
        self._actions: np.ndarray | None = None
        super().__init__(
            num_envs,
            self.vector_env.single_observation_space,
            self.vector_env.single_action_space,
        )

    def reset(self) -> np.ndarray:
        obs, _ = self.vector_env.reset(seed=self._seeds[0])  # one seed keys all envs
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(
            (self.num_envs, *self.action_space.shape)
        )

    def step_wait(self):
        obs, reward, terminated, truncated, info = self.vector_env.step(self._actions)
        dones = terminated | truncated
        infos = [self._info(info, i) for i in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = info["final_obs"][i]
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, reward.astype(np.float32), dones, infos

    @staticmethod
    def _info(info: dict[str, Any], i: int) -> dict[str, Any]:
        """Env `i`'s entries of the batched info (Gymnasium masks dropped)."""
        out = {}
        for k, v in info.items():
            if not (k.startswith("_") or k in _SKIP):
                out[k] = v[i].item() if np.ndim(v[i]) == 0 else v[i]
        return out

    def close(self) -> None:
        self.vector_env.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        """The attribute of this adapter (shared by all envs), once per index."""
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        """Set a shared attribute (all envs are one vmapped env)."""
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices=None, **method_kwargs
    ) -> list[Any]:
        """Call a method of the underlying `GymVectorEnv` (shared), once per index."""
        method = getattr(self.vector_env, method_name)
        return [
            method(*method_args, **method_kwargs) for _ in self._get_indices(indices)
        ]

    def env_is_wrapped(self, wrapper_class, indices=None) -> Sequence[bool]:
        return [False for _ in self._get_indices(indices)]
