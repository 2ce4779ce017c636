"""eqneuron vs Brian2 on Brian2's COBA example (COBAHH.py: Brette et al. 2007, benchmark 3), with a 0.1 ms delay.

4000 Hodgkin–Huxley neurons (Traub–Miles kinetics, 80 % excitatory), 2 %
random connectivity, exponentially decaying excitatory and inhibitory
conductances (reversal potentials 0 and -80 mV), a 3 ms refractory period
(after which the spike detector at v > -20 mV can fire again; HH has no
reset) and, as in `benchmarks.cuba`, every synapse delayed by 0.1 ms in both
simulators, with the same connectivity and initial state (v, ge, gi drawn
as in the example; m, n, h start at 0 in both).  Brian2 integrates with the
example's `exponential_euler` at dt = 0.1 and 0.01 ms; eqneuron runs the
network as a graph in windows of the 0.1 ms delay, each neuron on its own
clock with adaptive Tsit5 steps (float32, default tolerances) and spike
times located on its dense output.  Chaotic network: population rate and
mean CV of the inter-spike intervals are compared.

Run: python -m benchmarks.coba [--neurons 4000] [--duration 1000] [--brian cython,cpp_standalone] [--repeats 3]
"""

from __future__ import annotations

import argparse

import numpy as np

from . import cuba
from .cuba import (
    BRIAN_HEAD,
    BRIAN_RUN,
    compare,
    connection_probability,
    network,
    run_brian_script,
    time_network,
)

MODEL = """
neuron COBAHH
parameters:
    Cm = 200.0       # pF: 20000 um^2 at 1 uF/cm^2
    gl = 10.0        # nS: 5e-5 S/cm^2
    g_na = 20000.0   # nS: 100 mS/cm^2
    g_kd = 6000.0    # nS: 30 mS/cm^2
    El = -60.0
    EK = -90.0
    ENa = 50.0
    VT = -63.0
    Ee = 0.0
    Ei = -80.0
    taue = 5.0
    taui = 10.0
    v0 = -60.0 (per_neuron)
    ge0 = 40.0 (per_neuron)
    gi0 = 200.0 (per_neuron)
state:
    v = v0
    m = 0.0
    n = 0.0
    h = 0.0
    ge = ge0
    gi = gi0
equations:
    alpha_m = 1.28 / exprel((13 - v + VT) / 4)
    beta_m = 1.4 / exprel((v - VT - 40) / 5)
    alpha_n = 0.16 / exprel((15 - v + VT) / 5)
    beta_n = 0.5 * exp((10 - v + VT) / 40)
    alpha_h = 0.128 * exp((17 - v + VT) / 18)
    beta_h = 4 / (1 + exp((40 - v + VT) / 5))
    dv/dt = (gl * (El - v) + ge * (Ee - v) + gi * (Ei - v) - g_na * m**3 * h * (v - ENa) - g_kd * n**4 * (v - EK)) / Cm
    dm/dt = alpha_m * (1 - m) - beta_m * m
    dn/dt = alpha_n * (1 - n) - beta_n * n
    dh/dt = alpha_h * (1 - h) - beta_h * h
    dge/dt = -ge / taue
    dgi/dt = -gi / taui
threshold: v > -20
refractory: 3.0
weights:
    w
on_input exc:
    ge += w
on_input inh:
    gi += w
"""

WE, WI = 6.0, 67.0  # nS, as in Brian2's example

# the example's model as it is written there (rate functions with their removable singularities)
BRIAN_SCRIPT = BRIAN_HEAD + r"""
area = 20000*umetre**2
Cm = (1*ufarad*cm**-2) * area
gl = (5e-5*siemens*cm**-2) * area
El, EK, ENa = -60*mV, -90*mV, 50*mV
g_na = (100*msiemens*cm**-2) * area
g_kd = (30*msiemens*cm**-2) * area
VT = -63*mV
taue, taui = 5*ms, 10*ms
Ee, Ei = 0*mV, -80*mV
eqs = Equations('''
dv/dt = (gl*(El-v)+ge*(Ee-v)+gi*(Ei-v)-
         g_na*(m*m*m)*h*(v-ENa)-
         g_kd*(n*n*n*n)*(v-EK))/Cm : volt
dm/dt = alpha_m*(1-m)-beta_m*m : 1
dn/dt = alpha_n*(1-n)-beta_n*n : 1
dh/dt = alpha_h*(1-h)-beta_h*h : 1
dge/dt = -ge*(1./taue) : siemens
dgi/dt = -gi*(1./taui) : siemens
alpha_m = 0.32*(mV**-1)*(13*mV-v+VT)/
         (exp((13*mV-v+VT)/(4*mV))-1.)/ms : Hz
beta_m = 0.28*(mV**-1)*(v-VT-40*mV)/
        (exp((v-VT-40*mV)/(5*mV))-1)/ms : Hz
alpha_h = 0.128*exp((17*mV-v+VT)/(18*mV))/ms : Hz
beta_h = 4./(1+exp((40*mV-v+VT)/(5*mV)))/ms : Hz
alpha_n = 0.032*(mV**-1)*(15*mV-v+VT)/
         (exp((15*mV-v+VT)/(5*mV))-1.)/ms : Hz
beta_n = .5*exp((10*mV-v+VT)/(40*mV))/ms : Hz
''')
N = len(d["v0"])
P = NeuronGroup(N, model=eqs, threshold='v>-20*mV', refractory=3*ms, method='exponential_euler')
P.v = d["v0"] * mV
P.ge = d["ge0"] * nS
P.gi = d["gi0"] * nS
Ce = Synapses(P, P, on_pre='ge += %g*nS' % case["we"], delay=0.1*ms)
Ci = Synapses(P, P, on_pre='gi += %g*nS' % case["wi"], delay=0.1*ms)
Ce.connect(i=d["ei"], j=d["ej"])
Ci.connect(i=d["ii"], j=d["ij"])
""" + BRIAN_RUN


def initial_state(n: int, seed: int = 1) -> dict:
    """The example's initial values: v = El + (5 randn - 5) mV, ge = (1.5 randn + 4) * 10 nS,
    gi = (12 randn + 20) * 10 nS."""
    rng = np.random.default_rng(seed)
    return {
        "v0": -60.0 + rng.standard_normal(n) * 5 - 5,
        "ge0": (rng.standard_normal(n) * 1.5 + 4) * 10,
        "gi0": (rng.standard_normal(n) * 12 + 20) * 10,
    }


def run_eqneuron(n, duration, conn_e, conn_i, initial):
    import jax
    import jax.numpy as jnp

    import eqneuron as eqn

    model = eqn.compile_model(MODEL)
    params = {k: jnp.asarray(v, jnp.float32) for k, v in initial.items()}
    pop = model.population(n, 0, params=params, key=jax.random.key(0))
    return time_network(pop, duration, conn_e, conn_i, WE, WI, budget=int(n * duration / 1000 * 80) + 1000, max_spikes_per_neuron=max(64, int(duration)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", default="4000", help="comma-separated sizes")
    parser.add_argument("--duration", type=float, default=1000.0, help="ms")
    parser.add_argument("--brian", default="cython,cpp_standalone", help="Brian2 targets ('' for none)")
    parser.add_argument("--repeats", type=int, default=cuba.REPEATS, help="runs after the first call (their median is reported)")
    args = parser.parse_args(argv)
    cuba.set_repeats(args.repeats)
    duration = args.duration
    targets = [t for t in args.brian.split(",") if t]
    for n in (int(x) for x in args.neurons.split(",")):
        _, conn_e, conn_i, _ = network(n, p=connection_probability(n))
        initial = initial_state(n)
        synapses = len(conn_e[0]) + len(conn_i[0])
        timing, spikes = run_eqneuron(n, duration, conn_e, conn_i, initial)
        compare(f"COBAHH, {n} neurons, {synapses} synapses, {duration:g} ms, delay 0.1 ms, refractory 3 ms",
                "eqneuron (windows of 0.1 ms, own clocks, Tsit5)", timing, spikes, n, synapses, duration, targets,
                lambda target, dt, ce=conn_e, ci=conn_i, init=initial: run_brian_script(
                    BRIAN_SCRIPT, duration, target, dt, ce, ci, init, {"we": WE, "wi": WI}))

if __name__ == "__main__":
    main()
