# Leaky integrate-and-fire neuron with exponentially decaying excitatory and inhibitory conductances (COBA).
# Source: Brette et al., J. Comput. Neurosci. 23 (2007) 349, benchmark 1 (after Vogels & Abbott 2005),
# as in Brian's COBA example: taum = 20 ms, taue = 5 ms, taui = 10 ms, El = Vr = -60 mV,
# Vt = -50 mV, Ee = 0 mV, Ei = -80 mV, refractory period 5 ms (v held at Vr, the conductances
# decaying), conductances in units of the leak conductance (benchmark weights 0.6 excitatory,
# 6.7 inhibitory).  A positive weight opens the excitatory conductance, a negative one the
# inhibitory conductance.
neuron LIF_COBA

parameters:
    taum = 20.0          # membrane time constant (ms)
    taue = 5.0           # excitatory conductance time constant (ms)
    taui = 10.0          # inhibitory conductance time constant (ms)
    El = -60.0           # leak reversal potential (mV)
    Vt = -50.0           # firing threshold (mV)
    Vr = -60.0           # reset potential (mV)
    Ee = 0.0             # excitatory reversal potential (mV)
    Ei = -80.0           # inhibitory reversal potential (mV)
    tau_ref = 5.0        # refractory period (ms)
    ic = 0.0 (per_neuron, trainable)   # bias drive R*I (mV)

state:
    v = El
    ge = 0.0
    gi = 0.0

equations:
    dv/dt = (El - v + ge * (Ee - v) + gi * (Ei - v) + ic) / taum (unless refractory)
    dge/dt = -ge / taue
    dgi/dt = -gi / taui

threshold: v > Vt

reset:
    v = Vr

refractory: tau_ref

weights:
    w = normal(0.5, 1.0) / sqrt(fan_in)

on_spike:
    ge += relu(w)
    gi += relu(-w)

on_input:
    ge += relu(w) * value
    gi += relu(-w) * value
