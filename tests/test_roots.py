"""The engine's root finder (`eqneuron.engine.roots.locate_crossing`) against closed-form roots."""

import jax.numpy as jnp
import numpy as np

from eqneuron.engine import roots


def count_iterations(monkeypatch) -> list[int]:
    """The iterations of each root-finder loop run from here on, appended to the list returned."""
    iterations: list[int] = []
    original = roots.converge

    def counted(body, state, max_iterations):
        out = original(body, state, max_iterations)
        iterations.append(int(out[0]))
        return out

    monkeypatch.setattr(roots, "converge", counted)
    return iterations


def test_a_root_near_the_brackets_end_is_found_in_few_iterations(monkeypatch):
    """g(x) = 1 - 2 exp(-x) (concave, rising; root ln 2) on brackets [lo, 5] whose lower end lies
    1e-9, 1e-3 and ln 2 below the root, Newton started from the upper end.  A Newton step from
    right of the root lands left of it, just below `lo` in the first lane: kept inside the bracket
    rather than replaced by bisection, the bracket closes at once (bisection from a width of ~4.3
    to the tolerance takes ~40 halvings; Newton with bisection as its only fallback, 20 iterations).
    The answer is Newton's point in the final bracket: ln 2 to roundoff, not to the tolerance."""
    iterations = count_iterations(monkeypatch)
    root = np.log(2.0)
    lo = jnp.array([root - 1e-9, root - 1e-3, 0.0])
    hi = jnp.full(3, 5.0)

    def g_and_slope(x):
        return 1.0 - 2.0 * jnp.exp(-x), 2.0 * jnp.exp(-x)

    x = roots.locate_crossing(g_and_slope, lo, hi, hi, jnp.ones(3, bool), tol=1e-12)
    np.testing.assert_allclose(np.asarray(x), root, rtol=0, atol=1e-15)
    assert iterations == [iterations[0]] and iterations[0] <= 10, iterations


def test_a_root_in_a_flat_stretch_is_found_to_the_tolerance():
    """g(x) = (x - 1)^3 + 1e-6 (x - 1): a near-triple root at 1, slope ~1e-6 there; Newton converges
    slowly and bisection takes over; the root is found to the tolerance."""

    def g_and_slope(x):
        return (x - 1.0) ** 3 + 1e-6 * (x - 1.0), 3.0 * (x - 1.0) ** 2 + 1e-6

    x = roots.locate_crossing(g_and_slope, jnp.array([0.0, 0.5]), jnp.array([3.0, 1.2]), jnp.array([3.0, 1.2]),
                              jnp.ones(2, bool), tol=1e-10)
    np.testing.assert_allclose(np.asarray(x), 1.0, rtol=0, atol=1e-9)


def test_a_crossing_before_the_peak_of_a_closed_form_starts_near_it(monkeypatch):
    """A LIF neuron (tau_mem 10, tau_syn 5 ms) from v = 0 with synaptic current i0:
    v(h) = i0 (exp(-h/10) - exp(-h/5)) peaks at i0/4 at h = 10 ln 2, where the condition's slope
    is zero.  Peaks 1e-6 to 10 above the threshold 1, in one call: the crossings equal scipy's
    brentq on that formula, and the root finder's loop ran at most 8 iterations (Newton from
    the quadratic expansion at the peak: 6; a bisection first, then Newton: 15)."""
    import jax
    from scipy.optimize import brentq

    import eqneuron as eqn
    from eqneuron.engine.config import SolverConfig
    from eqneuron.engine.strategies import make_integrator

    iterations = count_iterations(monkeypatch)
    model = eqn.compile_model("lif")
    pop = model.population(5, 1, key=jax.random.key(0))
    p = {k: jnp.asarray(v, jnp.float64) for k, v in pop.parameter_values().items()}
    assert (float(p["tmem"]), float(p["tsyn"]), float(p["thresh"])) == (10.0, 5.0, 1.0)
    integrator = make_integrator(model, SolverConfig(method="exact"), jnp.float64)
    i0 = 4.0 * (1.0 + np.array([1e-6, 1e-3, 0.1, 1.0, 10.0]))
    y0 = jnp.stack([jnp.zeros(5), jnp.asarray(i0)])
    h = integrator.crossing_times(y0, jnp.full(5, 60.0), p, jnp.ones(5, bool))
    reference = [brentq(lambda t, a=a: a * (np.exp(-t / 10) - np.exp(-t / 5)) - 1.0, 0.0, 10 * np.log(2),
                        xtol=1e-15, rtol=1e-15) for a in i0]
    np.testing.assert_allclose(np.asarray(h), reference, rtol=0, atol=1e-10)
    assert len(iterations) == 1 and iterations[0] <= 8, iterations
