"""The Jaxley paper's evidence-integration RNN: structure only (no task, no training).

20 recurrent cells (cells 0–9 inhibitory, 10–19 excitatory) of three one-compartment
branches — apical (root, 0), soma (1), basal (2) — with the Hay et al. (2011)
channel set, plus 2 leak-only readout cells (20, 21). Graded synapses run from the
soma of cell i to the apical branch of cell j with probability `p_connect`
(no autapses), and from every recurrent soma to both readouts. Stimulus sites: the
basal compartment of each recurrent cell; recordings: the two readouts, then the 20
somata. All numbers are from ../shared/FACTS.md (Jaxley paper, fig. 5).
"""

from dataclasses import dataclass

import numpy as np

from neuroctl import units
from neuroctl.biophysics import (
    SKE2,
    CaHVA,
    CalciumDynamics,
    CaLVA,
    Cell,
    Connection,
    GradedSynapse,
    H,
    Leak,
    M,
    Morphology,
    NaTs2T,
    Network,
    Site,
    SKv3_1,
)

S = units.S_PER_CM2  # S/cm² → mS/cm²
APICAL, SOMA, BASAL = 0, 1, 2


@dataclass(frozen=True)
class EvidenceNetConfig:
    """Structural constants of the network (defaults = the paper's)."""

    n_inhibitory: int = 10
    n_excitatory: int = 10
    p_connect: float = 0.2  # recurrent connection probability [1]
    seed: int = 3  # connectivity seed
    e_inhibitory: float = -75.0  # [mV]
    e_excitatory: float = 0.0  # [mV]
    g_recurrent: float = 0.001  # initial synaptic conductance [µS]
    g_readout: float = 0.001  # initial readout conductance [µS]
    k_minus_recurrent: float = 1.0  # [1/ms]
    k_minus_readout: float = 0.025  # [1/ms]
    apical_h_distance: float = 0.0  # distance used in the apical H gradient [µm]

    @property
    def n_cells(self) -> int:
        return self.n_inhibitory + self.n_excitatory


def recurrent_cell(cfg: EvidenceNetConfig) -> Cell:
    """One recurrent cell: apical (cm 2), soma and basal branches, Hay channels."""
    morph = Morphology.from_parents(
        [-1, APICAL, APICAL],
        length=10.0,
        radius=1.0,
        axial_resistivity=100.0,
        capacitance=[2.0, 1.0, 1.0],
    )
    g_h_apical = (-0.8696 + 2.087 * np.exp(cfg.apical_h_distance * 0.0031)) * 8e-5
    return (
        Cell(morph)
        .insert(NaTs2T(g=0.026145 * S), APICAL)
        .insert(SKv3_1(g=0.004226 * S), APICAL)
        .insert(M(g=0.000143 * S), APICAL)
        .insert(H(g=float(g_h_apical) * S), APICAL)
        .insert(CaHVA(g=0.000994 * S), SOMA)
        .insert(CaLVA(g=0.000333 * S), SOMA)
        .insert(SKv3_1(g=0.303472 * S), SOMA)
        .insert(SKE2(g=0.008407 * S), SOMA)
        .insert(NaTs2T(g=0.983955 * S), SOMA)
        .insert(CalciumDynamics(gamma=0.000609, decay=210.485), SOMA)
        .insert(H(g=8e-5 * S), BASAL)
        .insert(Leak(g=3e-5 * S, e=-75.0))
    )


def readout_cell() -> Cell:
    """A leak-only point cell (τ ≈ 33 µs): a fast weighted average of its inputs."""
    morph = Morphology.single_compartment(length=10.0, radius=1.0)
    return Cell(morph).insert(Leak(g=3e-2 * S, e=-75.0))


def recurrent_pairs(cfg: EvidenceNetConfig) -> list[tuple[int, int]]:
    """(pre, post) recurrent pairs: Bernoulli(`p_connect`) per ordered pair, no self.

    Drawn as ``default_rng(seed).binomial(1, p, (n, n))``; seed 3 gives 69 pairs,
    the paper's count.
    """
    rng = np.random.default_rng(cfg.seed)
    mask = rng.binomial(1, cfg.p_connect, size=(cfg.n_cells, cfg.n_cells)).astype(bool)
    np.fill_diagonal(mask, False)
    pre, post = np.nonzero(mask)
    return [(int(i), int(j)) for i, j in zip(pre, post, strict=True)]


def build_network(
    cfg: EvidenceNetConfig = EvidenceNetConfig(),
    pairs: list[tuple[int, int]] | None = None,
) -> Network:
    """Compile the network; `pairs` overrides the drawn recurrent connectivity."""
    n = cfg.n_cells
    pairs = recurrent_pairs(cfg) if pairs is None else pairs
    cells = [recurrent_cell(cfg)] * n + [readout_cell()] * 2

    def e_of(i: int) -> float:
        return cfg.e_inhibitory if i < cfg.n_inhibitory else cfg.e_excitatory

    cons = [
        Connection(
            GradedSynapse(
                g=cfg.g_recurrent, e_syn=e_of(i), k_minus=cfg.k_minus_recurrent
            ),
            Site(i, SOMA),
            Site(j, APICAL),
        )
        for i, j in pairs
    ] + [
        Connection(
            GradedSynapse(g=cfg.g_readout, e_syn=e_of(i), k_minus=cfg.k_minus_readout),
            Site(i, SOMA),
            Site(r),
        )
        for i in range(n)
        for r in (n, n + 1)
    ]
    return Network.build(
        cells,
        cons,
        stimuli=[Site(i, BASAL) for i in range(n)],
        recordings=[Site(n), Site(n + 1)] + [Site(i, SOMA) for i in range(n)],
    )
