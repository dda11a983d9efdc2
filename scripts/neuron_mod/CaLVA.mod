: Low-voltage-activated Ca current (Avery & Johnston 1996; Hay et al. 2011 Ca_LVAst),
: equations as jaxley_mech 0.4.0 CaLVA: voltage shifted by +10 mV, qt = 2.3^((34-21)/10)
: hard-coded; i = gbar*m^2*h*(v - eca); plain exp; x' = (x_inf - x)/tau, METHOD cnexp.
NEURON {
    SUFFIX CaLVA
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
PROCEDURE rates(vm) {
    LOCAL qt, vs
    qt = pow(2.3, (34 - 21)/10)
    vs = vm + 10
    mInf = 1.0/(1 + exp((vs + 30)/(-6)))
    mTau = (5.0 + 20.0/(1 + exp((vs + 25)/5)))/qt
    hInf = 1.0/(1 + exp((vs + 80)/6.4))
    hTau = (20.0 + 50.0/(1 + exp((vs + 40)/7)))/qt
}
UNITSON
