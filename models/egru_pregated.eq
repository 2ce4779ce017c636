# Event-based gated recurrent unit (EGRU) in continuous time, pre-gated: a spike's jumps are scaled by the firing unit's output c and its reset gate.
# Model of Subramoney et al., "Efficient recurrent architectures through activity sparsity
# and sparse back-propagation through time", ICLR 2023 (arXiv:2206.06178), in the
# continuous-time form written out in the eventax documentation: repository
# Efficient-Scalable-Machine-Learning/eventax, docs-site/docs/neuron_models/egru.md, "Free
# Dynamics" and "Jumps at Transition".  A spike of unit n at t_s changes each target m by
# a_u += W_u[n, m]*c_n(t_s-), a_r += W_r[n, m]*c_n(t_s-), a_z += W_z[n, m]*r_n(t_s-)*c_n(t_s-),
# with r_n = sigmoid(a_r) of the firing unit (as a GRU's reset gate multiplies the previous
# output before the recurrent weights); c_n(t_s-) is the threshold at a crossing.  The reset
# c -= thresh equals that page's c = 0 at a crossing and keeps its gradient.  Input spikes,
# which carry no c or r, act ungated.  eventax's code (`EGRU.input_spike`) gates a_z by the
# target's reset gate and scales no jump by c: that is `egru`.  Defaults as `egru`.
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
