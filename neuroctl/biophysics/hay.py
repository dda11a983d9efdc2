"""The Hay et al. (2011) layer-5 pyramidal cell channel set (the paper RNN's channels).

Equations follow the ModelDB 139653 / BluePyOpt ``l5pc`` mechanisms as transcribed in
jaxley-mech 0.4 (``jaxley_mech.channels.l5pc``), with two deliberate differences:
exponentials are clipped only far outside the physiological range (`safe_exp`), and
the ``x / (exp(x/y) − 1)`` singularities use their exact limit (`efun`). Rates of
channels measured at 21 °C carry the fixed factor ``qt = 2.3^((34 − 21)/10)`` for a
34 °C model, exactly as the original mod files hard-code it.

Reference: Hay, Hill, Schürmann, Markram & Segev, PLoS Comput. Biol. 7:e1002107 (2011).
"""

from typing import ClassVar

import jax
import jax.numpy as jnp

from neuroctl.biophysics.channels import AbstractChannel, Gates
from neuroctl.biophysics.rates import efun, efun_pair, safe_exp, steady_and_rate
from neuroctl.typing import Array, Concentration, FloatLike, Voltage

QT_34C = 2.3 ** ((34.0 - 21.0) / 10.0)  # Q10 factor, 21 °C data run at 34 °C


def _ohmic(g: Array, e: FloatLike) -> tuple[Array, Array]:
    return g, g * e


class NaTs2T(AbstractChannel):
    """Transient Na⁺ current (Colbert & Pan 2002, shifted by 6 mV): ``g m³ h``."""

    gate_names: ClassVar[tuple[str, ...]] = ("m", "h")
    g: FloatLike = 983.955  # [mS/cm²] (paper soma: 0.983955 S/cm²)
    e_na: FloatLike = 50.0  # [mV]

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        em, em_neg = efun_pair(v + 32.0, 6.0)  # efun(v+32), efun(-(v+32))
        m, km = steady_and_rate(0.182 * em_neg, 0.124 * em)
        eh, eh_neg = efun_pair(v + 60.0, 6.0)
        h, kh = steady_and_rate(0.015 * eh, 0.015 * eh_neg)
        return (m, h), (QT_34C * km, QT_34C * kh)

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        m, h = gates
        return _ohmic(self.g * m**3 * h, self.e_na)


class SKv3_1(AbstractChannel):  # noqa: N801 (the channel's published name)
    """Kv3.1 fast K⁺ current (Rettig et al. 1992): ``g m``."""

    gate_names: ClassVar[tuple[str, ...]] = ("m",)
    g: FloatLike = 303.472  # [mS/cm²]
    e_k: FloatLike = -85.0  # [mV]

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        m_inf = jax.nn.sigmoid((v - 18.7) / 9.7)
        rate = (1.0 + safe_exp((v + 46.56) / -44.14)) / (0.2 * 20.0)  # 1/tau [1/ms]
        return (m_inf,), (rate,)

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        return _ohmic(self.g * gates[0], self.e_k)


class M(AbstractChannel):
    """Muscarinic K⁺ current (Adams et al. 1982): ``g m``."""

    gate_names: ClassVar[tuple[str, ...]] = ("m",)
    g: FloatLike = 0.143  # [mS/cm²]
    e_k: FloatLike = -85.0  # [mV]

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        u = 2.5 * 0.04 * (v + 35.0)  # α = c·e^u, β = c·e^−u, c = 3.3e-3 /ms
        m = jax.nn.sigmoid(2.0 * u)  # α / (α + β)
        k = 2.0 * 3.3e-3 * jnp.cosh(jnp.clip(u, -50.0, 50.0))  # α + β [1/ms]
        return (m,), (QT_34C * k,)

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        return _ohmic(self.g * gates[0], self.e_k)


class H(AbstractChannel):
    """Hyperpolarisation-activated cation current Ih (Kole et al. 2006): ``g m``."""

    gate_names: ClassVar[tuple[str, ...]] = ("m",)
    g: FloatLike = 0.08  # [mS/cm²]
    e_h: FloatLike = -45.0  # [mV]

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        alpha = 0.001 * 6.43 * efun(v + 154.9, 11.9)
        beta = 0.001 * 193.0 * safe_exp(v / 33.1)
        m, k = steady_and_rate(alpha, beta)
        return (m,), (k,)

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        return _ohmic(self.g * gates[0], self.e_h)


class CaHVA(AbstractChannel):
    """High-voltage-activated Ca²⁺ current (Reuveni et al. 1993): ``g m² h``."""

    gate_names: ClassVar[tuple[str, ...]] = ("m", "h")
    ion: ClassVar[str | None] = "ca"
    g: FloatLike = 0.994  # [mS/cm²]

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        m, km = steady_and_rate(
            0.055 * efun(-27.0 - v, 3.8), 0.94 * safe_exp((-75.0 - v) / 17.0)
        )
        h, kh = steady_and_rate(
            0.000457 * safe_exp((-13.0 - v) / 50.0),
            0.0065 / (safe_exp((-v - 15.0) / 28.0) + 1.0),
        )
        return (m, h), (km, kh)

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        m, h = gates
        return _ohmic(self.g * m**2 * h, e_ca)


class CaLVA(AbstractChannel):
    """Low-voltage-activated Ca²⁺ current (Avery & Johnston 1996): ``g m² h``."""

    gate_names: ClassVar[tuple[str, ...]] = ("m", "h")
    ion: ClassVar[str | None] = "ca"
    g: FloatLike = 0.333  # [mS/cm²]

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        vs = v + 10.0  # junction-potential shift [mV]
        m_inf = jax.nn.sigmoid((vs + 30.0) / 6.0)
        h_inf = jax.nn.sigmoid(-(vs + 80.0) / 6.4)
        tau_m = 5.0 + 20.0 / (1.0 + safe_exp((vs + 25.0) / 5.0))  # [ms] at 21 °C
        tau_h = 20.0 + 50.0 / (1.0 + safe_exp((vs + 40.0) / 7.0))  # [ms] at 21 °C
        return (m_inf, h_inf), (QT_34C / tau_m, QT_34C / tau_h)

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        m, h = gates
        return _ohmic(self.g * m**2 * h, e_ca)


class SKE2(AbstractChannel):
    """Small-conductance Ca²⁺-activated K⁺ current (Köhler et al. 1996): ``g z``.

    ``z_inf = 1 / (1 + (0.00043 mM / cai)^4.8)``, ``tau_z = 1 ms``; as in the mod
    file, ``cai`` below 1e-7 mM is raised by 1e-7 mM (after a negative ``cai``,
    which the solver never produces, is read as 0, so ``z_inf`` stays in [0, 1]).
    """

    gate_names: ClassVar[tuple[str, ...]] = ("z",)
    g: FloatLike = 8.407  # [mS/cm²]
    e_k: FloatLike = -85.0  # [mV]

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        cai = jnp.maximum(jnp.asarray(cai), 0.0)  # [mM]
        ca = jnp.where(cai < 1e-7, cai + 1e-7, cai)  # [mM]
        z_inf = 1.0 / (1.0 + (0.00043 / ca) ** 4.8)
        return (z_inf,), (jnp.ones_like(z_inf),)  # rate 1/(1 ms)

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        return _ohmic(self.g * gates[0], self.e_k)
