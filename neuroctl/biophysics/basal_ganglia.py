"""Rubin & Terman (2004) basal-ganglia cells: STN, GPe/GPi and thalamocortical (TC).

Single-compartment conductance-based cells of the parkinsonian network model of
Rubin & Terman, J. Comput. Neurosci. 16:211-235 (2004), written as `AbstractChannel`s
so the neuroctl solver runs them (implicit voltage step, exponential-Euler gates).

Units. The paper states conductances in nS/µm², currents in pA/µm² and C_m = 1
pF/µm²: each is 100x the usual mS/cm², µA/cm², µF/cm², so the paper's numbers read
as mS/cm², µA/cm² with C_m = 1 µF/cm² give the same dynamics (the factor cancels in
``C dv/dt = −I``). We use them that way, as the authors' XPPAUT code and every port
(NEURON, NEST, the So et al. 2012 MATLAB code) do.

Notation: ``σ(v; θ, κ) = 1 / (1 + exp(−(v − θ)/κ))`` (a negative κ makes a
decreasing sigmoid) and ``τ(v) = τ₀ + τ₁ / (1 + exp(−(v − θ_τ)/σ_τ))``; a gate X
obeys ``dX/dt = φ_X (X∞(v) − X) / τ_X(v)``.

Two choices forced by the channel API (currents linear in v for fixed gates):

* **Instantaneous gates** (the paper's m∞, a∞, s∞, p∞ and the AHP factor
  [Ca]/([Ca] + k₁)) are gates with steady state X∞ and rate `INSTANT_RATE`
  (1e5 /ms): after each step they equal X∞ at the new voltage (``exp(−dt·1e5)`` is 0
  to machine precision for dt ≥ 1e-3 ms), and the next step's current uses them. The
  current thus sees X∞ of the voltage at the start of the step: a one-step lag,
  first order in dt. `tests/biophysics/test_basal_ganglia.py` measures it against
  an independent RK4 integration of the paper's equations.
* **Calcium.** The paper's ``d[Ca]/dt = ε(−I_Ca − I_T − k_Ca [Ca])`` is exactly
  `CalciumDynamics` with ``min_cai = 0``, ``decay = 1/(ε k_Ca)`` and
  ``γ = 2 F depth ε / 10`` (`rubin_terman_calcium`), when the Ca channels below
  (``ion = "ca"``) are the only calcium sources. [Ca] is dimensionless in the paper;
  it lives in `State.cai` (nominally mM). The Nernst potential the solver derives
  from it (`State.eca`) is unused: these channels carry the paper's fixed E_Ca.

Parameter provenance: STN values are those of the authors' 2004 XPPAUT code as
transcribed in the ``stnRT`` NEURON mechanism of L. Koelman's ``bgcellmodels``
(2004 differs from Terman et al. 2002 in τ_r0 = 7.1 ms (40), φ_r = 0.5 (0.2),
θ_b = 0.25 (0.4), σ_b = −0.07 (−0.1), ε = 5e-5 /ms (3.75e-5)); GPe/GPi values are
the 2004 ones listed in NEST's ``terub_gpe`` (φ_n = 0.1, k_Ca = 15); TC values are
the paper's (also in the So et al. 2012 ModelDB 141699 code).

References:
    Rubin & Terman, J. Comput. Neurosci. 16:211-235 (2004).
    Terman, Rubin, Yew & Wilson, J. Neurosci. 22:2963-2976 (2002).
    So, Kent, Grill, J. Comput. Neurosci. 32:499-519 (2012) (ModelDB 141699).
"""

from typing import ClassVar

import jax
import jax.numpy as jnp

from neuroctl import units
from neuroctl.biophysics import bounds
from neuroctl.biophysics.calcium import CalciumDynamics
from neuroctl.biophysics.channels import AbstractChannel, Gates
from neuroctl.biophysics.rates import relax, safe_exp
from neuroctl.biophysics.synapses import AbstractSynapse
from neuroctl.errors import bad_value, check_param
from neuroctl.typing import Array, Concentration, FloatLike, Voltage

#: Relaxation rate [1/ms] of gates the paper treats as instantaneous.
INSTANT_RATE = 1e5


def sigmoid(v: Voltage, theta: float, kappa: float) -> Array:
    """``1 / (1 + exp(−(v − θ)/κ))`` [1] for `v`, `θ`, `κ` [mV] (κ < 0: decreasing)."""
    return jax.nn.sigmoid((jnp.asarray(v) - theta) / kappa)


def _tau(v: Voltage, tau0: float, tau1: float, theta: float, sigma: float) -> Array:
    """``τ₀ + τ₁ σ(v; θ, σ)`` [ms]."""
    return tau0 + tau1 * sigmoid(v, theta, sigma)


def _instant(x_inf: Array) -> tuple[Array, Array]:
    return x_inf, jnp.full_like(x_inf, INSTANT_RATE)


def _ohmic(g: Array, e: FloatLike) -> tuple[Array, Array]:
    return g, g * e


class STNChannels(AbstractChannel):
    """STN leak, transient Na⁺ and delayed-rectifier K⁺ currents (Rubin & Terman 2004).

    ``I = g_L (v − E_L) + g_Na m∞³(v) h (v − E_Na) + g_K n⁴ (v − E_K)`` with
    ``m∞ = σ(v; −30, 15)``, ``h∞ = σ(v; −39, −3.1)``, ``n∞ = σ(v; −32, 8)``,
    ``τ_h = 1 + 500 σ(v; −57, −3)``, ``τ_n = 1 + 100 σ(v; −80, −26)`` [ms],
    ``φ_h = φ_n = 0.75``. `m` is instantaneous (rate `INSTANT_RATE`).
    """

    gate_names: ClassVar[tuple[str, ...]] = ("m", "h", "n")
    g_l: FloatLike = 2.25  # [mS/cm²]
    e_l: FloatLike = -60.0  # [mV]
    g_na: FloatLike = 37.5  # [mS/cm²]
    e_na: FloatLike = 55.0  # [mV]
    g_k: FloatLike = 45.0  # [mS/cm²]
    e_k: FloatLike = -80.0  # [mV]

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        m, km = _instant(sigmoid(v, -30.0, 15.0))
        h, n = sigmoid(v, -39.0, -3.1), sigmoid(v, -32.0, 8.0)
        kh = 0.75 / _tau(v, 1.0, 500.0, -57.0, -3.0)  # φ_h / τ_h [1/ms]
        kn = 0.75 / _tau(v, 1.0, 100.0, -80.0, -26.0)  # φ_n / τ_n [1/ms]
        return (m, h, n), (km, kh, kn)

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        m, h, n = gates
        g_na, g_k = self.g_na * m**3 * h, self.g_k * n**4  # [mS/cm²]
        g = g_na + g_k + self.g_l
        return g, g_na * self.e_na + g_k * self.e_k + self.g_l * self.e_l


def stn_b_inf(r: Array) -> Array:
    """STN T-current inactivation ``b∞(r) = σ(r; 0.25, 0.07) − σ(0; 0.25, 0.07)`` [1].

    The paper writes ``1/(1 + exp((r − θ_b)/σ_b)) − 1/(1 + exp(−θ_b/σ_b))`` with
    θ_b = 0.25, σ_b = −0.07; b∞(0) = 0 and it grows with the de-inactivation `r`.
    """
    return sigmoid(r, 0.25, 0.07) - sigmoid(0.0, 0.25, 0.07)


class STNCalcium(AbstractChannel):
    """STN low-threshold T-type and high-threshold Ca²⁺ currents (Rubin & Terman 2004).

    ``I = g_T a∞³(v) b∞(r)² (v − E_Ca) + g_Ca s∞²(v) (v − E_Ca)`` with
    ``a∞ = σ(v; −63, 7.8)``, ``s∞ = σ(v; −39, 8)``, ``r∞ = σ(v; −67, −2)``,
    ``τ_r = 7.1 + 17.5 σ(v; 68, −2.2)`` [ms], ``φ_r = 0.5``, b∞ as `stn_b_inf`.
    `a` and `s` are instantaneous. Carried by Ca²⁺ (feeds `CalciumDynamics`), with
    the paper's fixed reversal `e_ca_fixed` (the Nernst ``e_ca`` is ignored).
    """

    gate_names: ClassVar[tuple[str, ...]] = ("a", "r", "s")
    ion: ClassVar[str | None] = "ca"
    g_t: FloatLike = 0.5  # [mS/cm²]
    g_ca: FloatLike = 0.5  # [mS/cm²]
    e_ca_fixed: FloatLike = 140.0  # [mV]

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        a, ka = _instant(sigmoid(v, -63.0, 7.8))
        s, ks = _instant(sigmoid(v, -39.0, 8.0))
        kr = 0.5 / _tau(v, 7.1, 17.5, 68.0, -2.2)  # φ_r / τ_r [1/ms]
        return (a, sigmoid(v, -67.0, -2.0), s), (ka, kr, ks)

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        a, r, s = gates
        g = self.g_t * a**3 * stn_b_inf(r) ** 2 + self.g_ca * s**2  # [mS/cm²]
        return _ohmic(g, self.e_ca_fixed)


class CalciumActivatedK(AbstractChannel):
    """Ca²⁺-activated after-hyperpolarisation K⁺ current of STN and GP cells.

    ``I_AHP = g_AHP ([Ca] / ([Ca] + k₁)) (v − E_K)``. The factor is a gate `q` with
    steady state ``[Ca]/([Ca] + k₁)`` and rate `INSTANT_RATE`. Defaults: STN
    (g_AHP = 9 mS/cm², k₁ = 15); GP cells use g_AHP = 30, k₁ = 30.
    """

    gate_names: ClassVar[tuple[str, ...]] = ("q",)
    g_ahp: FloatLike = 9.0  # [mS/cm²]
    e_k: FloatLike = -80.0  # [mV]
    k1: FloatLike = 15.0  # half-activation [Ca] [same units as State.cai]
    param_bounds: ClassVar[dict[str, bounds.Bound]] = {"k1": bounds.CONCENTRATION}

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        ca = jnp.maximum(jnp.asarray(cai), 0.0)
        q, kq = _instant(ca / (ca + self.k1))
        return (q,), (kq,)

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        return _ohmic(self.g_ahp * gates[0], self.e_k)


class GPChannels(AbstractChannel):
    """GPe/GPi leak, transient Na⁺ and delayed-rectifier K⁺ currents (R&T 2004).

    ``I = g_L (v − E_L) + g_Na m∞³(v) h (v − E_Na) + g_K n⁴ (v − E_K)`` with
    ``m∞ = σ(v; −37, 10)``, ``h∞ = σ(v; −58, −12)``, ``n∞ = σ(v; −50, 14)``,
    ``τ_h = τ_n = 0.05 + 0.27 σ(v; −40, −12)`` [ms], ``φ_h = 0.05``, ``φ_n = 0.1``.
    `m` is instantaneous.
    """

    gate_names: ClassVar[tuple[str, ...]] = ("m", "h", "n")
    g_l: FloatLike = 0.1  # [mS/cm²]
    e_l: FloatLike = -55.0  # [mV]
    g_na: FloatLike = 120.0  # [mS/cm²]
    e_na: FloatLike = 55.0  # [mV]
    g_k: FloatLike = 30.0  # [mS/cm²]
    e_k: FloatLike = -80.0  # [mV]

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        m, km = _instant(sigmoid(v, -37.0, 10.0))
        tau = _tau(v, 0.05, 0.27, -40.0, -12.0)  # τ_h = τ_n [ms]
        h, n = sigmoid(v, -58.0, -12.0), sigmoid(v, -50.0, 14.0)
        return (m, h, n), (km, 0.05 / tau, 0.1 / tau)

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        m, h, n = gates
        g_na, g_k = self.g_na * m**3 * h, self.g_k * n**4  # [mS/cm²]
        g = g_na + g_k + self.g_l
        return g, g_na * self.e_na + g_k * self.e_k + self.g_l * self.e_l


class GPCalcium(AbstractChannel):
    """GPe/GPi T-type and high-threshold Ca²⁺ currents (Rubin & Terman 2004).

    ``I = g_T a∞³(v) r (v − E_Ca) + g_Ca s∞²(v) (v − E_Ca)`` with
    ``a∞ = σ(v; −57, 2)``, ``s∞ = σ(v; −35, 2)``, ``r∞ = σ(v; −70, −2)``,
    ``τ_r = 30`` ms, ``φ_r = 1``. `a`, `s` instantaneous; carried by Ca²⁺ with the
    fixed reversal `e_ca_fixed`.
    """

    gate_names: ClassVar[tuple[str, ...]] = ("a", "r", "s")
    ion: ClassVar[str | None] = "ca"
    g_t: FloatLike = 0.5  # [mS/cm²]
    g_ca: FloatLike = 0.15  # [mS/cm²]
    e_ca_fixed: FloatLike = 120.0  # [mV]

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        a, ka = _instant(sigmoid(v, -57.0, 2.0))
        s, ks = _instant(sigmoid(v, -35.0, 2.0))
        r = sigmoid(v, -70.0, -2.0)
        return (a, r, s), (ka, jnp.full_like(r, 1.0 / 30.0), ks)  # φ_r/τ_r [1/ms]

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        a, r, s = gates
        g = self.g_t * a**3 * r + self.g_ca * s**2  # [mS/cm²]
        return _ohmic(g, self.e_ca_fixed)


class TCChannels(AbstractChannel):
    """Thalamocortical relay cell currents (Rubin & Terman 2004).

    ``I = g_L (v − E_L) + g_Na m∞³ h (v − E_Na) + g_K (0.75 (1 − h))⁴ (v − E_K)
    + g_T p∞² r (v − E_T)`` with ``m∞ = σ(v; −37, 7)``, ``p∞ = σ(v; −60, 6.2)``
    (instantaneous), ``h∞ = σ(v; −41, −4)``, ``τ_h = 1/(a_h + b_h)``,
    ``a_h = 0.128 exp(−(v + 46)/18)``, ``b_h = 4 / (1 + exp(−(v + 23)/5))`` [1/ms],
    ``r∞ = σ(v; −84, −4)``, ``τ_r = 0.15 (28 + exp(−(v + 25)/10.5))`` [ms]. The T
    current reverses at E_T = 0 mV and is not a calcium source (no [Ca] in TC).
    """

    gate_names: ClassVar[tuple[str, ...]] = ("m", "h", "p", "r")
    g_l: FloatLike = 0.05  # [mS/cm²]
    e_l: FloatLike = -70.0  # [mV]
    g_na: FloatLike = 3.0  # [mS/cm²]
    e_na: FloatLike = 50.0  # [mV]
    g_k: FloatLike = 5.0  # [mS/cm²]
    e_k: FloatLike = -90.0  # [mV]
    g_t: FloatLike = 5.0  # [mS/cm²]
    e_t: FloatLike = 0.0  # [mV]

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        m, km = _instant(sigmoid(v, -37.0, 7.0))
        p, kp = _instant(sigmoid(v, -60.0, 6.2))
        kh = 0.128 * safe_exp(-(v + 46.0) / 18.0) + 4.0 * sigmoid(v, -23.0, 5.0)
        tau_r = 0.15 * (28.0 + safe_exp(-(v + 25.0) / 10.5))  # [ms]
        h, r = sigmoid(v, -41.0, -4.0), sigmoid(v, -84.0, -4.0)
        return (m, h, p, r), (km, kh, kp, 1.0 / tau_r)

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        m, h, p, r = gates
        g_na = self.g_na * m**3 * h  # [mS/cm²]
        g_k = self.g_k * (0.75 * (1.0 - h)) ** 4
        g_t = self.g_t * p**2 * r
        g = self.g_l + g_na + g_k + g_t
        drive = self.g_l * self.e_l + g_na * self.e_na + g_k * self.e_k + g_t * self.e_t
        return g, drive


class AppliedCurrent(AbstractChannel):
    """A constant applied current density I_app [µA/cm²] (positive depolarises).

    Membrane current ``i = −I_app`` (``g = 0``, ``g·e = I_app``): the paper's I_app,
    which stands for unmodelled inputs (striatal inhibition of GPe lowers it). As a
    channel field it is a parameter leaf: per cell, differentiable, vmappable.
    """

    gate_names: ClassVar[tuple[str, ...]] = ()
    i_app: FloatLike = 0.0  # [µA/cm²]
    param_bounds: ClassVar[dict[str, bounds.Bound]] = {
        "i_app": bounds.CURRENT_DENSITY  # [-1e4, 1e4] µA/cm²
    }

    def gate_dynamics(self, v: Voltage, cai: Concentration) -> tuple[Gates, Gates]:
        return (), ()

    def currents(self, gates: Gates, e_ca: Voltage) -> tuple[Array, Array]:
        i = jnp.asarray(self.i_app)
        return jnp.zeros_like(i), i


def rubin_terman_calcium(
    epsilon: float, k_ca: float, ca0: float = 0.1, depth: float = 0.1
) -> CalciumDynamics:
    """`CalciumDynamics` equal to ``d[Ca]/dt = ε(−I_Ca − I_T − k_Ca [Ca])``.

    `CalciumDynamics` integrates ``dcai/dt = −10 γ ica/(2 F depth) − (cai −
    min_cai)/decay``; with ``γ = 2 F depth ε / 10``, ``decay = 1/(ε k_Ca)`` and
    ``min_cai = 0`` the two are the same equation (`ica` [µA/cm²] is the sum of the
    ``ion = "ca"`` channels, here I_T + I_Ca).

    Args:
        epsilon: ε [1/ms] (STN 5e-5, GP 1e-4).
        k_ca: k_Ca [µA/cm² per unit Ca] (STN 22.5, GP 15).
        ca0: initial [Ca] [paper units, stored as mM].
        depth: nominal shell depth [µm]; only rescales γ.
    """
    check_param("epsilon", epsilon, 0.0, True)
    check_param("k_ca", k_ca, 0.0, True)
    if not ca0 > 0:
        raise bad_value("ca0", ca0, "an initial [Ca] > 0", "e.g. ca0=0.1.")
    gamma = 2.0 * units.FARADAY * depth * epsilon / 10.0  # [1]
    return CalciumDynamics(
        gamma=gamma, decay=1.0 / (epsilon * k_ca), depth=depth, min_cai=0.0, cai0=ca0
    )


STN_CALCIUM = {"epsilon": 5e-5, "k_ca": 22.5}  # [1/ms], [1]
GP_CALCIUM = {"epsilon": 1e-4, "k_ca": 15.0}  # [1/ms], [1]


class RTSynapse(AbstractSynapse):
    """First-order synapse of Rubin & Terman (2004), with presynaptic sigmoid drive.

    ``ds/dt = α H∞(v_pre − θ_g)(1 − s) − β s``,
    ``H∞(x) = 1 / (1 + exp(−(x − θ_H)/σ_H))``; current ``g s (v_post − E_syn)``.
    Written as ``ds/dt = (s∞ − s)·k`` with ``k = α H∞ + β``, ``s∞ = α H∞ / k``, so
    exponential Euler is exact for a frozen `v_pre`. Defaults: STN presynaptic
    (α = 5, β = 1 /ms, θ_g = 30, θ_H = −39, σ_H = 8 mV); GPe/GPi presynaptic use
    α = 2, β = 0.04, θ_g = 20, θ_H = −57, σ_H = 2 (`GP_SYNAPSE`).
    """

    g: FloatLike = 0.001  # maximal conductance [µS]
    e_syn: FloatLike = 0.0  # reversal potential [mV]
    alpha: FloatLike = 5.0  # [1/ms]
    beta: FloatLike = 1.0  # [1/ms]
    theta_g: FloatLike = 30.0  # [mV]
    theta_h: FloatLike = -39.0  # [mV]
    sigma_h: FloatLike = 8.0  # [mV]
    param_bounds: ClassVar[dict[str, bounds.Bound]] = {
        "g": bounds.POINT_CONDUCTANCE,  # [0, 1e3] µS
        "e_syn": bounds.POTENTIAL,  # [-1e3, 1e3] mV
        "alpha": bounds.RATE,  # [0, 1e5] 1/ms
        "beta": bounds.POSITIVE_RATE,  # [1e-9, 1e5] 1/ms (a divisor)
        "theta_g": bounds.POTENTIAL,
        "theta_h": bounds.POTENTIAL,
        "sigma_h": bounds.SLOPE,  # [1e-3, 1e3] mV
    }

    def steady_and_rate(self, v_pre: Voltage) -> tuple[Array, Array]:
        x = (jnp.asarray(v_pre) - self.theta_g - self.theta_h) / self.sigma_h
        on = self.alpha * jax.nn.sigmoid(x)  # α H∞ [1/ms]
        rate = on + self.beta  # [1/ms]
        return on / rate, rate

    def advance(self, s: Array, v_pre: Voltage, dt: FloatLike) -> Array:
        """New synaptic state after `dt` [ms] at presynaptic voltage `v_pre` [mV]."""
        return relax(s, *self.steady_and_rate(v_pre), dt)

    def conductance(self, s: Array) -> tuple[Array, Array]:
        g = self.g * s  # [µS]
        return g, g * jnp.asarray(self.e_syn)


STN_SYNAPSE = {
    "alpha": 5.0,
    "beta": 1.0,
    "theta_g": 30.0,
    "theta_h": -39.0,
    "sigma_h": 8.0,
}
GP_SYNAPSE = {
    "alpha": 2.0,
    "beta": 0.04,
    "theta_g": 20.0,
    "theta_h": -57.0,
    "sigma_h": 2.0,
}

__all__ = [
    "GP_CALCIUM",
    "GP_SYNAPSE",
    "INSTANT_RATE",
    "STN_CALCIUM",
    "STN_SYNAPSE",
    "AppliedCurrent",
    "CalciumActivatedK",
    "GPCalcium",
    "GPChannels",
    "RTSynapse",
    "STNCalcium",
    "STNChannels",
    "TCChannels",
    "rubin_terman_calcium",
    "sigmoid",
    "stn_b_inf",
]
