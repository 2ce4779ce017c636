# Event-based gated recurrent unit (EGRU) in continuous time, pre-gated: a spike's jumps are scaled by the firing unit's output c and its reset gate.
# Source: Subramoney et al., "Efficient recurrent architectures through activity sparsity and
# sparse back-propagation through time", ICLR 2023, eq. S10 (the continuous-time EGRU of the
# supplement; also the eventax documentation): a spike of unit n at t_s changes its targets m by
# a_u += W_u[n, m]*c_n(t_s-), a_r += W_r[n, m]*c_n(t_s-), a_z += W_z[n, m]*r_n(t_s-)*c_n(t_s-)
# with r = sigmoid(a_r) of the firing unit; c_n(t_s-) is the threshold at a crossing.  The
# reset c -= thresh equals the paper's c = 0 at a crossing and keeps its gradient.  Input
# spikes act ungated.  Defaults as `egru`.
neuron EGRUPreGated

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
    a_u += w_u * c_pre
    a_r += w_r * c_pre
    a_z += w_z * sigmoid(a_r_pre) * c_pre

on_input:
    a_u += w_u * value
    a_r += w_r * value
    a_z += w_z * value
