"""neuroctl: differentiable control of biophysical neural networks in JAX.

``import neuroctl`` makes the ``neuroctl/...`` ids known to ``gymnasium.make``
without importing Gymnasium itself: they are registered as soon as Gymnasium is
imported (at once, if it already is), with lazy entry points into
`neuroctl.envs.registry`. So ``import neuroctl.biophysics`` stays free of
Gymnasium, and ``import neuroctl, gymnasium; gymnasium.make(...)`` works in either
order.

With ``NEUROCTL_XLA_SMALL_LOOPS=1`` in the environment, ``import neuroctl`` turns on
`neuroctl.small_loops` (XLA:CPU compiles small time loops into one function).
"""

import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

# the built-in envs of `neuroctl.envs.registry` (a test checks the two agree)
GYMNASIUM_IDS = (
    "SpikeRate-v0",
    "SpikeRateBallStick-v0",
    "EvidenceStim-v0",
    "EvidenceStimElectrodes-v0",
    "BetaSuppression-v0",
)


def _register_ids(gymnasium) -> None:
    for name in GYMNASIUM_IDS:
        if f"neuroctl/{name}" not in gymnasium.registry:
            gymnasium.register(
                id=f"neuroctl/{name}",
                entry_point="neuroctl.envs.registry:make_gym",
                vector_entry_point="neuroctl.envs.registry:make_gym_vector",
                kwargs={"name": name},
            )


class _RegisterAfterGymnasium(importlib.abc.MetaPathFinder):
    """Registers the ids right after Gymnasium's own import has run."""

    def find_spec(self, name, path=None, target=None):
        if name != "gymnasium":
            return None
        sys.meta_path.remove(self)  # once; the other finders locate Gymnasium
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_gymnasium = spec.loader.exec_module

        def exec_then_register(module):
            exec_gymnasium(module)
            _register_ids(module)

        spec.loader.exec_module = exec_then_register
        return spec


from neuroctl import small_loops as _small_loops  # noqa: E402

_small_loops.enable_from_env()  # before JAX starts: see neuroctl.small_loops

if "gymnasium" in sys.modules:
    _register_ids(sys.modules["gymnasium"])
elif not any(isinstance(f, _RegisterAfterGymnasium) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterGymnasium())
