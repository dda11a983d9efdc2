"""Conductance-based synapses between compartments."""

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from neuroctl.biophysics import bounds
from neuroctl.biophysics.rates import relax
from neuroctl.typing import Array, FloatLike, Voltage


class AbstractSynapse(eqx.Module):
    """A synapse with one state per connection and current ``g s (v_post − e)``.

    Parameters are checked on construction against `neuroctl.biophysics.bounds`:
    the kinds listed in `param_bounds`, else fields named ``g…`` are point
    conductances [µS] and ``e…`` potentials [mV]; others need only be finite.
    """

    param_bounds: ClassVar[dict[str, bounds.Bound]] = {}

    def __check_init__(self) -> None:
        """Every parameter finite and within its kind's range (`param_bound`)."""
        bounds.check_mechanism(self, self.param_bound)

    @classmethod
    def param_bound(cls, name: str) -> bounds.Bound | None:
        """The range of field `name`: `param_bounds`, else by its name."""
        return bounds.by_name(name, cls.param_bounds, bounds.POINT_CONDUCTANCE)

    @abc.abstractmethod
    def steady_and_rate(self, v_pre: Voltage) -> tuple[Array, Array]:
        """Steady state of `s` and its relaxation rate [1/ms] for `v_pre` [mV]."""

    @abc.abstractmethod
    def conductance(self, s: Array) -> tuple[Array, Array]:
        """Conductance [µS] and drive ``g·e`` [nA] onto the postsynaptic node."""


class GradedSynapse(AbstractSynapse):
    """Graded ionotropic synapse (Abbott & Marder 1998), as in the Jaxley paper RNN.

    ``s_inf = 1 / (1 + exp((v_th − v_pre) / δ))``, ``τ_s = (1 − s_inf) / k_minus``,
    ``ds/dt = (s_inf − s) / τ_s`` (exponential Euler), ``I = g s (v_post − e_syn)``.
    ``1 − s_inf`` is evaluated as a sigmoid so τ_s never underflows to 0.
    """

    g: FloatLike = 0.001  # maximal conductance [µS]
    e_syn: FloatLike = 0.0  # reversal potential [mV]; 0 excitatory, -75 inhibitory
    v_th: FloatLike = -35.0  # half-activation voltage [mV]
    delta: FloatLike = 10.0  # slope [mV]
    k_minus: FloatLike = 1.0  # unbinding rate [1/ms]
    param_bounds: ClassVar[dict[str, bounds.Bound]] = {
        "g": bounds.POINT_CONDUCTANCE,  # [0, 1e3] µS
        "e_syn": bounds.POTENTIAL,  # [-1e3, 1e3] mV
        "v_th": bounds.POTENTIAL,
        "delta": bounds.SLOPE,  # [1e-3, 1e3] mV
        "k_minus": bounds.POSITIVE_RATE,  # [1e-9, 1e5] 1/ms
    }

    def steady_and_rate(self, v_pre: Voltage) -> tuple[Array, Array]:
        x = (self.v_th - v_pre) / self.delta
        s_inf = jax.nn.sigmoid(-x)
        one_minus = jnp.maximum(jax.nn.sigmoid(x), 1e-30)  # keeps τ_s > 0
        return s_inf, self.k_minus / one_minus

    def advance(self, s: Array, v_pre: Voltage, dt: FloatLike) -> Array:
        """New synaptic state after `dt` [ms] at presynaptic voltage `v_pre` [mV]."""
        return relax(s, *self.steady_and_rate(v_pre), dt)

    def conductance(self, s: Array) -> tuple[Array, Array]:
        g = self.g * s  # [µS]
        return g, g * jnp.asarray(self.e_syn)
