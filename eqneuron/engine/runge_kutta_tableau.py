"""Butcher tableaus with their dense output, as data the Runge–Kutta integrator reads.

A method (Tsit5 by default; Dopri5, Dopri8, Heun from Diffrax; Euler by hand)
is its stage nodes and weights, its error estimate's weights and its dense
output as polynomials in θ of the stage increments, recovered once per method
from Diffrax's own interpolation (`_dense_polynomials`).  `weighted_sum` is how
the integrator applies a row of weights to the stages.  Kept apart from the
integrator (`runge_kutta.py`), which only steps with them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import diffrax
import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class Tableau:
    """An explicit Runge–Kutta method with an error estimate and a polynomial dense output."""

    name: str
    c: tuple[float, ...]  # nodes of stages 2..s
    a_lower: tuple[tuple[float, ...], ...]
    b_sol: tuple[float, ...]
    b_error: tuple[float, ...]
    dense: np.ndarray  # (stages, powers): y(θ) = y0 + Σ_p θ^p Σ_i dense[i, p] k_i
    error_order: float


@functools.cache
def tableau(method: str) -> Tableau:
    """The tableau of `method` (tsit5, dopri5, dopri8, heun: Diffrax's; euler: by hand)."""
    if method == "euler":
        # one stage; linear interpolation; no error estimate (fixed steps only)
        return Tableau("euler", (), (), (1.0,), (0.0,), np.array([[0.0, 1.0]]), 1.0)
    solver_cls = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "dopri8": diffrax.Dopri8, "heun": diffrax.Heun}[method]
    t = solver_cls.tableau
    assert isinstance(t, diffrax.ButcherTableau)  # the four methods have one tableau each
    order = solver_cls().error_order(None)
    assert order is not None  # methods with an error estimate
    return Tableau(
        name=method,
        c=tuple(float(x) for x in t.c),
        a_lower=tuple(tuple(float(x) for x in row) for row in t.a_lower),
        b_sol=tuple(float(x) for x in t.b_sol),
        b_error=tuple(float(x) for x in t.b_error),
        dense=_dense_polynomials(solver_cls),
        error_order=float(order),
    )


@functools.cache
def _dense_polynomials(solver_cls) -> np.ndarray:
    """Coefficients (stages × powers, increasing powers of θ) of the solver's dense-output weights.

    Diffrax's interpolation is linear in the stage increments and polynomial in
    θ; evaluating it (in float64) at Chebyshev points of [0, 1] with unit
    increments and solving the Vandermonde system recovers the polynomials.
    """
    t = solver_cls.tableau
    n = len(t.b_sol)
    degree = 8
    theta = 0.5 + 0.5 * np.cos(np.pi * (np.arange(degree + 1) + 0.5) / (degree + 1))
    def evaluate(points):
        interp = solver_cls.interpolation_cls(
            t0=jnp.float64(0.0), t1=jnp.float64(1.0), y0=jnp.zeros(n), y1=jnp.asarray(t.b_sol), k=jnp.eye(n)
        )
        return jax.vmap(interp.evaluate)(points)

    # one program compiled ahead of time and called (not operations of the caller's trace; op by
    # op, each compiled on its own: 0.68 s of a fresh process's first call, against ~0.1 s)
    with jax.enable_x64(True):
        points = np.asarray(theta, np.float64)
        values = np.asarray(jax.jit(evaluate).lower(points).compile()(points), np.float64)
    coeffs = np.linalg.solve(np.vander(theta, degree + 1, increasing=True), values)
    # refit at the true degree (well conditioned), then drop round-off
    degree = int(np.max(np.nonzero(np.max(np.abs(coeffs), axis=1) > 1e-8 * np.max(np.abs(coeffs)))[0]))
    coeffs = np.linalg.lstsq(np.vander(theta, degree + 1, increasing=True), values, rcond=None)[0].T
    coeffs[np.abs(coeffs) < 1e-13 * np.max(np.abs(coeffs))] = 0.0
    if not np.allclose(coeffs.sum(axis=1), t.b_sol, rtol=0, atol=1e-9):
        raise ValueError(f"{solver_cls.__name__}: dense output does not reproduce the step at θ = 1")
    if not np.allclose(coeffs[:, 0], 0.0, rtol=0, atol=1e-9):
        raise ValueError(f"{solver_cls.__name__}: dense output does not start at y0")
    coeffs[:, 0] = 0.0
    return coeffs


def weighted_sum(weights, k):
    """Σ_i weights[i] k[i] for constant weights (zero weights skipped) and a list of arrays.

    A sum of scaled terms, which XLA fuses into one loop over the elements.
    A contraction of the stacked terms (`tensordot`) traces smaller, but
    stacking them copies every earlier stage at every stage: on the eventax
    Izhikevich net those stacks took a fifth of the forward pass
    (docs/design.md).
    """
    terms = [float(w) * k_i for w, k_i in zip(np.asarray(weights, dtype=np.float64), k) if w != 0.0]
    return sum(terms[1:], terms[0]) if terms else jnp.zeros_like(k[0])
