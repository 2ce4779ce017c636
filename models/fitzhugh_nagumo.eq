# FitzHugh-Nagumo model, a two-variable reduction of excitability; a spike detector without reset.
# Source: R. FitzHugh, Biophys. J. 1 (1961) 445; J. Nagumo, S. Arimoto & S. Yoshizawa,
# Proc. IRE 50 (1962) 2061.  dv/dt = v - v^3/3 - w + I, tau dw/dt = v + a - b*w with FitzHugh's
# a = 0.7, b = 0.8, tau = 12.5 (dimensionless time, read as ms); starts near the resting point
# for I = 0; spikes counted at v > 1.  Periodic firing for I between about 0.33 and 1.42.
# Input spikes kick v.
neuron FitzHughNagumo

parameters:
    a = 0.7
    b = 0.8
    tau = 12.5           # recovery time constant
    v_spike = 1.0        # spike detection level
    ic = 0.0 (per_neuron, trainable)   # bias current I

state:
    v = -1.2
    w = -0.625

equations:
    dv/dt = v - v**3 / 3 - w + ic
    dw/dt = (v + a - b * w) / tau

threshold: v > v_spike

weights:
    syn = normal(1.0, 1.0) / sqrt(fan_in)

on_spike:
    v += syn

on_input:
    v += syn * value
