"""The one unit system of neuroctl, and the conversion factors between its units.

Every physical quantity in neuroctl is expressed in these units; every field and
argument says which one it uses in a ``# [unit]`` comment or its docstring.

==================  =============  ==========================================
quantity            unit           note
==================  =============  ==========================================
time                ms
voltage             mV
length, radius      µm
axial resistivity   Ω·cm           NEURON's ``Ra``
capacitance         µF/cm²         specific membrane capacitance
channel density     mS/cm²         NEURON's S/cm² × 1000
current density     µA/cm²         mS/cm² · mV = µA/cm²
point current       nA             electrodes, synaptic currents
point conductance   µS             synapses, axial couplings; µS · mV = nA
concentration       mM
temperature         °C (K where stated)
==================  =============  ==========================================

Handy identities: µA/cm² / (µF/cm²) = mV/ms, so ``dV/dt = i / c_m`` needs no factor;
µF/cm² / (mS/cm²) = ms.
"""

import math

#: area of a cylinder side [µm²] times a density [mS/cm²] gives this many µS:
#: 1 mS/cm² · 1 µm² = 1e-3 S · 1e-8 = 1e-11 S = 1e-5 µS.
MS_PER_CM2_UM2_TO_US = 1e-5
#: 1 µF/cm² · 1 µm² = 1e-14 F = 1e-5 µS·ms (capacitance in µS·ms, so C/dt is in µS).
UF_PER_CM2_UM2_TO_US_MS = 1e-5
#: a point current [nA] spread over an area [µm²] is this many µA/cm² per nA/µm²:
#: 1 nA / 1 µm² = 1e-3 µA / 1e-8 cm² = 1e5 µA/cm².
NA_PER_UM2_TO_UA_PER_CM2 = 1e5
#: S/cm² (NEURON's density unit) in mS/cm².
S_PER_CM2 = 1e3
#: Ω·cm · µm / µm² = 1e4 Ω; in MΩ that is 1e-2. Axial resistance [MΩ] of a cylinder of
#: length L [µm], radius r [µm], resistivity Ra [Ω·cm] is Ra · L / (π r²) · 1e-2.
OHM_CM_PER_UM_TO_MOHM = 1e-2

FARADAY = 96485.33212331001  # [C/mol], CODATA 2018 (as NEURON 9 uses)
GAS_CONSTANT = 8.31446261815324  # [J/(mol·K)], CODATA 2018 (as NEURON 9 uses)
ZERO_CELSIUS = 273.15  # [K]


def cylinder_area(length: float, radius: float) -> float:
    """Lateral area [µm²] of a cylinder of `length` [µm] and `radius` [µm]."""
    return 2.0 * math.pi * radius * length


def half_cylinder_resistance(length: float, radius: float, ra: float) -> float:
    """Axial resistance [MΩ] of half a cylinder (centre to end), as NEURON computes it.

    Args:
        length: full cylinder (segment) length [µm].
        radius: radius [µm].
        ra: axial resistivity [Ω·cm].
    """
    return ra * (0.5 * length) / (math.pi * radius**2) * OHM_CM_PER_UM_TO_MOHM
