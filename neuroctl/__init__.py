"""neuroctl: differentiable control of biophysical neural networks in JAX."""

__version__ = "0.1.0"
