"""Conductance-based synapses between compartments."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp

from neuroctl.biophysics.rates import relax
from neuroctl.errors import check_param
from neuroctl.typing import Array, FloatLike, Voltage


class AbstractSynapse(eqx.Module):
    """A synapse with one state per connection and current ``g s (v_post − e)``."""

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

    def __check_init__(self) -> None:
        """Finite parameters; g >= 0 [µS], δ > 0 [mV], k_minus > 0 [1/ms]."""
        for name, low, strict in (
            ("g", 0.0, False),
            ("e_syn", None, False),
            ("v_th", None, False),
            ("delta", 0.0, True),
            ("k_minus", 0.0, True),
        ):
            check_param(f"GradedSynapse.{name}", getattr(self, name), low, strict)

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
