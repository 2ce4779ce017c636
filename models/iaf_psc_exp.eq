# NEST's iaf_psc_exp: leaky integrate-and-fire neuron with an exponentially decaying synaptic current and an absolute refractory period.
# Source: NEST Simulator model `iaf_psc_exp` (Tsodyks et al. 2000; exact integration after
# Rotter & Diesmann 1999), with NEST's default parameters: C_m = 250 pF, tau_m = 10 ms,
# E_L = -70 mV, V_th = -55 mV, V_reset = -70 mV, t_ref = 2 ms, tau_syn = 2 ms, I_e = 0 pA;
# V_m is clamped at V_reset for t_ref after a spike while the synaptic current keeps decaying.
# NEST has one excitatory and one inhibitory current, chosen by the sign of the weight; with
# their default, equal time constants (tau_syn_ex = tau_syn_in = 2 ms) they add up to the one
# current I_syn here.  Units: mV, ms, pF, pA.
neuron iaf_psc_exp

parameters:
    C_m = 250.0          # membrane capacitance (pF)
    tau_m = 10.0         # membrane time constant (ms)
    tau_syn = 2.0        # synaptic time constant (ms)
    t_ref = 2.0          # refractory period (ms)
    E_L = -70.0          # resting potential (mV)
    V_th = -55.0         # spike threshold (mV)
    V_reset = -70.0      # reset potential (mV)
    I_e = 0.0 (per_neuron, trainable)   # constant input current (pA)

state:
    V_m = E_L
    I_syn = 0.0

equations:
    dV_m/dt = -(V_m - E_L) / tau_m + (I_syn + I_e) / C_m (unless refractory)
    dI_syn/dt = -I_syn / tau_syn

threshold: V_m >= V_th

reset:
    V_m = V_reset

refractory: t_ref

weights:
    w = normal(1.0, 1.0) * 1000 / sqrt(fan_in)   # synaptic weight (pA)

on_spike:
    I_syn += w

on_input:
    I_syn += w * value
