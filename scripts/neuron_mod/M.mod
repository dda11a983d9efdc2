: M current (Adams et al. 1982; Hay et al. 2011 Im), equations as jaxley_mech 0.4.0 M.
: qt = 2.3^((34-21)/10) hard-coded; plain exp; m' = (mInf - m)/mTau, METHOD cnexp.
NEURON {
    SUFFIX M
    USEION k READ ek WRITE ik
    RANGE gbar, g
}
UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}
PARAMETER {
    gbar = 0.00001 (S/cm2)
}
ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    g (S/cm2)
    mInf
    mTau (ms)
}
STATE { m }
BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gbar*m
    ik = g*(v - ek)
}
DERIVATIVE states {
    rates(v)
    m' = (mInf - m)/mTau
}
INITIAL {
    rates(v)
    m = mInf
}
UNITSOFF
PROCEDURE rates(vm) {
    LOCAL qt, a, b
    qt = pow(2.3, (34 - 21)/10)
    a = 3.3e-3*exp(2.5*0.04*(vm + 35))
    b = 3.3e-3*exp(-2.5*0.04*(vm + 35))
    mInf = a/(a + b)
    mTau = (1/(a + b))/qt
}
UNITSON
