: SK-type Ca-activated K current (Kohler et al. 1996; Hay et al. 2011 SK_E2),
: equations as jaxley_mech 0.4.0 SKE2: zInf = 1/(1 + (0.00043/ca)^4.8),
: ca = cai + 1e-7 if cai < 1e-7 else cai; zTau = 1 ms; z' = (zInf - z)/zTau, METHOD cnexp;
: initial z = zInf(cai0). i = gbar*z*(v - ek).
: Ordering: this file's mechanism is registered AFTER CaPump (see make_neuron_references.py),
: so in NEURON's fixed step its state update reads the cai already advanced by CaPump.
NEURON {
    SUFFIX SKE2
    USEION k READ ek WRITE ik
    USEION ca READ cai
    RANGE gbar, g
}
UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
    (mM) = (milli/liter)
}
PARAMETER {
    gbar = 0.000001 (S/cm2)
    zTau = 1 (ms)
}
ASSIGNED {
    v (mV)
    ek (mV)
    cai (mM)
    ik (mA/cm2)
    g (S/cm2)
    zInf
}
STATE { z }
BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gbar*z
    ik = g*(v - ek)
}
DERIVATIVE states {
    rates(cai)
    z' = (zInf - z)/zTau
}
INITIAL {
    rates(cai)
    z = zInf
}
UNITSOFF
PROCEDURE rates(c) {
    LOCAL ca
    if (c < 1e-7) {
        ca = c + 1e-7
    } else {
        ca = c
    }
    zInf = 1/(1 + pow(0.00043/ca, 4.8))
}
UNITSON
