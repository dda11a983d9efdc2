: Transient Na current (Colbert & Pan 2002; Hay et al. 2011 NaTs2_t), equations exactly as
: jaxley_mech 0.4.0 channels/l5pc.py NaTs2T, with:
:  - qt = 2.3^((34-21)/10) hard-coded (independent of celsius), as in jaxley_mech
:  - efun(x, y) = x/(exp(x/y)-1), limit y at x == 0 exactly; no clipping of exp
:  - gates: x' = (x_inf - x)/tau, METHOD cnexp; initial x = x_inf(v_init)
NEURON {
    SUFFIX NaTs2T
    USEION na READ ena WRITE ina
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
    ena (mV)
    ina (mA/cm2)
    g (S/cm2)
    mInf
    mTau (ms)
    hInf
    hTau (ms)
}
STATE { m h }
BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gbar*m*m*m*h
    ina = g*(v - ena)
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
    LOCAL qt, a, b
    qt = pow(2.3, (34 - 21)/10)
    a = 0.182*efun(-(vm + 32), 6)
    b = 0.124*efun(vm + 32, 6)
    mInf = a/(a + b)
    mTau = 1/(a + b)/qt
    a = 0.015*efun(vm + 60, 6)
    b = 0.015*efun(-(vm + 60), 6)
    hInf = a/(a + b)
    hTau = 1/(a + b)/qt
}
UNITSON
