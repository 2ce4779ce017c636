# Leaky integrate-and-fire neuron with an exponentially decaying synaptic current.
# Source: Gerstner et al., "Neuronal Dynamics" (2014), ch. 1.3 and 5; state
# layout, equations and gradient-preserving reset as eventax 0.1.0 `LIF`.
neuron LIF

parameters:
    tmem = 10.0          # membrane time constant (ms)
    tsyn = 5.0           # synaptic time constant (ms)
    thresh = 1.0         # firing threshold
    vreset = 0.0         # reset potential
    ic = 0.0 (per_neuron, trainable)   # bias current

state:
    v = 0.0
    i = 0.0

equations:
    dv/dt = (-v + i + ic) / tmem
    di/dt = -i / tsyn

threshold: v > thresh

reset:
    v -= thresh - vreset

weights:
    w = normal(1.0, 1.0) * 2 / sqrt(fan_in)

on_spike:
    i += w

on_input:
    i += w * value
