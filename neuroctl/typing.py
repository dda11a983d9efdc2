"""Array aliases shared across neuroctl.

Inputs accept anything array-like; outputs are JAX arrays. The names document
units; the analytic tests check them.
"""

from jaxtyping import Array, ArrayLike, Float

FloatLike = Float[ArrayLike, "*batch"]  # a parameter leaf or scalar input
Voltage = Float[ArrayLike, "*batch"]  # [mV]
Rate = Float[Array, "*batch"]  # [1/ms]
Concentration = Float[ArrayLike, "*batch"]  # [mM]
Conductance = Float[Array, "*batch"]  # [mS/cm²]
Gate = Float[Array, "*batch"]  # open fraction in [0, 1]
NodeVector = Float[Array, "*batch nodes"]  # one value per solver node
Stimulus = Float[ArrayLike, "*batch time sites"]  # [nA] per stimulus site and step
Recording = Float[Array, "*batch time sites"]  # [mV] per recording site and step

__all__ = [
    "Array",
    "ArrayLike",
    "Concentration",
    "Conductance",
    "FloatLike",
    "Gate",
    "NodeVector",
    "Rate",
    "Recording",
    "Stimulus",
    "Voltage",
]
