# Event-based gated recurrent unit (EGRU) in continuous time.
# Source: Subramoney et al., "Efficient recurrent architectures through activity
# sparsity and sparse back-propagation through time", ICLR 2023; continuous-time
# form, defaults and the target-gated modulation jump as eventax 0.1.0 `EGRU`.
# The jump equations of the eventax documentation gate a_z by the firing unit's
# reset gate and scale every jump by its output c instead: that is `egru_pregated`.
neuron EGRU

parameters:
    tsyn = 5.0           # time constant of the gate pre-activations (ms)
    tmem = 20.0          # time constant of the cell state (ms)
    thresh = 0.5         # firing threshold on the cell state
    b_u = -2.0 (per_neuron, trainable)   # attractor of the update pre-activation
    b_r = 1.0 (per_neuron, trainable)    # attractor of the reset pre-activation
    b_z = 0.0 (per_neuron, trainable)    # attractor of the modulation pre-activation

state:
    c = 0.0
    a_u = 0.0
    a_r = 0.0
    a_z = 0.0

equations:
    dc/dt = sigmoid(a_u) * (tanh(a_z) - c) / tmem
    da_u/dt = (b_u - a_u) / tsyn
    da_r/dt = (b_r - a_r) / tsyn
    da_z/dt = (b_z - a_z) / tsyn

threshold: c > thresh

reset:
    c -= thresh

weights:
    w_u = normal(0, 1)
    w_r = normal(0, 1)
    w_z = normal(0, 1)

on_spike:
    a_u += w_u
    a_r += w_r
    a_z += w_z * sigmoid(a_r)

on_input:
    a_u += w_u * value
    a_r += w_r * value
    a_z += w_z * sigmoid(a_r) * value
