: Kv3.1 (Rettig et al. 1992; Hay et al. 2011 SKv3_1), equations as jaxley_mech 0.4.0 SKv3_1.
: Plain exp (no clipping); gate m' = (mInf - m)/mTau, METHOD cnexp; initial m = mInf(v_init).
NEURON {
    SUFFIX SKv3_1
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
    mInf = 1/(1 + exp((vm - 18.7)/(-9.7)))
    mTau = 0.2*20.0/(1 + exp((vm + 46.56)/(-44.14)))
}
UNITSON
