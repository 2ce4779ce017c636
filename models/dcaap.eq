# Two-compartment neuron with the dendritic calcium action potentials (dCaAPs) of human L2/3 pyramidal neurons.
# Source: A. Gidon et al., Science 367 (2020) 83, "Dendritic action potentials and computation in
# human layer 2/3 cortical neurons": a dCaAP's amplitude is maximal for threshold-level stimuli and
# smaller for stronger ones, so that one dendrite computes XOR.  The dCaAP is the authors' model
# (ModelDB 254217, dCaAP.mod by A. Papoutsi and A. Gidon, parameters of its xor.hoc): at v_d > V_th_d
# (-36 mV), outside a 200 ms refractory period, a current w_ca K (A - B) flows into the dendrite,
# A and B growing logistically (tau_A = 3 ms, tau_B = 0.4 ms) from 0.001, B starting sigma_diff =
# 21 ms after A.  Its amplitude K = exp(-(v - V_th_d) / ((V_th_d - E_L) D)), D = 0.3, with v the
# voltage the dendrite is driven to at onset: in continuous time, v - V_th_d = (I_d - I_th) / g_d,
# I_d the current into the dendrite (synaptic, injected and axial) and I_th = g_d (V_th_d - E_L)
# the current that holds it at threshold; K = 1 for a stimulus that just reaches threshold, and for
# a current step I, K = exp(-(I / I_th - 1) / D) as in the paper's measurements.  The soma is a
# leaky integrate-and-fire compartment.  The passive parameters are chosen here, not taken from
# the paper: a threshold-level dCaAP fires the soma, twice that input does not.  As in the
# authors' model the dCaAP is a current source, so v_d overshoots what a real dendrite reaches.
# Units: mV, ms, nF, uS, nA.
neuron DCaAP

parameters:
    E_L = -75.0          # resting potential (mV)
    C_s = 0.05           # somatic capacitance (nF)
    g_s = 0.01           # somatic leak conductance (uS)
    C_d = 0.05           # dendritic capacitance (nF)
    g_d = 0.003          # dendritic leak conductance (uS)
    g_c = 0.0025         # soma-dendrite coupling conductance (uS)
    V_th = -55.0         # somatic spike threshold (mV)
    V_reset = -75.0      # somatic reset potential (mV)
    tau_syn = 5.0        # synaptic time constant (ms)
    V_th_d = -36.0       # dCaAP threshold (mV)
    D = 0.3              # decay of the dCaAP amplitude with the stimulus
    tau_A = 3.0          # activation of the dCaAP current (ms)
    tau_B = 0.4          # inactivation of the dCaAP current (ms)
    sigma_diff = 21.0    # delay of the inactivation (ms)
    t_ref_d = 200.0      # dCaAP refractory period (ms)
    w_ca = 3.0 (per_neuron, trainable)   # dCaAP current (nA)
    ic = 0.0 (per_neuron, trainable)     # current injected into the dendrite (nA)

state:
    v_s = E_L
    v_d = E_L
    K = 0.0
    t_since = t_ref_d    # time since the last dCaAP (ms)

equations:
    I_d = i_syn + ic + g_c * (v_s - v_d)
    I_ca = w_ca * K * (A - B)
    dv_d/dt = (g_d * (E_L - v_d) + I_d + I_ca) / C_d
    dv_s/dt = (g_s * (E_L - v_s) + g_c * (v_d - v_s)) / C_s
    di_syn/dt = -i_syn / tau_syn
    dA/dt = A * (1 - A) / tau_A
    dB/dt = B * (1 - B) / tau_B
    dt_since/dt = 1

threshold: v_s > V_th

reset:
    v_s = V_reset

event dcaap: v_d > V_th_d and t_since > t_ref_d
    A = 0.001
    B = 0
    K = min(1, exp(-(I_d / (g_d * (V_th_d - E_L)) - 1) / D))
    t_since = 0

event dcaap_inactivation: t_since > sigma_diff
    B = 0.001

weights:
    w = uniform(0, 0.2) / sqrt(fan_in)   # synaptic weight (nA)

on_spike:
    i_syn += w

on_input:
    i_syn += w * value
