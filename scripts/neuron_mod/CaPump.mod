: Intracellular Ca dynamics (Destexhe et al. 1994; Hay et al. 2011 CaDynamics_E2),
: as jaxley_mech 0.4.0 CaPump but with NEURON's FARADAY (see faraday()):
:   cai' = -10000*ica*gamma/(2*FARADAY*depth) - (cai - minCai)/decay, METHOD cnexp
: (ica in mA/cm2, depth in um, cai in mM). No INITIAL block: cai starts at cai0_ca_ion.
: Registered before SKE2 (file name order), so SKE2 sees the updated cai in the same step.
NEURON {
    SUFFIX CaPump
    USEION ca READ ica WRITE cai
    RANGE decay, gamma, minCai, depth
}
UNITS {
    (mV) = (millivolt)
    (mA) = (milliamp)
    FARADAY = (faraday) (coulombs)
    (molar) = (1/liter)
    (mM) = (millimolar)
    (um) = (micron)
}
PARAMETER {
    gamma = 0.05
    decay = 80 (ms)
    depth = 0.1 (um)
    minCai = 1e-4 (mM)
}
ASSIGNED {
    ica (mA/cm2)
}
STATE {
    cai (mM)
}
BREAKPOINT {
    SOLVE states METHOD cnexp
}
DERIVATIVE states {
    cai' = -(10000)*(ica*gamma/(2*FARADAY*depth)) - (cai - minCai)/decay
}
FUNCTION faraday() {
    faraday = FARADAY
}
