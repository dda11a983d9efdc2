: Graded (non-spiking) synapse, Abbott & Marder 1998, as in the Jaxley paper's RNN:
:   s_inf = 1/(1 + exp((v_th - vpre)/delta)), tau_s = (1 - s_inf)/k_minus
:   s' = (s_inf - s)/tau_s (METHOD cnexp), initial s = s_inf(vpre)
:   i = g*s*(v - e_syn)  [nA, g in uS], v = postsynaptic membrane potential
: 1 - s_inf is written as exp(x)/(1 + exp(x)), x = (v_th - vpre)/delta.
: vpre is a POINTER to the presynaptic voltage (set with h.setpointer).
NEURON {
    POINT_PROCESS GradedSyn
    POINTER vpre
    NONSPECIFIC_CURRENT i
    RANGE g, e_syn, v_th, delta, k_minus, s_inf, tau_s
}
UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}
PARAMETER {
    g = 0 (uS)
    e_syn = 0 (mV)
    v_th = -35 (mV)
    delta = 10 (mV)
    k_minus = 1 (/ms)
}
ASSIGNED {
    v (mV)
    vpre (mV)
    i (nA)
    s_inf
    tau_s (ms)
}
STATE { s }
INITIAL {
    rates(vpre)
    s = s_inf
}
BREAKPOINT {
    SOLVE states METHOD cnexp
    i = g*s*(v - e_syn)
}
DERIVATIVE states {
    rates(vpre)
    s' = (s_inf - s)/tau_s
}
UNITSOFF
PROCEDURE rates(vp) {
    LOCAL x
    x = (v_th - vp)/delta
    s_inf = 1/(1 + exp(x))
    tau_s = (exp(x)/(1 + exp(x)))/k_minus
}
UNITSON
