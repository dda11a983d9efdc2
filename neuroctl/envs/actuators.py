"""Actuators: how an action becomes currents into a plant's input sites.

An actuator maps the action held over one control period to source currents
``(substeps, n_sources)`` [nA] (what the energy terms count: the electrode or
site currents a stimulator delivers) and those to currents at the plant's input
sites ``(substeps, n_inputs)`` [nA]:

* `SiteCurrents`: one current per chosen input site, in ``[low, high]`` [nA];
* `Electrodes`: K currents in ``[−i_max, i_max]`` [nA] reaching every input site
  through a spatial weight matrix ``W`` ``(n_inputs, K)`` [1];
* `ExtracellularElectrodes`: K point current sources in the tissue, in
  ``[−i_max, i_max]`` [µA]; they inject nothing into the cells but set the
  extracellular potential ``V_e`` [mV] at every node (`neuroctl.biophysics`'s
  point-source model), which acts on the cable through the activating function
  (as real DBS does). Their source currents count in nA (×1e3) for the energy
  terms, like every other actuator's.

Either holds its action over the period, or with ``pulse=BiphasicPulse(width)``
delivers a charge-balanced biphasic pulse of that amplitude. Array fields are
leaves (vmap or differentiate over bounds and weights); the rest is static.
"""

import abc
import math
from dataclasses import dataclass

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from neuroctl.envs.core import ControlConfig
from neuroctl.envs.spaces import Box
from neuroctl.errors import bad_value
from neuroctl.typing import Array, ArrayLike


@dataclass(frozen=True)
class BiphasicPulse:
    """Charge-balanced biphasic pulse per control period (an action transform).

    Amplitude ``a`` [nA] of an electrode → ``+a`` for `pulse_width_ms`, then ``−a``
    for `pulse_width_ms`, then 0 for the rest of the control period: zero net charge
    per control step. Currents are signed as they enter the cells (positive
    depolarises), so the leading phase is the stimulating (cathodic) one and the
    trailing phase the charge-recovering (anodic) one; ``a < 0`` flips both.
    """

    pulse_width_ms: float = 0.1  # width of each phase [ms]

    def __post_init__(self) -> None:
        w = self.pulse_width_ms
        if not (isinstance(w, (int, float)) and math.isfinite(w) and w > 0):
            raise bad_value(
                "pulse_width_ms", w, "a finite number > 0 [ms]", "e.g. 0.1."
            )

    def phase_steps(self, config: ControlConfig) -> int:
        """Solver steps per phase [1]; checks the pulse fits the control period."""
        ratio = self.pulse_width_ms / config.dt
        steps = round(ratio)
        if steps < 1 or abs(ratio - steps) > 1e-6 * ratio:
            raise bad_value(
                "pulse_width_ms",
                self.pulse_width_ms,
                f"a whole multiple of dt={config.dt} [ms]",
                "round it to whole solver steps.",
            )
        if 2 * steps > config.substeps:
            raise bad_value(
                "pulse_width_ms",
                self.pulse_width_ms,
                f"at most control_ms / 2 = {config.control_ms / 2} [ms] (two phases)",
                "shorten the pulse or lengthen control_ms.",
            )
        return steps

    def waveform(self, config: ControlConfig) -> np.ndarray:
        """Unit waveform ``(substeps,)`` [1]: +1, then −1, then 0."""
        n = self.phase_steps(config)
        shape = np.zeros(config.substeps)
        shape[:n], shape[n : 2 * n] = 1.0, -1.0
        return shape

    def __call__(self, amplitude: ArrayLike, config: ControlConfig) -> Array:
        """Electrode currents ``(substeps, K)`` [nA] for amplitudes ``(K,)`` [nA]."""
        return biphasic_currents(amplitude, self.waveform(config))


def biphasic_currents(amplitude: ArrayLike, waveform: ArrayLike) -> Array:
    """``waveform[t] · amplitude[k]``: currents ``(substeps, K)`` [nA]."""
    amplitude = jnp.asarray(amplitude)
    return jnp.asarray(waveform, amplitude.dtype)[:, None] * amplitude[None, :]


def held_currents(amplitude: ArrayLike, config: ControlConfig) -> Array:
    """The action held over the control period: currents ``(substeps, K)`` [nA]."""
    amplitude = jnp.asarray(amplitude)
    return jnp.broadcast_to(amplitude, (config.substeps, amplitude.shape[0]))


class AbstractActuator(eqx.Module):
    """Action → source currents → input-site currents (see the module docstring)."""

    pulse: eqx.AbstractVar[BiphasicPulse | None]

    @abc.abstractmethod
    def action_space(self) -> Box:
        """The action `Box` [nA]."""

    @abc.abstractmethod
    def to_inputs(self, sources: Array) -> Array:
        """Input-site currents ``(..., n_inputs)`` [nA] from the sources'."""

    def unit(self) -> str:
        """Unit of the action."""
        return "nA"

    def sources(self, action: Array, config: ControlConfig) -> Array:
        """The action over one control period, ``(substeps, n_act)``.

        Held, or as biphasic pulses of its amplitude [action units].
        """
        if self.pulse is None:
            return held_currents(action, config)
        return self.pulse(action, config)

    def apply(self, a: Array, drive: Array | None) -> tuple[Array, Array]:
        """One solver step: input-site currents and source currents [nA].

        Args:
            a: the action's value during this step, ``(n_act,)``.
            drive: the task's own input currents ``(n_inputs,)`` [nA], or None.
        """
        inputs = self.to_inputs(a)
        return (inputs if drive is None else inputs + drive), a

    def extracellular(self, a: Array) -> Array | None:
        """Extracellular potential ``(n_nodes,)`` [mV] during one solver step.

        None (the default): the actuator only injects currents.
        """
        del a
        return None


class SiteCurrents(AbstractActuator):
    """A current [nA] at each of some input sites, in ``[low, high]``.

    Attributes:
        sites: indices of the driven input sites (static).
        n_inputs: the plant's input sites [1] (static).
        low, high: bounds per driven site [nA].
        pulse: `BiphasicPulse` or None to hold the action (static).
    """

    sites: tuple[int, ...] = eqx.field(static=True)
    n_inputs: int = eqx.field(static=True)
    low: ArrayLike
    high: ArrayLike
    pulse: BiphasicPulse | None = eqx.field(static=True, default=None)

    @classmethod
    def on(cls, plant, names, low=0.0, high=0.5, pulse=None) -> "SiteCurrents":
        """Currents at the plant inputs `names`, bounds ``[low, high]`` [nA]."""
        sites = tuple(plant.input(n) for n in names)
        n = len(sites)
        return cls(sites, len(plant.inputs), _vec(low, n), _vec(high, n), pulse)

    def action_space(self) -> Box:
        return Box(self.low, self.high, (len(self.sites),))

    def to_inputs(self, sources: Array) -> Array:
        if self.sites == tuple(range(self.n_inputs)):
            return sources
        out = jnp.zeros(sources.shape[:-1] + (self.n_inputs,), sources.dtype)
        return out.at[..., np.asarray(self.sites)].set(sources)


class Electrodes(AbstractActuator):
    """K electrode currents in ``[−i_max, i_max]`` [nA] through weights ``W``.

    Attributes:
        weights: ``W`` ``(n_inputs, K)`` [1]: input site i gets ``Σ_k W[i,k]·a_k``.
        i_max: largest current magnitude per electrode [nA].
        pulse: `BiphasicPulse` or None to hold the action (static).
    """

    weights: ArrayLike
    i_max: ArrayLike
    pulse: BiphasicPulse | None = eqx.field(static=True, default=None)

    def action_space(self) -> Box:
        i_max = jnp.asarray(self.i_max)
        return Box(-i_max, i_max, (jnp.shape(self.weights)[1],))

    def to_inputs(self, sources: Array) -> Array:
        return sources @ jnp.asarray(self.weights, sources.dtype).T


class ExtracellularElectrodes(AbstractActuator):
    """K point electrodes in a homogeneous medium, currents in ``[−i_max, i_max]`` [µA].

    Electrode k's current ``a_k`` [µA] sets ``V_e = transfer @ a`` [mV] at every
    node of the network (`neuroctl.biophysics.point_source_transfer`: ``1e3 /
    (4π σ r)`` mV per µA); the solver takes it as NEURON's ``extracellular`` with
    a transparent layer. A cathodic current (``a < 0``) depolarises the membrane
    nearest the electrode. No current enters an input site (`to_inputs` is 0). The
    source currents the energy terms count are ``1e3 · a`` [nA].

    Attributes:
        transfer: ``(n_nodes, K)`` [mV/µA] from the electrodes' positions.
        i_max: largest current magnitude per electrode [µA].
        n_inputs: the plant's input sites [1] (static).
        pulse: `BiphasicPulse` or None to hold the action (static).
    """

    transfer: ArrayLike
    i_max: ArrayLike
    n_inputs: int = eqx.field(static=True)
    pulse: BiphasicPulse | None = eqx.field(static=True, default=None)

    @classmethod
    def at(
        cls,
        plant,
        positions_um: ArrayLike,
        i_max: float = 100.0,
        sigma: float = 0.3,
        pulse: BiphasicPulse | None = None,
    ) -> "ExtracellularElectrodes":
        """Electrodes at `positions_um` ``(K, 3)`` [µm] in a medium of `sigma` [S/m].

        Positions are in the network's coordinates (`Network.xyz`); the action is
        bounded by `i_max` [µA].
        """
        from neuroctl.biophysics import PointElectrodes

        net = plant.network
        electrodes = PointElectrodes.build(net, positions_um, sigma=sigma)  # checks
        return cls(electrodes.transfer, i_max, len(plant.inputs), pulse)  # [mV/µA]

    def action_space(self) -> Box:
        i_max = jnp.asarray(self.i_max)
        return Box(-i_max, i_max, (jnp.shape(self.transfer)[1],))

    def unit(self) -> str:
        return "µA"

    def to_inputs(self, sources: Array) -> Array:
        return jnp.zeros(sources.shape[:-1] + (self.n_inputs,), sources.dtype)

    def apply(self, a: Array, drive: Array | None) -> tuple[Array, Array]:
        inputs, _ = super().apply(a, drive)
        return inputs, 1e3 * a  # [nA]

    def extracellular(self, a: Array) -> Array:
        return jnp.asarray(self.transfer, a.dtype) @ a  # [mV]


def _vec(x: ArrayLike, n: int) -> Array:
    return jnp.broadcast_to(jnp.asarray(x, float), (n,))
