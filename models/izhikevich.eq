# Izhikevich (2003) neuron with an exponentially decaying synaptic current.
# Source: E. M. Izhikevich, IEEE Trans. Neural Netw. 14 (2003) 1569; defaults,
# gradient-preserving reset and synapse as eventax 0.1.0 `Izhikevich`.
# Firing patterns (a, b, c, d) from the paper, Fig. 2: regular spiking RS
# (0.02, 0.2, -65, 8), intrinsically bursting IB (0.02, 0.2, -55, 4), chattering CH
# (0.02, 0.2, -50, 2), fast spiking FS (0.1, 0.2, -65, 2), low-threshold spiking LTS
# (0.02, 0.25, -65, 2), thalamo-cortical TC (0.02, 0.25, -65, 0.05), resonator RZ
# (0.1, 0.26, -65, 2): `eqneuron.izhikevich_pattern(name)` returns them.
neuron Izhikevich

parameters:
    a = 0.02
    b = 0.2
    c = -51.0
    d = 2.0
    v_th = 30.0
    tau_syn = 5.0
    ic = 0.0 (per_neuron, trainable)   # bias current

state:
    v = c
    u = b * c
    i = 0.0

equations:
    dv/dt = 0.04*v**2 + 5*v + 140 - u + i + ic
    du/dt = a * (b*v - u)
    di/dt = -i / tau_syn

threshold: v > v_th

reset:
    v = v - (v_th - c)
    u += d

weights:
    w = normal(1.0, 1.0) * 20 / sqrt(fan_in)

on_spike:
    i += w

on_input:
    i += w * value
