# Morris-Lecar neuron (reduced V, n system) with an exponentially decaying synaptic current; a spike detector without reset.
# Source: C. Morris & H. Lecar, Biophys. J. 35 (1981) 193, eq. 9 and the parameters of its Fig. 9
# as in Brian2's examples/frompapers/Morris_Lecar_1981.py: C = 20 uF, g_L = 2 mS, g_Ca = 4 mS,
# g_K = 8 mS, V_L = -50 mV, V_Ca = 100 mV, V_K = -70 mV, lambda_n_max = 1/15 per ms,
# V_1 = 10 mV, V_2 = 15 mV, V_3 = -1 mV, V_4 = 14.5 mV; V starts at V_L, n at n_inf(V_L).
# Spikes are counted at V > 0 mV.  Units: mV, ms, uF, mS, uA.
neuron MorrisLecar

parameters:
    C = 20.0             # membrane capacitance (uF)
    g_L = 2.0            # leak conductance (mS)
    g_Ca = 4.0           # calcium conductance (mS)
    g_K = 8.0            # potassium conductance (mS)
    V_L = -50.0          # leak reversal potential (mV)
    V_Ca = 100.0         # calcium reversal potential (mV)
    V_K = -70.0          # potassium reversal potential (mV)
    lambda_n_max = 1.0 / 15.0   # maximal rate of n (1/ms)
    V_1 = 10.0           # half-activation of m_inf (mV)
    V_2 = 15.0           # slope of m_inf (mV)
    V_3 = -1.0           # half-activation of n_inf (mV)
    V_4 = 14.5           # slope of n_inf (mV)
    V_spike = 0.0        # spike detection level (mV)
    tau_syn = 5.0        # synaptic time constant (ms)
    ic = 0.0 (per_neuron, trainable)   # bias current (uA)

state:
    V = V_L
    n = 0.5 * (1 + tanh((V_L - V_3) / V_4))
    i = 0.0

equations:
    m_inf = 0.5 * (1 + tanh((V - V_1) / V_2))
    n_inf = 0.5 * (1 + tanh((V - V_3) / V_4))
    lambda_n = lambda_n_max * cosh((V - V_3) / (2 * V_4))
    dV/dt = (-g_L * (V - V_L) - g_Ca * m_inf * (V - V_Ca) - g_K * n * (V - V_K) + i + ic) / C
    dn/dt = lambda_n * (n_inf - n)
    di/dt = -i / tau_syn

threshold: V > V_spike

weights:
    w = normal(1.0, 1.0) * 200 / sqrt(fan_in)

on_spike:
    i += w

on_input:
    i += w * value
