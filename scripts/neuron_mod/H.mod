: Ih (Kole et al. 2006; Hay et al. 2011 Ih), equations as jaxley_mech 0.4.0 H.
: NONSPECIFIC_CURRENT ihcn with reversal ehcn (default -45 mV). No temperature factor.
: efun(x, y) = x/(exp(x/y)-1) with limit y at x == 0; plain exp; m' = (mInf - m)/mTau, cnexp.
NEURON {
    SUFFIX H
    NONSPECIFIC_CURRENT ihcn
    RANGE gbar, g, ehcn
}
UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}
PARAMETER {
    gbar = 0.00001 (S/cm2)
    ehcn = -45.0 (mV)
}
ASSIGNED {
    v (mV)
    ihcn (mA/cm2)
    g (S/cm2)
    mInf
    mTau (ms)
}
STATE { m }
BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gbar*m
    ihcn = g*(v - ehcn)
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
FUNCTION efun(x, y) {
    if (x == 0) {
        efun = y
    } else {
        efun = x/(exp(x/y) - 1)
    }
}
PROCEDURE rates(vm) {
    LOCAL a, b
    a = 0.001*6.43*efun(vm + 154.9, 11.9)
    b = 0.001*193*exp(vm/33.1)
    mInf = a/(a + b)
    mTau = 1/(a + b)
}
UNITSON
