# Quadratic integrate-and-fire neuron in its phase (theta) form, with an exponential synapse.
# Source: Ermentrout & Kopell (1986), theta neuron; phase form phi = arctan(v/pi)/pi + 1/2
# and defaults as eventax 0.1.0 `QIF`.  The voltage is the observable `v`.
neuron QIF

parameters:
    tmem = 10.0          # membrane time constant (ms)
    tsyn = 5.0           # synaptic time constant (ms)
    ic = 0.0 (per_neuron, trainable)   # bias current

state:
    phi = 0.5
    i = 0.0

equations:
    dphi/dt = (cos(pi*phi) * (cos(pi*phi) + sin(pi*phi) / pi) + sin(pi*phi)**2 * (i + ic) / pi**2) / tmem
    di/dt = -i / tsyn
    v = pi * tan(pi * (phi - 0.5))

threshold: phi > 1.0

reset:
    phi = 0.0

weights:
    w = normal(1.0, 1.0) * 4 / sqrt(fan_in)

on_spike:
    i += w

on_input:
    i += w * value
