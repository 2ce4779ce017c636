# Adaptive leaky integrate-and-fire neuron (ALIF, the LSNN neuron) with an exponentially decaying synaptic current.
# Source: G. Bellec et al., "Long short-term memory and learning-to-learn in networks of spiking
# neurons", NeurIPS 2018: threshold A = b0 + beta*a, reset by subtracting the threshold; the
# adaptation a decays with tau_a and jumps by 1/tau_a at a spike (the continuous-time limit of
# a <- rho*a + (1 - rho)*z with z = 1/dt at a spike).  Defaults of the authors' ALIF cell
# (github.com/IGITUGraz/LSNN-official): tau = 20 ms, thr = 0.01, tau_adaptation = 200 ms, beta = 1.6.
neuron ALIF

parameters:
    tmem = 20.0          # membrane time constant (ms)
    tsyn = 5.0           # synaptic time constant (ms)
    tau_a = 200.0        # adaptation time constant (ms)
    b0 = 0.01            # baseline threshold
    beta = 1.6           # adaptation strength
    ic = 0.0 (per_neuron, trainable)   # bias current

state:
    v = 0.0
    i = 0.0
    a = 0.0

equations:
    dv/dt = (-v + i + ic) / tmem
    di/dt = -i / tsyn
    da/dt = -a / tau_a
    A = b0 + beta * a      # the adaptive threshold

threshold: v > A

reset:
    v -= A
    a += 1 / tau_a

weights:
    w = normal(1.0, 1.0) * 2 * b0 / sqrt(fan_in)

on_spike:
    i += w

on_input:
    i += w * value
