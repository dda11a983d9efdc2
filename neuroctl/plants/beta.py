"""A parkinsonian basal-ganglia–thalamic network after Rubin & Terman (2004).

Four populations of `n_cells` cells (`neuroctl.biophysics.basal_ganglia`):
subthalamic nucleus (STN), globus pallidus externus (GPe) and internus (GPi), and
thalamocortical relay cells (TC). STN cells are a soma with an HH axon (so an
extracellular electrode acts on them, `BetaNetConfig`); the others are single
somata. Cell order in the network and in the recordings: STN 0..N−1, GPe N..2N−1,
GPi 2N..3N−1, TC 3N..4N−1 (somata), then the STN axon ends (4N..5N−1).

Connectivity (a ring, as in the So et al. 2012 port of the model; i ± k mod N), each
cell receiving two inputs of half the total conductance density ``g`` of its
pathway, with `RTSynapse` kinetics of the presynaptic type; STN synapses take their
presynaptic voltage at the STN axon's end (`output_site`):

==========  =====================  ============================
pathway     cell i receives from   reversal
==========  =====================  ============================
STN → GPe   STN i, STN i−1         `e_exc` (0 mV)
STN → GPi   STN i, STN i−1         `e_exc`
GPe → STN   GPe i, GPe i+1         `e_inh` (−85 mV)
GPe → GPe   GPe i+1, GPe i−2       `e_inh`
GPe → GPi   GPe i+1, GPe i−2       `e_inh`
GPi → TC    every GPi cell         `e_inh` (decay `beta_gpi_tc`)
==========  =====================  ============================

GPi → TC converges (`BetaNetConfig.gpi_tc_inputs`, default all N) with a fast
decay (β = 0.2 /ms, τ = 5 ms as the So et al. alpha synapse): asynchronous healthy
GPi then sums to near-constant inhibition and TC relays its input, while
synchronous parkinsonian GPi gives phasic inhibition and relay errors, the paper's
mechanism (one input per TC, as first built, gave no difference).

Inputs (stimulus sites, currents in nA): the STN somata (DBS current), then the TC
somata (sensorimotor input). `sensorimotor_input` and `dbs_input` build them from
densities [µA/cm²]. Recordings: every soma [mV].

Healthy vs parkinsonian (Rubin & Terman 2004, sec. 2): the parkinsonian state has
stronger striatal inhibition of GPe (lower GPe I_app) and weaker GPe→GPe
inhibition; `HEALTHY` and `PARKINSONIAN` are the two `BetaParams` sets used here
(see results/dbs_plant.md for what each produces).

Thalamic relay error index (Rubin & Terman 2004; as computed in So et al. 2012):
for each sensorimotor pulse, a miss (no TC spike within `window` ms of its onset) or
a burst (more than one spike in the window) is one error, and every spike between
the window's end and the next pulse is one more; EI = errors / pulses, averaged over
TC cells.

Shipped folders (`neuroctl.io.artefacts`, ``kind = "beta"``): `BetaSpec` ↔
spec.toml, the parameters (`Params` leaves) in the verified checkpoint, the card
(metrics.json) written by scripts/dbs_plant.py --ship; `write_plant` writes one,
`from_artefact` (through `neuroctl.plants.load`) rebuilds and verifies it.

References:
    Rubin & Terman, J. Comput. Neurosci. 16:211-235 (2004).
    So, Kent & Grill, J. Comput. Neurosci. 32:499-519 (2012) (ModelDB 141699).
"""

import dataclasses
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from neuroctl import units
from neuroctl.biophysics import HH, Cell, Connection, Morphology, Network, Site
from neuroctl.biophysics import solver as bp_solver
from neuroctl.biophysics.basal_ganglia import (
    GP_CALCIUM,
    GP_SYNAPSE,
    STN_CALCIUM,
    STN_SYNAPSE,
    AppliedCurrent,
    CalciumActivatedK,
    GPCalcium,
    GPChannels,
    RTSynapse,
    STNCalcium,
    STNChannels,
    TCChannels,
    rubin_terman_calcium,
)
from neuroctl.errors import ConfigError, bad_value, check_int, check_param
from neuroctl.plants.base import Plant

POPULATIONS = ("stn", "gpe", "gpi", "tc")
BETA_BAND = (13.0, 30.0)  # [Hz]


@dataclass(frozen=True)
class BetaNetConfig:
    """Static structure: population size, cell geometry, placement, GPi→TC fan-in.

    STN cells are a soma (the Rubin–Terman channels) with an unbranched axon of
    Hodgkin–Huxley membrane (`neuroctl.biophysics.HH`, squid densities and kinetics
    at 6.3 °C: a generic excitable axon, not an STN-specific one), so an
    extracellular electrode excites them through the activating function, as in
    real DBS; ``axon_length = 0`` gives the paper's single-compartment STN. GPe,
    GPi and TC cells are single somata (an extracellular field does not act on a
    single compartment).

    Placement (for electrodes and the LFP; `Network.xyz`): cell i of population p
    (STN, GPe, GPi, TC = 0..3) has its soma at ``(0, i·cell_spacing,
    p·population_spacing)`` [µm]; STN axons run along +x from the soma's distal
    end (x = soma_length).

    Attributes:
        n_cells: cells per population (Rubin & Terman used 16; 10 here by default,
            as So et al. 2012).
        soma_length: soma cylinder length [µm].
        soma_radius: soma cylinder radius [µm] (area 2π·r·L ≈ 1005 µm² by default;
            synaptic conductances and injected currents are scaled by it).
        axon_length: STN axon length [µm]; 0 for single-compartment STN cells.
        axon_radius: STN axon radius [µm].
        axon_ncomp: compartments of the STN axon.
        axial_resistivity: cytoplasmic resistivity of STN cells [Ω·cm].
        cell_spacing: distance between neighbouring cells of a population [µm].
        population_spacing: distance between the populations' planes [µm].
        gpi_tc_inputs: GPi cells converging on each TC cell (i, i+1, ... mod N);
            0 for all N.
    """

    n_cells: int = 10
    soma_length: float = 20.0  # [µm]
    soma_radius: float = 8.0  # [µm]
    axon_length: float = 300.0  # [µm]
    axon_radius: float = 0.25  # [µm]
    axon_ncomp: int = 10
    axial_resistivity: float = 150.0  # [Ω·cm]
    cell_spacing: float = 40.0  # [µm]
    population_spacing: float = 2000.0  # [µm]
    gpi_tc_inputs: int = 0

    def __post_init__(self) -> None:
        check_int("BetaNetConfig.n_cells", self.n_cells, 3)
        check_int("BetaNetConfig.gpi_tc_inputs", self.gpi_tc_inputs, 0, self.n_cells)
        check_int("BetaNetConfig.axon_ncomp", self.axon_ncomp, 1)
        for name in ("soma_length", "soma_radius", "axon_radius", "axial_resistivity"):
            check_param(f"BetaNetConfig.{name}", getattr(self, name), 0.0, True)
        for name in ("axon_length", "cell_spacing", "population_spacing"):
            check_param(f"BetaNetConfig.{name}", getattr(self, name), 0.0)

    @property
    def area(self) -> float:
        """Soma membrane area [µm²]."""
        return units.cylinder_area(self.soma_length, self.soma_radius)

    def density_to_point(self, x: float) -> float:
        """A density [mS/cm² or µA/cm²] over the soma as a point value [µS or nA]."""
        return x * self.area * units.MS_PER_CM2_UM2_TO_US  # 1e-5 µS per mS/cm²·µm²

    def position(self, population: int, i: int) -> tuple[float, float, float]:
        """Soma start of cell `i` of population `population` (0..3) [µm]."""
        return (0.0, i * self.cell_spacing, population * self.population_spacing)


@dataclass(frozen=True)
class BetaParams:
    """One parameter set of the network (applied currents, pathway conductances).

    Synaptic conductances are the total density a cell receives on a pathway
    [mS/cm²] (split over its inputs). I_app jitter draws one N(0, sd²) offset per GPe
    cell (as So et al. 2012) to break the ring's symmetry.
    """

    i_stn: float = 25.0  # I_app of STN [µA/cm²]
    i_gpe: float = 8.0  # I_app of GPe [µA/cm²]
    i_gpi: float = 10.0  # I_app of GPi [µA/cm²]
    i_tc: float = 0.0  # I_app of TC [µA/cm²]
    g_stn_gpe: float = 0.3  # [mS/cm²]
    g_stn_gpi: float = 0.3  # [mS/cm²]
    g_gpe_stn: float = 0.9  # [mS/cm²]
    g_gpe_gpe: float = 1.0  # [mS/cm²]
    g_gpe_gpi: float = 1.0  # [mS/cm²]
    g_gpi_tc: float = 0.3  # [mS/cm²]
    beta_gpi_tc: float = 0.2  # decay rate β of the GPi→TC synapse [1/ms]
    e_exc: float = 0.0  # [mV]
    e_inh: float = -85.0  # [mV]
    i_gpe_jitter: float = 0.5  # sd of per-cell GPe I_app offsets [µA/cm²]

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            low = 0.0 if f.name.startswith("g_") or f.name.endswith("jitter") else None
            check_param(f"BetaParams.{f.name}", getattr(self, f.name), low)
        check_param("BetaParams.beta_gpi_tc", self.beta_gpi_tc, 0.0, True)


HEALTHY = BetaParams()
PARKINSONIAN = BetaParams(i_gpe=-2.0, g_gpe_gpe=0.2)


def stn_cell(cfg: BetaNetConfig, i_app: float) -> Cell:
    """An STN cell: soma with the Rubin–Terman channels and calcium, HH axon.

    The soma is branch 0; the axon (if ``cfg.axon_length > 0``) is branch 1, with
    `HH` at its default (squid) densities.
    """
    if cfg.axon_length == 0:
        cell = _soma(cfg)
    else:
        cell = Cell(_soma_and_axon(cfg)).insert(HH(), 1)
    return (
        cell.insert(STNChannels(), 0)
        .insert(STNCalcium(), 0)
        .insert(CalciumActivatedK(g_ahp=9.0, k1=15.0), 0)
        .insert(rubin_terman_calcium(**STN_CALCIUM), 0)
        .insert(AppliedCurrent(i_app=i_app), 0)
    )


def gp_cell(cfg: BetaNetConfig, i_app: float) -> Cell:
    """A GPe or GPi soma (same channels; they differ in I_app and inputs)."""
    return (
        _soma(cfg)
        .insert(GPChannels())
        .insert(GPCalcium())
        .insert(CalciumActivatedK(g_ahp=30.0, k1=30.0))
        .insert(rubin_terman_calcium(**GP_CALCIUM))
        .insert(AppliedCurrent(i_app=i_app))
    )


def tc_cell(cfg: BetaNetConfig, i_app: float) -> Cell:
    """A thalamocortical relay soma."""
    return _soma(cfg).insert(TCChannels()).insert(AppliedCurrent(i_app=i_app))


def _soma(cfg: BetaNetConfig) -> Cell:
    return Cell(Morphology.single_compartment(cfg.soma_length, cfg.soma_radius))


def _soma_and_axon(cfg: BetaNetConfig) -> Morphology:
    return Morphology.from_parents(
        [-1, 0],
        ncomp=[1, cfg.axon_ncomp],
        length=[cfg.soma_length, cfg.axon_length],
        radius=[cfg.soma_radius, cfg.axon_radius],
        axial_resistivity=cfg.axial_resistivity,
    )


def placed(cell: Cell, cfg: BetaNetConfig, population: int, i: int) -> Cell:
    """`cell` moved to its place in the network (`BetaNetConfig.position`)."""
    return dataclasses.replace(cell, position=cfg.position(population, i))


def build(
    key: jax.Array,
    cfg: BetaNetConfig = BetaNetConfig(),
    bg: BetaParams = HEALTHY,
    name: str = "rubin_terman_2004",
) -> Plant:
    """The network as a `Plant` (inputs: STN DBS, TC sensorimotor; readouts [mV]).

    Args:
        key: draws the per-cell GPe I_app offsets (`BetaParams.i_gpe_jitter`).
        cfg: population size, geometry, placement (`BetaNetConfig`).
        bg: applied currents and pathway conductances (`HEALTHY`, `PARKINSONIAN`).
        name: the plant's name.
    """
    n = cfg.n_cells
    jitter = bg.i_gpe_jitter * np.asarray(jax.random.normal(key, (n,)))
    kinds = (
        [stn_cell(cfg, bg.i_stn)] * n
        + [gp_cell(cfg, bg.i_gpe + float(j)) for j in jitter]
        + [gp_cell(cfg, bg.i_gpi)] * n
        + [tc_cell(cfg, bg.i_tc)] * n
    )
    cells = [placed(c, cfg, k // n, k % n) for k, c in enumerate(kinds)]
    axons = [output_site(cfg, i) for i in range(n)] if cfg.axon_length > 0 else []
    net = Network.build(
        cells,
        connections=connections(cfg, bg),
        stimuli=[Site(i) for i in (*range(n), *range(3 * n, 4 * n))],
        recordings=[Site(i) for i in range(4 * n)] + axons,
    )
    return Plant.from_network(
        net,
        inputs=tuple(f"{p}{i}" for p in ("dbs_stn", "sm_tc") for i in range(n)),
        readouts=tuple(f"v_{p}{i}" for p in POPULATIONS for i in range(n))
        + tuple(f"v_stn_axon{i}" for i in range(len(axons))),
        v_init=-65.0,
        name=name,
    )


def connections(cfg: BetaNetConfig, bg: BetaParams) -> list[Connection]:
    """All synapses of the ring network (see the module docstring)."""
    n = cfg.n_cells
    stn, gpe, gpi, tc = (np.arange(n) + k * n for k in range(4))
    gpi_tc = GP_SYNAPSE | {"beta": bg.beta_gpi_tc}
    fan_in = tuple(range(cfg.gpi_tc_inputs or n))
    # (pre cells, post cells, offsets of the presynaptic index, g, reversal, kinetics)
    paths = (
        (stn, gpe, (0, -1), bg.g_stn_gpe, bg.e_exc, STN_SYNAPSE),
        (stn, gpi, (0, -1), bg.g_stn_gpi, bg.e_exc, STN_SYNAPSE),
        (gpe, stn, (0, 1), bg.g_gpe_stn, bg.e_inh, GP_SYNAPSE),
        (gpe, gpe, (1, -2), bg.g_gpe_gpe, bg.e_inh, GP_SYNAPSE),
        (gpe, gpi, (1, -2), bg.g_gpe_gpi, bg.e_inh, GP_SYNAPSE),
        (gpi, tc, fan_in, bg.g_gpi_tc, bg.e_inh, gpi_tc),
    )
    out = []
    for pre, post, offsets, g, e, kinetics in paths:
        g_point = cfg.density_to_point(g / len(offsets))  # [µS] per connection
        syn = RTSynapse(g=g_point, e_syn=e, **kinetics)
        for i in range(n):
            for k in offsets:
                src = output_site(cfg, int(pre[(i + k) % n]))
                out.append(Connection(syn, src, Site(int(post[i]))))
    return out


def output_site(cfg: BetaNetConfig, cell: int) -> Site:
    """Where cell `cell`'s synapses take their presynaptic voltage.

    STN cells with an axon: its distal compartment (so axonal spikes evoked by an
    extracellular electrode reach GPe and GPi even when they fail to invade the
    soma); every other cell: its soma.
    """
    if cell < cfg.n_cells and cfg.axon_length > 0:
        return Site(cell, 1, cfg.axon_ncomp - 1)
    return Site(cell)


def initial_state(
    plant: Plant, key: jax.Array, v_spread: float = 5.0, dtype=jnp.float64
) -> bp_solver.State:
    """Resting state with voltages drawn from N(v_init, v_spread²) [mV], gates at rest.

    Gates and synapses start at their steady state for `plant.v_init`; only the
    voltages are spread, which desynchronises the populations within a few spikes.
    """
    state = bp_solver.init_state(plant.network, plant.params, plant.v_init, dtype)
    dv = v_spread * jax.random.normal(key, state.v.shape, dtype)  # [mV]
    return eqx.tree_at(lambda s: s.v, state, state.v + dv)


# ---------------------------------------------------------------- inputs


def pulse_train(
    n_steps: int, dt: float, onsets: np.ndarray, width: float, amplitude: float
) -> np.ndarray:
    """Rectangular pulses: `amplitude` from each onset [ms] for `width` [ms].

    Returns:
        Shape ``(n_steps,)``, the value during each step (step k covers
        ``[k·dt, (k+1)·dt)``).
    """
    t = np.arange(n_steps) * dt  # [ms]
    idx = np.searchsorted(onsets, t, side="right") - 1  # last onset <= t
    last = np.where(idx >= 0, onsets[np.maximum(idx, 0)], -np.inf)
    return np.where(t - last < width - 1e-9, amplitude, 0.0)


def sensorimotor_onsets(
    key: jax.Array, duration: float, rate: float = 14.0, cv: float = 0.2
) -> np.ndarray:
    """Pulse onsets [ms] of the sensorimotor input: gamma intervals, mean 1/`rate`.

    As So et al. (2012): mean rate 14 Hz, coefficient of variation 0.2 (cv = 0 gives
    a periodic train). The first pulse comes one interval after 0.
    """
    check_param("rate", rate, 0.0, True)
    check_param("cv", cv, 0.0)
    n = int(duration * rate / 1000.0 * 2 + 10)
    mean = 1000.0 / rate  # [ms]
    if cv == 0:
        intervals = np.full(n, mean)
    else:
        shape = 1.0 / cv**2
        intervals = np.asarray(jax.random.gamma(key, shape, (n,))) * mean / shape
    onsets = np.cumsum(intervals)
    return onsets[onsets < duration]


def sensorimotor_input(
    cfg: BetaNetConfig,
    onsets: np.ndarray,
    n_steps: int,
    dt: float,
    amplitude: float = 5.0,
    width: float = 5.0,
) -> np.ndarray:
    """TC input currents [nA], shape ``(n_steps, n_cells)``, the same for every cell.

    Pulses of `amplitude` [µA/cm²] and `width` [ms] start at `onsets` [ms].
    """
    x = pulse_train(n_steps, dt, onsets, width, cfg.density_to_point(amplitude))
    return np.repeat(x[:, None], cfg.n_cells, axis=1)


def dbs_input(
    cfg: BetaNetConfig,
    n_steps: int,
    dt: float,
    amplitude: float,
    frequency: float = 130.0,
    width: float = 0.3,
    start: float = 0.0,
) -> np.ndarray:
    """Monophasic DBS current into every STN soma [nA], shape ``(n_steps, n)``.

    Rubin & Terman (2004) model DBS as a periodic train of rectangular current pulses
    ``i_D`` [µA/cm²] into STN; here `amplitude` [µA/cm²], `frequency` [Hz], `width`
    [ms], from `start` [ms] on.
    """
    check_param("frequency", frequency, 0.0, True)
    if not 0 < width < 1000.0 / frequency:
        raise bad_value(
            "width", width, f"in (0, {1000.0 / frequency:g}) ms", "shorten the pulse."
        )
    onsets = np.arange(start, n_steps * dt, 1000.0 / frequency)  # [ms]
    x = pulse_train(n_steps, dt, onsets, width, cfg.density_to_point(amplitude))
    return np.repeat(x[:, None], cfg.n_cells, axis=1)


def stimulus(dbs: np.ndarray, sm: np.ndarray) -> np.ndarray:
    """The plant's stimulus array [nA]: DBS columns (STN), then SM columns (TC)."""
    if dbs.shape != sm.shape:
        raise bad_value("dbs", dbs.shape, f"the shape of sm {sm.shape}", "")
    return np.concatenate([dbs, sm], axis=1)


# ---------------------------------------------------------------- analysis


def spike_times(v: np.ndarray, dt: float, threshold: float = -20.0) -> list:
    """Upward crossings of `threshold` [mV] per column of `v` (T, cells), in ms."""
    up = (v[:-1] < threshold) & (v[1:] >= threshold)
    return [(np.flatnonzero(up[:, i]) + 1) * dt for i in range(v.shape[1])]


def firing_rate(spikes: list, t0: float, t1: float) -> float:
    """Mean rate [Hz] of the spike trains (ms) in ``[t0, t1)`` [ms]."""
    n = sum(int(np.sum((s >= t0) & (s < t1))) for s in spikes)
    return n / len(spikes) / ((t1 - t0) / 1000.0)


def population_rate(spikes: list, t0: float, t1: float, bin_ms: float = 1.0):
    """Population rate [Hz per cell] in bins of `bin_ms` [ms] over ``[t0, t1)``."""
    edges = np.arange(t0, t1 + 1e-9, bin_ms)
    counts = sum(np.histogram(s, edges)[0] for s in spikes)
    return counts / len(spikes) / (bin_ms / 1000.0)


def spectrum(x: np.ndarray, fs: float, segment_s: float = 1.0):
    """Welch power spectral density of `x` (mean removed) at `fs` [Hz].

    Returns:
        Frequencies [Hz] and PSD [x²/Hz].
    """
    from scipy.signal import welch

    nper = min(len(x), int(segment_s * fs))
    return welch(x - np.mean(x), fs=fs, nperseg=nper)


def beta_summary(f: np.ndarray, psd: np.ndarray, band=BETA_BAND) -> dict:
    """Peak frequency [Hz], beta-band power [x²] and its fraction, in 2–100 Hz."""
    df = f[1] - f[0]
    wide = (f >= 2.0) & (f <= 100.0)
    beta = (f >= band[0]) & (f <= band[1])
    total = float(np.sum(psd[wide]) * df)
    power = float(np.sum(psd[beta]) * df)
    peak = float(f[wide][np.argmax(psd[wide])])
    return {"peak_hz": peak, "beta_power": power, "beta_fraction": power / total}


def synchrony(v: np.ndarray) -> float:
    """Golomb–Rinzel synchrony χ² = var(mean_i v_i) / mean_i var(v_i) [1]."""
    return float(np.var(v.mean(axis=1)) / np.mean(np.var(v, axis=0)))


def error_index(
    tc_spikes: list, onsets: np.ndarray, t0: float, t1: float, window: float = 25.0
) -> float:
    """Thalamic relay error index (Rubin & Terman 2004) of pulses in [t0, t1 − window].

    Per pulse and TC cell: no spike in ``[onset, onset + window)`` or more than one is
    an error; each spike after the window and before the next pulse is one more.
    """
    pulses = onsets[(onsets >= t0) & (onsets <= t1 - window)]
    if len(pulses) == 0:
        raise bad_value("onsets", onsets, f"pulses in [{t0}, {t1 - window}] ms", "")
    nxt = np.append(pulses[1:], t1)
    errors = []
    for s in tc_spikes:
        e = 0
        for a, b in zip(pulses, nxt, strict=True):
            k = np.sum((s >= a) & (s < a + window))
            e += int(k != 1) + int(np.sum((s >= a + window) & (s < b)))
        errors.append(e / len(pulses))
    return float(np.mean(errors))


# ---------------------------------------------------------------- shipped folders

KIND = "beta"  # spec.toml's `kind` for this plant family
STATES = {"healthy": HEALTHY, "parkinsonian": PARKINSONIAN}


@dataclass(frozen=True)
class BetaSpec:
    """Everything a shipped beta plant's ``spec.toml`` holds.

    Attributes:
        name: the plant's name (its folder under ``envs/``).
        state: "healthy" or "parkinsonian": which named set `params` started from
            (informative; `params` is what is built).
        seed: key of `build` (draws the GPe I_app jitter) [1].
        dt: the time step the card was measured with [ms] (backward Euler).
        dtype: float dtype of the stored parameters ("float64" or "float32").
        network: static structure (`BetaNetConfig`, the [network] table).
        params: applied currents and pathway conductances (`BetaParams`, [params]).
        description: free text.
    """

    name: str
    state: str
    seed: int = 0
    dt: float = 0.025  # [ms]
    dtype: str = "float64"
    network: BetaNetConfig = BetaNetConfig()
    params: BetaParams = PARKINSONIAN
    description: str = ""

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise bad_value("state", self.state, f"one of {sorted(STATES)}", "")
        check_int("seed", self.seed, 0)
        check_param("dt", self.dt, 0.0, True)
        if self.dtype not in ("float32", "float64"):
            raise bad_value("dtype", self.dtype, "'float32' or 'float64'", "")


_SECTIONS = {"network": BetaNetConfig, "params": BetaParams}
_SCALARS = ("name", "state", "seed", "dt", "dtype", "description")


def spec_to_toml(spec: BetaSpec) -> str:
    """TOML text that `spec_from_dict(tomllib.loads(...))` turns back into `spec`."""
    lines = [f"kind = {_toml(KIND)}"]
    lines += [f"{k} = {_toml(getattr(spec, k))}" for k in _SCALARS]
    for section in _SECTIONS:
        obj = getattr(spec, section)
        lines += ["", f"[{section}]"]
        lines += [
            f"{f.name} = {_toml(getattr(obj, f.name))}" for f in dataclasses.fields(obj)
        ]
    return "\n".join(lines) + "\n"


def _toml(v) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v) if isinstance(v, float) else str(v)


def spec_from_dict(d: dict) -> BetaSpec:
    """Validate a parsed ``spec.toml``; unknown keys are an error listing valid ones."""
    if d.get("kind") != KIND:
        raise bad_value("kind", d.get("kind"), repr(KIND), "load it with its family.")
    valid = {"kind", *_SCALARS, *_SECTIONS}
    unknown = sorted(set(d) - valid)
    if unknown:
        raise ConfigError(f"unknown keys {unknown}; valid keys are {sorted(valid)}.")
    parts = {k: _section(k, cls, d.get(k, {})) for k, cls in _SECTIONS.items()}
    scalars = {k: d[k] for k in _SCALARS if k in d}
    return BetaSpec(**scalars, **parts)


def _section(name: str, cls: type, table) -> object:
    if not isinstance(table, dict):
        raise bad_value(name, table, "a TOML table", f"write [{name}] key = value.")
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise ConfigError(f"[{name}]: unknown keys {unknown}; valid keys are {valid}.")
    return cls(**table)


def plant_of(spec: BetaSpec) -> Plant:
    """The plant a spec describes, with its default (unshipped) parameters."""
    return build(jax.random.key(spec.seed), spec.network, spec.params, spec.name)


def _arrays(params, dtype: str):
    """The parameter leaves as NumPy arrays of `dtype` (the checkpoint's tree)."""
    arrays = eqx.filter(params, eqx.is_array)
    return jax.tree.map(lambda x: np.asarray(x, dtype=dtype), arrays)


def write_plant(
    folder, spec: BetaSpec, card: dict, plant: Plant | None = None, overwrite=False
):
    """Write a sealed plant folder (`neuroctl.io.artefacts.write_artefact`).

    Args:
        folder: the folder to create (e.g. ``envs/beta_parkinsonian``).
        spec: the plant's spec (spec.toml).
        card: metrics.json (measurements, how they were made, provenance).
        plant: the plant whose parameters to store (default: `plant_of(spec)`).
        overwrite: replace an existing folder.

    Returns:
        The folder's absolute path.
    """
    from neuroctl.io.artefacts import write_artefact
    from neuroctl.io.checkpoints import tree_checksum

    tree = _arrays((plant or plant_of(spec)).params, spec.dtype)
    meta = {"kind": KIND, "name": spec.name, "tree_checksum": tree_checksum(tree)}
    return write_artefact(
        folder, "plant", spec_to_toml(spec), card, tree, meta, overwrite=overwrite
    )


def from_artefact(art) -> Plant:
    """The plant of a verified artefact folder (`neuroctl.io.artefacts`).

    Rebuilds the network from spec.toml and restores its parameters from the
    checkpoint, whose leaf names, shapes and dtypes must match the spec's network
    (`load_verified` with a `like`). With JAX's x64 off a float64 plant loads as
    float32.
    """
    from neuroctl.io.checkpoints import load_verified

    spec = parse_spec(art.spec, art.folder / "spec.toml")
    plant = plant_of(spec)
    like = _arrays(plant.params, spec.dtype)
    stored, _ = load_verified(art.checkpoint, like=like)
    params = eqx.combine(jax.tree.map(jnp.asarray, stored), plant.params)
    return eqx.tree_at(lambda p: p.params, plant, params)


def parse_spec(raw: dict, path="spec.toml") -> BetaSpec:
    """`spec_from_dict` with every error naming the spec file."""
    try:
        return spec_from_dict(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except (TypeError, ValueError) as err:  # a field of the wrong type
        raise ConfigError(f"{path}: {err}; fix the field named.") from None
