"""Linear dynamics as sums of exponentials (modes), for the event-driven windows.

For dx/dt = A x + b whose states do not depend on themselves through other
states (A triangular up to an order of the states), the augmented state
y = [1, x] moves by the lower-triangular matrix M = [[0, 0], [b, A]]: its
eigenvalues are 0 and the diagonal of A, its eigenvectors (the columns of V)
follow by forward substitution, and over any time h

    y(h) = V e^{Λh} W y(0),   W = V⁻¹.

A linear threshold g = c·y is then g(h) = γ_0 + Σ_k γ_k e^{λ_k h} with
γ = (cV) ⊙ (W y): each term is monotone in h, so an upper bound of g over an
interval is the sum of each term's larger end, and with at most three modes
the first crossing is found exactly: the zeros of g' are separated by the
one zero of (e^{-λ_1 h} g')' (a sum of two exponentials, solved in closed
form), so g is monotone between at most four breakpoints and the crossing is
bracketed in the first piece whose end is above threshold (Rolle).

The numbers are computed from the parameters at trace time (they may be
traced); the structure (which states depend on which) is read from the
model's SymPy matrices.  Rates that coincide within `_SEPARATION` are moved
apart by that relative amount: their modes' coefficients divide by the
difference of the rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import sympy as sp
from jaxtyping import Array, Bool, Float, Int

from ..codegen import lambdify
from ..ir import symbol
from .roots import locate_crossing

# the most modes (states the threshold depends on) whose first crossing is located exactly
MAX_MODES = 3
# relative separation forced between rates that coincide, by floating-point width
_SEPARATION = {"float32": 1e-3, "float64": 1e-7}


@dataclass(frozen=True)
class Structure:
    """Which states depend on which, read from the model (static)."""

    order: tuple[int, ...]  # the states in an order where each depends only on earlier ones
    relevant: tuple[int, ...]  # augmented indices (1 + position in `order`) of the threshold's modes
    frozen: tuple[bool, ...]  # per augmented index: frozen while refractory
    # (m, m): which entries of the propagator, of V and of W may be nonzero (augmented indices):
    # entry (i, j) where state i depends on state j through a chain of others (or i = j); the
    # products by them skip the rest (CUBA: 7 of 16, in the pass over every neuron of each window)
    pattern: tuple[tuple[bool, ...], ...]


def structure(model) -> Structure | str:
    """The modal structure of a compiled model, or why it has none (a sentence)."""
    ir, linear = model.ir, model.compiled.analysis.linear
    if linear is None:
        return "its free dynamics are not linear with constant coefficients"
    n = len(ir.states)
    A = linear.A
    deps = {i: {j for j in range(n) if j != i and A[i, j] != 0} for i in range(n)}
    order: list[int] = []
    while len(order) < n:
        ready = [i for i in range(n) if i not in order and deps[i] <= set(order)]
        if not ready:
            return "its states depend on each other in a cycle (coupled or oscillating modes)"
        order.append(ready[0])
    for i in range(n):
        if sp.simplify(A[i, i]) == 0:
            return f"the state `{ir.states[i]}` does not decay (its rate is 0)"
    states = [symbol(s) for s in ir.states]
    g = ir.threshold
    try:
        if sp.Poly(g, *states).total_degree() > 1 or any(sp.diff(g, s).free_symbols & set(states) for s in states):
            return "its threshold is not linear in the states"
    except sp.PolynomialError:
        return "its threshold is not linear in the states"
    closure = {i for i, s in enumerate(states) if g.has(s)}
    while True:
        more = set().union(*(deps[i] for i in closure)) - closure
        if not more:
            break
        closure |= more
    if len(closure) > MAX_MODES:
        return f"its threshold depends on {len(closure)} modes (at most {MAX_MODES} are located exactly)"
    frozen_names = set(ir.frozen_when_refractory)
    for i in range(n):
        if ir.states[i] not in frozen_names and any(ir.states[j] in frozen_names for j in deps[i]):
            return f"the state `{ir.states[i]}` depends on a state frozen while refractory"
    relevant = tuple(1 + order.index(i) for i in sorted(closure, key=order.index))
    frozen = (False, *(ir.states[i] in frozen_names for i in order))
    # augmented dependencies: the constant (index 0) feeds the states with a nonzero `b`
    feeds: list[set[int]] = [set()] + [({0} if linear.b[o] != 0 else set()) | {1 + order.index(j) for j in deps[o]} for o in order]
    reach = [{i} for i in range(n + 1)]
    for i in range(n + 1):  # in `order`, each state's sources come first: one forward pass closes them
        for j in feeds[i]:
            reach[i] |= reach[j]
    pattern = tuple(tuple(j in reach[i] for j in range(n + 1)) for i in range(n + 1))
    return Structure(tuple(order), relevant, frozen, pattern)


class ModalSystem(eqx.Module):
    """y(h) = V e^{Λh} W y(0) in augmented coordinates y = [1, x in `order`], shape (n+1, lanes)."""

    rates: Float[Array, " m"]
    V: Float[Array, "m m"]
    W: Float[Array, "m m"]
    cV: Float[Array, " m"]  # the threshold's coefficient of each mode
    frozen: Bool[Array, "m 1"]
    # the relevant modes (padded to MAX_MODES) in the order the crossing search takes them, and
    # their rates in that order: sorted once per run (inside the candidates' loop XLA sorted them
    # every step)
    crossing_perm: Int[Array, " k"]
    crossing_rates: Float[Array, " k"]
    order: tuple[int, ...] = eqx.field(static=True)
    relevant: tuple[int, ...] = eqx.field(static=True)
    pattern: tuple[tuple[bool, ...], ...] = eqx.field(static=True)

    def __init__(self, model, params: dict, s: Structure, dtype) -> None:
        ir, linear = model.ir, model.compiled.analysis.linear
        syms = [symbol(p) for p in ir.parameters]
        states = [symbol(n) for n in ir.states]
        args = [params[p] for p in ir.parameters]
        n = len(ir.states)
        c = [sp.diff(ir.threshold, x) for x in states]
        c0 = ir.threshold.xreplace({x: sp.Integer(0) for x in states})
        values = lambdify(syms, [*linear.A, *linear.b, c0, *c])(*args)
        values = [jnp.asarray(v, dtype) for v in values]
        A = [values[i * n : (i + 1) * n] for i in range(n)]
        b, c0v, cv = values[n * n : n * n + n], values[n * n + n], values[n * n + n + 1 :]
        m = n + 1
        o = s.order
        M = [[jnp.zeros((), dtype)] * m for _ in range(m)]
        for p in range(n):
            M[1 + p][0] = b[o[p]]
            for q in range(n):
                M[1 + p][1 + q] = A[o[p]][o[q]]
        rates = [jnp.zeros((), dtype)] + [M[k][k] for k in range(1, m)]
        sep = _SEPARATION[jnp.dtype(dtype).name]
        for j in range(1, m):  # coinciding rates moved apart (their modes divide by the difference)
            for i in range(j):
                scale = jnp.maximum(jnp.abs(rates[i]), jnp.abs(rates[j]))
                close = jnp.abs(rates[j] - rates[i]) < sep * scale
                rates[j] = jnp.where(close, rates[i] - sep * scale, rates[j])
        V = [[jnp.zeros((), dtype)] * m for _ in range(m)]
        for k in range(m):
            V[k][k] = jnp.ones((), dtype)
            for i in range(k + 1, m):
                acc = sum((M[i][j] * V[j][k] for j in range(k, i)), jnp.zeros((), dtype))
                V[i][k] = acc / (rates[k] - rates[i])
        Vm = jnp.stack([jnp.stack(row) for row in V])
        self.rates = jnp.stack(rates)
        self.V = Vm
        self.W = jsl.solve_triangular(Vm, jnp.eye(m, dtype=dtype), lower=True, unit_diagonal=True)
        c_aug = jnp.stack([jnp.asarray(c0v, dtype)] + [jnp.asarray(cv[o[p]], dtype) for p in range(n)])
        self.cV = c_aug @ Vm
        self.frozen = jnp.asarray(s.frozen)[:, None]
        self.order, self.relevant, self.pattern = s.order, s.relevant, s.pattern
        lam = self.rates[jnp.asarray(s.relevant)]
        k = len(s.relevant)
        if k < MAX_MODES:  # padded with rates of terms that are zero
            lam = jnp.concatenate([lam, lam[:1] * (2.0 + jnp.arange(MAX_MODES - k, dtype=lam.dtype))])
        self.crossing_perm = jnp.argsort(-lam)  # the slowest mode first
        self.crossing_rates = lam[self.crossing_perm]

    # -- states -------------------------------------------------------------------------------
    def augment(self, x: Float[Array, "n lanes"]) -> Float[Array, "m lanes"]:
        """[1, x in `order`] from states in the model's order."""
        return jnp.concatenate([jnp.ones_like(x[:1]), x[jnp.asarray(self.order)]])

    def states(self, y: Float[Array, "m lanes"]) -> Float[Array, "n lanes"]:
        """States in the model's order from augmented ones."""
        inverse = [self.order.index(i) for i in range(len(self.order))]
        return y[1:][jnp.asarray(inverse)]

    def propagate(self, y: Float[Array, "m lanes"], h: Float[Array, " lanes"]) -> Float[Array, "m lanes"]:
        """The free dynamics over `h` (a contribution y[0] = 0 moves homogeneously)."""
        a = _mv(self.W, y, self.pattern) * jnp.exp(self.rates[:, None] * h[None, :])
        return _mv(self.V, a, self.pattern)

    def propagate_refractory(self, y, h):
        """Over `h` while refractory: the frozen states keep their values (nothing else depends on them)."""
        return jnp.where(self.frozen, y, self.propagate(y, h))

    def carry(self, y, h, refractory):
        """Jumps `y` (y[0] = 0) over `h` (frozen states kept where `refractory`), and an upper
        bound of what each adds to the threshold condition over [0, h] (at least 0)."""
        a = _mv(self.W, y, self.pattern)
        e = jnp.exp(self.rates[:, None] * h[None, :])
        moved = _mv(self.V, a * e, self.pattern)
        gam = self.cV[:, None] * a
        lift = jnp.maximum(_rows_sum(jnp.maximum(gam, gam * e)), 0.0)
        return jnp.where(self.frozen & refractory[None, :], y, moved), lift

    def propagate_all(self, y: Float[Array, "m lanes"], h: Float[Array, ""]) -> Float[Array, "m lanes"]:
        """The free dynamics over one `h` for every lane."""
        # the (m, m) product by `_mv` too (m lanes: a broadcast and a sum): a dot of two small
        # matrices costs the CPU a few microseconds, every window
        P = _mv(self.V, jnp.exp(self.rates * h)[:, None] * self.W, self.pattern)
        return _matvec(P, y, self.pattern)

    def bound_all(self, y: Float[Array, "m lanes"], h: Float[Array, ""]) -> Float[Array, " lanes"]:
        """`bound` over one `h` for every lane."""
        # row by row, the terms never gathered into an (m, lanes) array of their own: the bound is
        # computed in the pass that reads y (such an array was written and read again, every window)
        terms = _matvec_rows(self.cV[:, None] * self.W, y, self.pattern)
        e = jnp.exp(self.rates * h)
        return _total([jnp.maximum(g, g * e[i]) for i, g in enumerate(terms)])

    def condition(self, y: Float[Array, "m lanes"]) -> Float[Array, " lanes"]:
        return _rows_sum(self.terms(y))

    def terms(self, y: Float[Array, "m lanes"]) -> Float[Array, "m lanes"]:
        """γ: g(h) = Σ_k γ_k e^{λ_k h}."""
        return self.cV[:, None] * _mv(self.W, y, self.pattern)

    # -- bounds and crossings -----------------------------------------------------------------
    def first_crossing(self, y, h, active, tol, origin):
        """The first s in [0, h] where g(s) >= 0, per lane; inf where none (or not `active`)."""
        gam = self.terms(y)
        rel = jnp.asarray(self.relevant)
        k = len(self.relevant)
        gr = gam[rel]
        g0 = _rows_sum(gam) - _rows_sum(gr)  # the constant (and zero) terms
        if k < MAX_MODES:  # padded with terms that are zero
            gr = jnp.concatenate([gr, jnp.zeros((MAX_MODES - k, gr.shape[1]), gr.dtype)])
        gr, lam = gr[self.crossing_perm], self.crossing_rates  # the slowest mode first: the others decay relative to it
        L = lam[:, None]

        def g(s):
            return g0 + _rows_sum(gr * jnp.exp(L * s[None, :]))

        def g_and_slope(s):
            e = gr * jnp.exp(L * s[None, :])
            return g0 + _rows_sum(e), _rows_sum(L * e)

        d = lam[1:] - lam[0]
        D = d[:, None]

        def u_and_slope(s):  # e^{-λ_1 s} g'(s) and its derivative
            e = lam[1:, None] * gr[1:] * jnp.exp(D * s[None, :])
            return lam[0] * gr[0] + _rows_sum(e), _rows_sum(D * e)

        g_start = g(jnp.zeros_like(h))
        possible = active & (g_start < 0) & (_bound_terms(g0, gr, L, h) >= 0)
        def search(_):  # only where some lane can cross: most segments of a candidate cannot
            # (u')(s) = c_2 e^{d_2 s} + c_3 e^{d_3 s} is zero at most once
            cu = d[:, None] * lam[1:, None] * gr[1:]
            s_u = jnp.log(-cu[1] / cu[0]) / (d[0] - d[1])
            s_u = jnp.where(jnp.isfinite(s_u) & (s_u > 0) & (s_u < h), s_u, h)

            def extremum(a, b):  # the zero of g' in [a, b], where u is monotone; b where none
                ua, _ = u_and_slope(a)
                ub, _ = u_and_slope(b)
                sign = jnp.where(ua < 0, 1.0, -1.0)
                has = possible & (sign * ua < 0) & (sign * ub >= 0)

                def signed(s):
                    v, dv = u_and_slope(s)
                    return sign * v, sign * dv

                x = locate_crossing(signed, a, b, 0.5 * (a + b), has, tol, origin=origin)
                return jnp.where(has, x, b)

            zero = jnp.zeros_like(h)
            e1 = extremum(zero, s_u)
            e2 = extremum(s_u, h)
            points = [zero, e1, s_u, e2, h]
            lo, hi, found = zero, h, jnp.zeros_like(possible)
            for a, b in zip(points[:-1], points[1:]):
                here = possible & ~found & (g(b) >= 0)
                lo, hi = jnp.where(here, a, lo), jnp.where(here, b, hi)
                found = found | here
            ga, gb = g(lo), g(hi)
            start = lo + (hi - lo) * jnp.clip(-ga / jnp.where(gb - ga > 0, gb - ga, 1.0), 0.0, 1.0)
            s = locate_crossing(g_and_slope, lo, hi, start, found, tol, origin=origin)
            s = jnp.where(found, s, jnp.inf)
            return s

        s = jax.lax.cond(jnp.any(possible), search, lambda _: jnp.full_like(h, jnp.inf), None)
        return jnp.where(active & (g_start >= 0), 0.0, s)


def _matvec(M: Float[Array, "m m"], y: Float[Array, "m lanes"], pattern) -> Float[Array, "m lanes"]:
    """M @ y written out over the entries of M that `pattern` allows: XLA fuses it into one pass
    over the lanes (a dot of a (m, m) matrix by (m, lanes) is several times slower on the CPU)."""
    return jnp.stack(_matvec_rows(M, y, pattern))


def _matvec_rows(M: Float[Array, "m m"], y: Float[Array, "m lanes"], pattern) -> list[Float[Array, " lanes"]]:
    """The rows of `_matvec`, not stacked (a caller that combines them further keeps them in its pass)."""
    m = M.shape[0]
    return [_total([M[i, j] * y[j] for j in range(m) if pattern[i][j]]) for i in range(m)]


def _total(terms: list[Float[Array, " lanes"]]) -> Float[Array, " lanes"]:
    """The sum of a few arrays (at least one), written out (stacked and summed row by row: XLA
    slices the stack away, and the pass ran no slower than with any other spelling tried)."""
    return _rows_sum(jnp.stack(terms))


# up to this many lanes, a product by a small matrix is written out (`_mv`)
_FEW_LANES = 128


def _mv(M: Float[Array, "m m"], y: Float[Array, "m lanes"], pattern) -> Float[Array, "m lanes"]:
    """M @ y: for up to 128 lanes (a block of candidates, a delivery's targets: one source's row,
    ~110 wide in Brian2's CUBA) written out over the entries `pattern` allows (`_matvec`), one
    small kernel; for more the `dot`. XLA's CPU `dot` of a (m, m) matrix is a library call whose fixed
    cost dominates at 16 lanes (CUBA at 4000 neurons: 0.263 s with the `dot` for rows of 111, 0.257
    s with the sum); the sum over all lanes was slower at 40,000 neurons (docs/design.md).
    A whole population's lanes take `_matvec`, fused into the pass that reads them."""
    if y.shape[-1] > _FEW_LANES:
        return M @ y
    return _matvec(M, y, pattern)


def _rows_sum(x: Float[Array, "m lanes"]) -> Float[Array, " lanes"]:
    """The sum over the few rows, written out (one fused pass; a reduction is slower on the CPU)."""
    return sum((x[i] for i in range(1, x.shape[0])), x[0])


def _bound_terms(g0, gr, L, h):
    """An upper bound over [0, h] of g0 + Σ gr e^{L s} (each term monotone)."""
    return g0 + _rows_sum(jnp.maximum(gr, gr * jnp.exp(L * h[None, :])))
