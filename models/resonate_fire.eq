# Resonate-and-fire neuron: a damped oscillator z = x + i*y that fires when y crosses a threshold and is then reset.
# Source: E. M. Izhikevich, "Resonate-and-fire neurons", Neural Networks 14 (2001) 883:
# dz/dt = (b + i*omega)*z + I with x current-like and y voltage-like; a spike when y reaches
# a_thresh, then z = z0.  Input pulses kick the current-like x, so two pulses one period apart
# add up (resonance) while half a period apart they cancel.  Time scale chosen here: omega = 0.25
# rad/ms (40 Hz), b = -0.025 /ms (|b|/omega = 0.1), a_thresh = 1.  The reset z0 = i*y_reset lies
# just below the threshold line (y_reset = 0.9): eqneuron re-arms a threshold only once it is below
# it and reports a reset that lands exactly on it (z0 = i) as a failed reset.
neuron ResonateAndFire

parameters:
    b = -0.025           # rate of attraction to rest (1/ms)
    omega = 0.25         # angular frequency of the subthreshold oscillation (rad/ms)
    a_thresh = 1.0       # firing threshold on y
    x_reset = 0.0        # reset value of x
    y_reset = 0.9        # reset value of y
    ic = 0.0 (per_neuron, trainable)   # bias current

state:
    x = 0.0
    y = 0.0

equations:
    dx/dt = b * x - omega * y + ic
    dy/dt = omega * x + b * y

threshold: y > a_thresh

reset:
    x = x_reset
    y = y_reset

weights:
    w = normal(1.0, 1.0) / sqrt(fan_in)

on_spike:
    x += w

on_input:
    x += w * value
