: High-voltage-activated Ca current (Reuveni et al. 1993; Hay et al. 2011 Ca_HVA),
: equations as jaxley_mech 0.4.0 CaHVA: i = gbar*m^2*h*(v - eca), no temperature factor.
: Gates: x_inf = a/(a+b), tau = 1/(a+b), x' = (x_inf - x)/tau, METHOD cnexp.
: efun(x, y) = x/(exp(x/y)-1) with limit y at x == 0; plain exp.
NEURON {
    SUFFIX CaHVA
    USEION ca READ eca WRITE ica
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
    eca (mV)
    ica (mA/cm2)
    g (S/cm2)
    mInf
    mTau (ms)
    hInf
    hTau (ms)
}
STATE { m h }
BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gbar*m*m*h
    ica = g*(v - eca)
}
DERIVATIVE states {
    rates(v)
    m' = (mInf - m)/mTau
    h' = (hInf - h)/hTau
}
INITIAL {
    rates(v)
    m = mInf
    h = hInf
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
    a = 0.055*efun(-27 - vm, 3.8)
    b = 0.94*exp((-75 - vm)/17)
    mInf = a/(a + b)
    mTau = 1/(a + b)
    a = 0.000457*exp((-13 - vm)/50)
    b = 0.0065/(exp((-vm - 15)/28) + 1)
    hInf = a/(a + b)
    hTau = 1/(a + b)
}
UNITSON
