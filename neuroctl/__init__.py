"""neuroctl: differentiable control of biophysical neural networks in JAX."""

__version__ = "0.1.0"

import neuroctl.envs.registry  # noqa: E402, F401  (registers neuroctl/... Gymnasium ids)
