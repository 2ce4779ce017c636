# Exponential integrate-and-fire neuron with an exponentially decaying synaptic current.
# Source: Fourcaud-Trocme et al., J. Neurosci. 23 (2003) 11628; defaults and the
# peak voltage v_peak = vT - deltaT*log(tol/tmem) as eventax 0.1.0 `EIF`.
neuron EIF

parameters:
    tmem = 10.0          # membrane time constant (ms)
    tsyn = 5.0           # synaptic time constant (ms)
    vT = 1.0             # soft threshold
    deltaT = 0.2         # slope factor
    EL = 0.0             # leak reversal potential
    vreset = 0.0         # reset potential
    tol = 0.001          # spike-time tolerance that places the numerical peak
    v_peak = vT - deltaT * log(tol / tmem)
    ic = 0.0 (per_neuron, trainable)   # bias current

state:
    V = EL
    i = 0.0

equations:
    dV/dt = (EL - V + deltaT * exp((V - vT) / deltaT) + i + ic) / tmem
    di/dt = -i / tsyn

threshold: V > v_peak

reset:
    V = vreset

weights:
    w = normal(1.0, 1.0) * 2 / sqrt(fan_in)

on_spike:
    i += w

on_input:
    i += w * value
