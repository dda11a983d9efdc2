"""Intracellular calcium: a decaying shell (Hay's ``CaDynamics_E2``); Nernst e_ca."""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from neuroctl import units
from neuroctl.biophysics import bounds
from neuroctl.biophysics.rates import relax
from neuroctl.typing import Array, Concentration, FloatLike

# dcai/dt [mM/ms] per (ica [µA/cm²] / depth [µm] / F [C/mol]):
# 1 µA/cm² = 1e-6 C/s/cm²; / F → mol/s/cm²; / (depth·1e-4 cm) → mol/s/cm³
# = 1e3 mol/(s·L) = 1e6 mM/s = 1e3 mM/ms. Net: 1e-6 · 1e4 · 1e3 = 10.
_CA_FLUX_FACTOR = 10.0


CAI_FLOOR = 1e-9  # [mM]: intracellular calcium is kept above this (physiological ~5e-5)

_BOUNDS = {
    "gamma": bounds.GAIN,  # [1]: ≤ 1 in Hay's model; Rubin–Terman's γ reaches ~0.2
    "decay": bounds.TIME_CONSTANT,  # [ms]
    "depth": bounds.DEPTH,  # [µm]
    "min_cai": bounds.FLOOR_CONCENTRATION,  # [mM]
    "cai0": bounds.CONCENTRATION,  # [mM]
    "cao": bounds.CONCENTRATION,  # [mM]
    "temperature": bounds.TEMPERATURE,  # [°C]
}


class CalciumDynamics(eqx.Module):
    """Calcium entering through Ca channels, buffered and pumped back to a floor.

    ``dcai/dt = −10 · ica · γ / (2 F · depth) − (cai − min_cai) / decay`` with ica
    [µA/cm²] (the factor 10 converts units; the mod file writes 10000 with mA/cm²).
    The reversal potential follows Nernst,
    ``e_ca = 1000 · R T / (2 F) · ln(cao / cai)`` [mV], T = `temperature` + 273.15 K.
    `cai` is kept at or above `CAI_FLOOR` (1e-9 mM), so it is never negative.
    Parameters are checked on construction against `neuroctl.biophysics.bounds`
    (e.g. decay in [1e-3, 1e9] ms, concentrations at most 1e3 mM).

    Reference: Destexhe et al. (1994); Hay et al. (2011) ``CaDynamics_E2.mod``.
    """

    gamma: FloatLike = 0.000609  # free (unbuffered) fraction [1]
    decay: FloatLike = 210.485  # removal time constant [ms]
    depth: FloatLike = 0.1  # shell depth [µm]
    min_cai: FloatLike = 1e-4  # floor of the pump [mM]
    cai0: FloatLike = 5e-5  # initial intracellular concentration [mM]
    cao: FloatLike = 2.0  # extracellular concentration [mM]
    temperature: float = eqx.field(
        default=34.0, static=True, converter=bounds.plain_float
    )  # [°C]
    param_bounds: ClassVar[dict[str, bounds.Bound]] = _BOUNDS

    def __check_init__(self) -> None:
        """Every parameter finite and within its range (`param_bounds`)."""
        bounds.check_mechanism(self, self.param_bound)

    @classmethod
    def param_bound(cls, name: str) -> bounds.Bound | None:
        """The range of field `name` (`neuroctl.biophysics.bounds`)."""
        return cls.param_bounds.get(name)

    def advance(self, cai: Concentration, ica: Array, dt: FloatLike) -> Array:
        """New `cai` [mM] after `dt` [ms] with the Ca current `ica` [µA/cm²] frozen."""
        drive = -_CA_FLUX_FACTOR * ica * self.gamma / (2.0 * units.FARADAY * self.depth)
        new = relax(cai, self.min_cai + self.decay * drive, 1.0 / self.decay, dt)
        # a large outward Ca current (e.g. a 1000-nA clamp) would drive cai below 0,
        # where Nernst and SKE2 are NaN; no physiological run comes near the floor
        return jnp.maximum(new, CAI_FLOOR)

    def reversal(self, cai: Concentration) -> Array:
        """Nernst potential of Ca²⁺ [mV] for `cai` [mM]."""
        return nernst(cai, self.cao, self.temperature, valence=2)


def nernst(
    c_in: Concentration, c_out: FloatLike, temperature: float, valence: int
) -> Array:
    """Nernst potential [mV] for concentrations [mM] at `temperature` [°C]."""
    kelvin = temperature + units.ZERO_CELSIUS
    rt_over_zf = 1000.0 * units.GAS_CONSTANT * kelvin / (valence * units.FARADAY)  # mV
    return rt_over_zf * jnp.log(c_out / jnp.maximum(c_in, 1e-12))
