# Hodgkin-Huxley neuron (Traub-Miles sodium and potassium kinetics) with an exponentially decaying synaptic current; a spike detector without reset.
# Source: Brian2's examples/IF_curve_Hodgkin_Huxley.py (Traub & Miles 1991 kinetics; a 20000 um^2
# patch with Cm = 1 uF/cm^2, gl = 5e-5 S/cm^2, g_na = 100 mS/cm^2, g_kd = 30 mS/cm^2, El = -65 mV,
# EK = -90 mV, ENa = 50 mV, VT = -63 mV; spikes counted at v > -40 mV; m, n, h start at 0).
# The rate functions are written with exprel, as in current Brian2, so that their removable
# singularities (e.g. at v = VT + 13 mV) are harmless.  Units: mV, ms, pF, nS, pA.
neuron HodgkinHuxley

parameters:
    Cm = 200.0           # membrane capacitance (pF)
    gl = 10.0            # leak conductance (nS)
    g_na = 20000.0       # maximal sodium conductance (nS)
    g_kd = 6000.0        # maximal potassium conductance (nS)
    El = -65.0           # leak reversal potential (mV)
    EK = -90.0           # potassium reversal potential (mV)
    ENa = 50.0           # sodium reversal potential (mV)
    VT = -63.0           # offset of the rate functions (mV)
    v_spike = -40.0      # spike detection level (mV)
    tau_syn = 5.0        # synaptic time constant (ms)
    ic = 0.0 (per_neuron, trainable)   # bias current (pA)

state:
    v = El
    m = 0.0
    n = 0.0
    h = 0.0
    i = 0.0

equations:
    alpha_m = 1.28 / exprel((13 - v + VT) / 4)
    beta_m = 1.4 / exprel((v - VT - 40) / 5)
    alpha_n = 0.16 / exprel((15 - v + VT) / 5)
    beta_n = 0.5 * exp((10 - v + VT) / 40)
    alpha_h = 0.128 * exp((17 - v + VT) / 18)
    beta_h = 4 / (1 + exp((40 - v + VT) / 5))
    dv/dt = (gl * (El - v) - g_na * m**3 * h * (v - ENa) - g_kd * n**4 * (v - EK) + i + ic) / Cm
    dm/dt = alpha_m * (1 - m) - beta_m * m
    dn/dt = alpha_n * (1 - n) - beta_n * n
    dh/dt = alpha_h * (1 - h) - beta_h * h
    di/dt = -i / tau_syn

threshold: v > v_spike

weights:
    w = normal(1.0, 1.0) * 2000 / sqrt(fan_in)

on_spike:
    i += w

on_input:
    i += w * value
