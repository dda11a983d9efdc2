"""Extracellular stimulation and recording with point sources in a homogeneous medium.

Medium: homogeneous, isotropic, infinite, conductivity σ [S/m] (grey matter ≈ 0.3).
A point current I at distance r produces the potential

    V_e = I / (4π σ r),   V_e[mV] = 1e3 · I[µA] / (4π σ[S/m] · r[µm]),

and, with the same factor, φ[µV] = 1e3 · I[nA] / (4π σ[S/m] · r[µm]) (1 µA/µm and
1 nA/µm over S/m give 1e3 mV and 1e3 µV). Both directions use `point_source_transfer`.

**Stimulation** (`PointElectrodes`): the electrodes' currents set ``V_e`` at every
node (compartment centres, branch points at branch ends: `Network.xyz`) through a
transfer matrix ``(n_nodes, n_electrodes)`` [mV/µA] built once from geometry; several
electrodes superpose. `solver.step` takes ``v_ext = electrodes.potential(I)`` as
NEURON's ``extracellular`` mechanism with a transparent layer (xg → ∞, xc = 0,
xraxial → ∞) does: axial currents follow ``v_i = v + V_e``, adding the activating
function ``Σ_j g_ij (V_e,j − V_e,i)`` to each node. A cathode (I < 0) depolarises the
membrane beneath it.

**Recording** (`LFPElectrodes`, `membrane_currents`): the transmembrane current of
each node (capacitive + ionic + synaptic, outward positive) [nA] is a point source:
``φ(r) = Σ_i 1e3 · I_m,i / (4π σ |r − r_i|)`` [µV]. By Kirchhoff, ``I_m,i`` is the net
axial inflow plus any electrode (IClamp) current injected at node i. Like NEURON's
``i_membrane_`` (``cvode.use_fast_imem(1)``), electrode currents are not sources by
default, so ``Σ_i I_m,i`` equals the injected current; ``include_electrodes=True``
also counts each electrode current, with opposite sign, at its site (its return
there), so the sources sum to zero.

V_e at a branch point (zero area) moves no compartment: only its own reported v.
Backward Euler matches NEURON 9 to ~1e-9 mV (tests/biophysics/test_extracellular.py).
With Crank–Nicolson the step's V_e is its mid-step value and ``v`` is solved
directly, so a uniform V_e changes nothing and the scheme is second order; NEURON's
own CN extrapolates ``v_i`` instead and jumps ``v`` by every change of V_e.

Distances below `min_distance` [µm] (default 1 µm) are clamped to it: a source on a
node would be singular. Electrodes tens of µm away are unaffected by the clamp.
Clamping ``r²`` keeps value and gradient finite.
"""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from neuroctl.biophysics import solver
from neuroctl.biophysics.network import Network, Params
from neuroctl.errors import bad_value
from neuroctl.typing import Array, ArrayLike

SIGMA_GREY_MATTER = 0.3  # [S/m]
MIN_DISTANCE = 1.0  # [µm]


def point_source_transfer(
    targets: ArrayLike,
    sources: ArrayLike,
    sigma: float = SIGMA_GREY_MATTER,  # [S/m]
    min_distance: float = MIN_DISTANCE,  # [µm]
) -> Array:
    """Potential at `targets` per unit current at `sources`.

    ``T[i, j] = 1e3 / (4π σ max(|t_i − s_j|, r_min))``: mV per µA, or µV per nA.

    Args:
        targets: points ``(n, 3)`` [µm].
        sources: points ``(m, 3)`` [µm].
        sigma: conductivity of the medium [S/m], > 0.
        min_distance: smallest distance used [µm], > 0 (guards r → 0).

    Returns:
        The transfer matrix ``(n, m)`` [mV/µA = µV/nA].
    """
    t, s = _points("targets", targets), _points("sources", sources)
    _check_positive("sigma", sigma, "[S/m], e.g. 0.3 for grey matter")
    _check_positive("min_distance", min_distance, "[µm], e.g. 1.0")
    d = t[:, None, :] - s[None, :, :]  # [µm]
    r2 = jnp.maximum(jnp.sum(d * d, axis=-1), min_distance**2)  # [µm²], clamped
    return 1e3 / (4.0 * jnp.pi * sigma * jnp.sqrt(r2))  # 1 µA/(S/m·µm) = 1e3 mV


class PointElectrodes(eqx.Module):
    """Extracellular point current sources (stimulating electrodes).

    Attributes:
        transfer: ``(n_nodes, n_electrodes)`` [mV/µA]: V_e at each node per µA.
    """

    transfer: Array  # (n_nodes, n_electrodes) [mV/µA]

    @classmethod
    def build(
        cls,
        net: Network,
        positions: ArrayLike,  # (n_electrodes, 3) [µm]
        sigma: float = SIGMA_GREY_MATTER,  # [S/m]
        min_distance: float = MIN_DISTANCE,  # [µm]
    ) -> "PointElectrodes":
        """Electrodes at `positions` [µm] in the network's coordinates (`net.xyz`)."""
        positions = _points("positions", positions)
        return cls(point_source_transfer(net.xyz, positions, sigma, min_distance))

    @property
    def n_electrodes(self) -> int:
        return self.transfer.shape[1]

    def potential(self, currents: ArrayLike) -> Array:
        """Extracellular potential [mV] per node for electrode `currents` [µA]."""
        currents = jnp.asarray(currents)
        if currents.shape != (self.n_electrodes,):
            raise bad_value(
                "currents",
                f"shape {currents.shape}",
                f"shape ({self.n_electrodes},): one current [µA] per electrode",
                "pass one value per electrode position.",
            )
        return self.transfer.astype(currents.dtype) @ currents


class LFPElectrodes(eqx.Module):
    """Extracellular recording points (point-source LFP of transmembrane currents).

    Attributes:
        transfer: ``(n_electrodes, n_nodes)`` [µV/nA]: φ at each electrode per nA
            leaving the membrane at each node.
    """

    transfer: Array  # (n_electrodes, n_nodes) [µV/nA]

    @classmethod
    def build(
        cls,
        net: Network,
        positions: ArrayLike,  # (n_electrodes, 3) [µm]
        sigma: float = SIGMA_GREY_MATTER,  # [S/m]
        min_distance: float = MIN_DISTANCE,  # [µm]
    ) -> "LFPElectrodes":
        """Recording points at `positions` [µm] in the network's coordinates."""
        positions = _points("positions", positions)
        return cls(point_source_transfer(positions, net.xyz, sigma, min_distance))

    def potential(self, i_membrane: ArrayLike) -> Array:
        """φ [µV] at each electrode for transmembrane currents [nA] per node."""
        i_membrane = jnp.asarray(i_membrane)
        if i_membrane.shape != (self.transfer.shape[1],):
            raise bad_value(
                "i_membrane",
                f"shape {i_membrane.shape}",
                f"shape ({self.transfer.shape[1]},): one current [nA] per node",
                "pass `membrane_currents(...)` of the network the electrodes use.",
            )
        return self.transfer.astype(i_membrane.dtype) @ i_membrane


def membrane_currents(
    net: Network,
    v_old: Array,
    v_new: Array,
    stimulus: ArrayLike,
    scheme: solver.Scheme = "be",
    v_ext: ArrayLike | None = None,
    include_electrodes: bool = False,
) -> Array:
    """Transmembrane current [nA] per node (outward positive) of one solver step.

    Kirchhoff at node i: ``I_m,i = Σ_j g_ij (v_i,j − v_i,i) + I_stim,i`` with the
    intracellular potential ``v_i = v + v_ext``, taken where the step's linear
    system holds it exactly: at the new voltage for backward Euler (NEURON's
    ``i_membrane_`` at t + dt) and at the mid-step voltage ``(v_old + v_new) / 2``
    for Crank–Nicolson (the current at t + dt/2). Zero at branch points.

    Args:
        net: the compiled network.
        v_old: membrane potential before the step [mV], ``(n_nodes,)``.
        v_new: after the step [mV], ``(n_nodes,)``.
        stimulus: the step's electrode (IClamp) currents [nA], ``(net.n_stimuli,)``.
        scheme: the scheme of the step, ``"be"`` or ``"cn"``.
        v_ext: the step's extracellular potential [mV] per node, or None.
        include_electrodes: False (NEURON's convention): ``Σ I_m`` = injected
            current. True: each electrode current is also counted, with opposite
            sign, at its site; the sources then sum to zero.
    """
    v = v_new if scheme == "be" else 0.5 * (v_old + v_new)
    i_m = solver._axial_current(net, v)
    if v_ext is not None:
        i_m = i_m + solver._axial_current(net, jnp.asarray(v_ext, v.dtype))
    if include_electrodes:
        return i_m
    return i_m + solver._inject(net, jnp.asarray(stimulus, v.dtype), v)


def simulate_with_lfp(
    net: Network,
    params: Params,
    state: solver.State,
    stimulus: ArrayLike,
    dt: float,
    recording: LFPElectrodes,
    scheme: solver.Scheme = "be",
    electrodes: PointElectrodes | None = None,
    electrode_currents: ArrayLike | None = None,
    include_electrodes: bool = False,
    checkpoint_lengths: Sequence[int] | None = None,
) -> tuple[solver.State, tuple[Array, Array]]:
    """`solver.simulate` that also records the LFP at `recording`'s electrodes.

    Args are those of `solver.simulate`; `recording` gives the recording points and
    `include_electrodes` is passed to `membrane_currents`. For a custom recording
    inside your own scan, call `solver.step` and `membrane_currents` as the body
    here does.

    Returns:
        The final state and ``(v, lfp)``: voltages [mV] at the recording sites,
        ``(T, net.n_recordings)``, and φ [µV], ``(T, n_lfp_electrodes)``, after each
        step (BE: at t + dt; CN: the mid-step currents).
    """
    stimulus = jnp.asarray(stimulus, state.v.dtype)
    if electrodes is None:
        currents = jnp.zeros((stimulus.shape[0], 0), stimulus.dtype)
    else:
        currents = solver._electrode_currents(
            electrodes, electrode_currents, stimulus, state
        )
    params = net.cast_params(params, state.v.dtype)

    def body(s: solver.State, x: tuple[Array, Array]):
        v_ext = None if electrodes is None else electrodes.potential(x[1])
        new = solver.step(net, params, s, x[0], dt, scheme, v_ext)
        i_m = membrane_currents(
            net, s.v, new.v, x[0], scheme, v_ext, include_electrodes
        )
        return new, (new.v[net.recording_nodes], recording.potential(i_m))

    return solver.scan_checkpointed(
        body, state, (stimulus, currents), checkpoint_lengths
    )


def _points(name: str, x: ArrayLike) -> Array:
    x = jnp.asarray(x, float)
    if x.ndim != 2 or x.shape[1] != 3:
        raise bad_value(
            name,
            f"array of shape {x.shape}",
            "shape (n, 3) [µm]",
            "pass (x, y, z) rows.",
        )
    if not isinstance(x, jax.core.Tracer) and not np.all(np.isfinite(x)):
        bad = np.flatnonzero(~np.all(np.isfinite(np.asarray(x)), axis=1))
        raise bad_value(
            name,
            np.asarray(x)[bad].tolist(),
            "finite points (n, 3) [µm]",
            f"rows {bad.tolist()} are not finite: fix or drop them.",
        )
    return x


def _check_positive(name: str, value, what: str) -> None:
    if not (np.ndim(value) == 0 and float(value) > 0 and np.isfinite(float(value))):
        raise bad_value(name, value, f"a finite number > 0 {what}", f"fix {name}.")
