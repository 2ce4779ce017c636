# Adaptive exponential integrate-and-fire neuron (AdEx) with an exponentially decaying synaptic current.
# Source: R. Brette & W. Gerstner, J. Neurophysiol. 94 (2005) 3637, the paper's regular-spiking
# cell: C = 281 pF, gL = 30 nS, EL = -70.6 mV, VT = -50.4 mV, DeltaT = 2 mV, tau_w = 144 ms,
# a = 4 nS, b = 0.0805 nA, reset to EL; the spike is cut at V_peak = VT + 5*DeltaT as in Brian2's
# examples/frompapers/Brette_Gerstner_2005.py.  Units: mV, ms, pF, nS, pA.
neuron AdEx

parameters:
    C = 281.0            # membrane capacitance (pF)
    gL = 30.0            # leak conductance (nS)
    EL = -70.6           # leak reversal potential (mV)
    VT = -50.4           # threshold slope point (mV)
    DeltaT = 2.0         # slope factor (mV)
    tau_w = 144.0        # adaptation time constant (ms)
    a = 4.0              # subthreshold adaptation (nS)
    b = 80.5             # spike-triggered adaptation (pA)
    V_reset = EL         # reset potential (mV)
    V_peak = VT + 5 * DeltaT   # spike cut-off (mV)
    tau_syn = 5.0        # synaptic time constant (ms)
    ic = 0.0 (per_neuron, trainable)   # bias current (pA)

state:
    V = EL
    w = 0.0
    i = 0.0

equations:
    dV/dt = (gL * (EL - V) + gL * DeltaT * exp((V - VT) / DeltaT) - w + i + ic) / C
    dw/dt = (a * (V - EL) - w) / tau_w
    di/dt = -i / tau_syn

threshold: V > V_peak

reset:
    V = V_reset
    w += b

weights:
    w_syn = normal(1.0, 1.0) * 1000 / sqrt(fan_in)

on_spike:
    i += w_syn

on_input:
    i += w_syn * value
