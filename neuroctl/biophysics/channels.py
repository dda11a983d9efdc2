"""Ion channels: the abstract interface and the Hodgkin–Huxley / passive set.

A channel is a small final `equinox.Module`. Its float fields are parameters
(densities [mS/cm²], reversal potentials [mV]); when a network is built they become
arrays with one entry per compartment of the block the channel acts on, so they can
be differentiated, vmapped and frozen. To add a channel, subclass `AbstractChannel`,
name its gates and implement `gate_dynamics` and `currents`; the solver needs
nothing else.

Parameters are checked on construction against the ranges of
`neuroctl.biophysics.bounds`: fields named ``g…`` are conductance densities
[mS/cm²], ``e…`` potentials [mV], ``temperature`` [°C]; other fields are only
required to be finite unless the class lists their kind in `param_bounds`.

Gates follow ``dx/dt = (x_inf(v, cai) - x) · k(v, cai)`` and are advanced with
exponential Euler (NEURON's ``cnexp``). Currents must be linear in the membrane
voltage for fixed gates, ``i = g · v - g_e`` [µA/cm²]; this is what makes the implicit
voltage solve exact, as in NEURON.
"""

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from neuroctl.biophysics import bounds
from neuroctl.biophysics.rates import efun, safe_exp, steady_and_rate
from neuroctl.typing import Array, Concentration, FloatLike, Voltage

Gates = tuple[Array, ...]


class AbstractChannel(eqx.Module):
    """A membrane mechanism with gates and an ohmic current.

    Class attributes:
        gate_names: names of the gating variables, in the order of every gate tuple.
        ion: ``"ca"`` if the whole current is carried by calcium (it then feeds the
            calcium dynamics and uses the calcium reversal potential), else ``None``.
        param_bounds: the `bounds.Bound` of fields the naming rule (module
            docstring) does not cover, e.g. ``{"k1": bounds.CONCENTRATION}``.
    """

    gate_names: eqx.AbstractClassVar[tuple[str, ...]]
    ion: ClassVar[str | None] = None
    param_bounds: ClassVar[dict[str, bounds.Bound]] = {}

    @abc.abstractmethod
    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        """Steady states ``x_inf`` and relaxation rates ``k`` [1/ms] of every gate.

        Args:
            v: membrane potential [mV].
            cai: intracellular calcium concentration [mM].
        """

    @abc.abstractmethod
    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        """Conductance ``g`` [mS/cm²] and drive ``g_e`` [µA/cm²]: ``i = g·v − g_e``.

        Args:
            gates: open fractions, ordered as `gate_names`.
            e_ca: calcium reversal potential [mV] (used by calcium channels only).
        """

    def __check_init__(self) -> None:
        """Every parameter finite and within its kind's range (`param_bound`)."""
        bounds.check_mechanism(self, self.param_bound)

    @classmethod
    def param_bound(cls, name: str) -> bounds.Bound | None:
        """The range of field `name`: `param_bounds`, else by name (module doc)."""
        return bounds.by_name(name, cls.param_bounds, bounds.CONDUCTANCE_DENSITY)

    def steady_gates(self, v: Voltage, cai: Concentration) -> Gates:
        """Gates at steady state for holding potential `v` [mV] and `cai` [mM]."""
        return self.gate_dynamics(v, cai)[0]


class Leak(AbstractChannel):
    """Passive leak ``i = g (v − e)`` (NEURON's ``pas``)."""

    gate_names: ClassVar[tuple[str, ...]] = ()
    g: FloatLike = 0.03  # [mS/cm²]
    e: FloatLike = -65.0  # [mV]

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        return (), ()

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        g = jnp.asarray(self.g)
        return g, g * self.e


class HH(AbstractChannel):
    """Hodgkin & Huxley (1952) squid-axon Na, K and leak currents, as NEURON's ``hh``.

    ``i = gnabar m³h (v − ena) + gkbar n⁴ (v − ek) + gl (v − el)``; rates at
    `temperature` with Q10 = 3 relative to 6.3 °C (NEURON: ``celsius = 6.3`` gives
    factor 1). Rates, with ``vtrap(x, y) = x / (exp(x/y) − 1)``::

        α_m = 0.1 vtrap(−(v+40), 10)     β_m = 4 exp(−(v+65)/18)
        α_h = 0.07 exp(−(v+65)/20)       β_h = 1 / (exp(−(v+35)/10) + 1)
        α_n = 0.01 vtrap(−(v+55), 10)    β_n = 0.125 exp(−(v+65)/80)

    Reference: Hodgkin & Huxley, J. Physiol. 117:500 (1952); NEURON ``hh.mod``.
    """

    gate_names: ClassVar[tuple[str, ...]] = ("m", "h", "n")
    gnabar: FloatLike = 120.0  # [mS/cm²]
    gkbar: FloatLike = 36.0  # [mS/cm²]
    gl: FloatLike = 0.3  # [mS/cm²]
    ena: FloatLike = 50.0  # [mV]
    ek: FloatLike = -77.0  # [mV]
    el: FloatLike = -54.3  # [mV]
    temperature: float = eqx.field(
        default=6.3, static=True, converter=bounds.plain_float
    )  # [°C]

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        q10 = 3.0 ** ((self.temperature - 6.3) / 10.0)
        m = steady_and_rate(
            0.1 * efun(-(v + 40.0), 10.0), 4.0 * safe_exp(-(v + 65.0) / 18.0)
        )
        h = steady_and_rate(
            0.07 * safe_exp(-(v + 65.0) / 20.0),
            1.0 / (safe_exp(-(v + 35.0) / 10.0) + 1.0),
        )
        n = steady_and_rate(
            0.01 * efun(-(v + 55.0), 10.0), 0.125 * safe_exp(-(v + 65.0) / 80.0)
        )
        return (m[0], h[0], n[0]), (q10 * m[1], q10 * h[1], q10 * n[1])

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        m, h, n = gates
        g_na = self.gnabar * m**3 * h  # [mS/cm²]
        g_k = self.gkbar * n**4  # [mS/cm²]
        g = g_na + g_k + self.gl
        return g, g_na * self.ena + g_k * self.ek + self.gl * self.el
