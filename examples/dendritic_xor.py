"""XOR in a single neuron with dendritic calcium action potentials, trained with exact gradients.

The `dcaap` zoo neuron (Gidon et al., Science 2020): a dendritic calcium action potential (dCaAP)
is largest for a stimulus that just reaches its threshold and smaller for stronger ones, so one
dendrite can tell "X or Y" from "X and Y".  Two pathways inject current steps into the dendrite
when active, `ic = w_X x + w_Y y` (the current steps with which Gidon et al. measured dCaAPs);
the neuron should fire for X alone or Y alone and stay silent for neither or both.

Trained: `w_X`, `w_Y` and the dCaAP current `w_ca`, by Adam on a hinge loss of the soma's peak
voltage.  The gradients are exact: they flow through the dCaAP's time and amplitude (its
`event` body) and the somatic spikes.  Takes a minute or two on a laptop CPU.

    python examples/dendritic_xor.py
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import eqneuron as eqn

jax.config.update("jax_enable_x64", True)

PATTERNS = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
TARGETS = jnp.array([False, True, True, False])
T1 = 80.0  # ms: the dCaAP of a threshold-level step comes within ~50 ms
GRID = jnp.linspace(0.0, T1, 401)
MARGIN = 2.0  # mV below (silent) or above (firing) the somatic threshold

model = eqn.compile_model("dcaap")
V_TH = float(model.params["V_th"])


def simulate(theta):
    """The neuron once per pattern: four copies with the pattern's dendritic current."""
    ic = PATTERNS @ theta["w"]
    pop = model.population(4, params={"ic": ic, "w_ca": jnp.full(4, theta["w_ca"])})
    return eqn.simulate(pop, None, t1=T1, max_spikes=64, save_at=GRID)


def fired(out):
    return jnp.any(out.spike_neurons[:, None] == jnp.arange(4), axis=0)


@eqx.filter_jit
def loss_and_grad(theta):
    def loss(theta):
        out = simulate(theta)
        peak = out.states[0]["v_s"].max(axis=0)  # the soma's highest sampled voltage, per pattern
        spiked = jax.lax.stop_gradient(fired(out))
        # firing wanted: nothing once it fires, else raise the peak; silence wanted: keep the peak
        # (just before a spike, if it fires) below threshold
        wanted = jnp.where(spiked, 0.0, jax.nn.relu(V_TH + MARGIN - peak))
        unwanted = jax.nn.relu(peak - (V_TH - MARGIN))
        return jnp.mean(jnp.where(TARGETS, wanted, unwanted)), spiked

    return jax.value_and_grad(loss, has_aux=True)(theta)


def main():
    theta = {
        "w": jnp.array([0.16, 0.26]),
        "w_ca": jnp.array(1.5),
    }  # nA: X below threshold, Y above the window
    # steps of about 1 % of each parameter's size: 2 pA for the weights, 20 pA for w_ca
    optimizer = optax.multi_transform(
        {"w": optax.adam(2e-3), "w_ca": optax.adam(2e-2)}, {"w": "w", "w_ca": "w_ca"}
    )
    state = optimizer.init(theta)
    for step in range(300):
        (loss, spiked), grads = loss_and_grad(theta)
        accuracy = float(jnp.mean(spiked == TARGETS))
        if step % 10 == 0 or accuracy == 1.0:
            print(
                f"step {step:3d}  loss {float(loss):7.4f}  accuracy {accuracy:.2f}  "
                f"w_X {float(theta['w'][0]):.4f}  w_Y {float(theta['w'][1]):.4f}  w_ca {float(theta['w_ca']):.3f}"
            )
        if accuracy == 1.0 and float(loss) == 0.0:
            break
        updates, state = optimizer.update(grads, state)
        theta = optax.apply_updates(theta, updates)

    out = simulate(theta)
    dcaap_times, dcaap_neurons = out.events[0].of("dcaap")
    print("\npattern  fires  dCaAP at (ms)  amplitude K")
    for k, (x, y) in enumerate(PATTERNS.tolist()):
        times = [float(t) for t, n in zip(dcaap_times, dcaap_neurons) if int(n) == k]
        amplitude = float(out.states[0]["K"][-1, k])
        print(
            f"({x:.0f}, {y:.0f})   {bool(fired(out)[k])!s:5}  {', '.join(f'{t:.1f}' for t in times) or '-':13}  {amplitude:.3f}"
        )
    print(f"XOR accuracy {float(jnp.mean(fired(out) == TARGETS)):.2f}")


if __name__ == "__main__":
    main()
