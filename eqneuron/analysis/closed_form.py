"""Closed-form solutions of linear constant-coefficient dynamics, as SymPy data.

For dy/dt = A y + b the free dynamics over a segment of length h are
y(h) = expm(A h) y0 + (integral term).  Along it the spike condition is a
function g(h) of the segment's start state; when g has at most one extremum
(sums of two decaying exponentials, as LIF with an exponential synapse),
whether and when g crosses zero in a segment is decidable: the engine
brackets the first crossing with the extremum and refines it by Newton's
method.  This module only derives the expressions (as ode-toolbox returns
propagators as data); `eqneuron.codegen` turns them into JAX functions.

A removable singularity (e.g. `tmem == tsyn`, where the general solution
divides by `tmem - tsyn`) gets its own limit expression: the *degenerate*
form, selected at run time when the vanishing factor is near zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..ir import ModelIR, input_calls, symbol
from .linear import LinearSystem

H = sp.Symbol("h", real=True)  # time since the segment's start

# the closed form is derived for at most this many states (expm of larger
# symbolic matrices takes SymPy minutes)
MAX_STATES = 4
# coefficients larger than this many operations make SymPy's matrix exponential slow (seconds to minutes)
_MAX_COEFFICIENT_OPS = 24


@dataclass(frozen=True)
class Form:
    """One regime's expressions, functions of (h, *states, *parameters)."""

    state: tuple[sp.Expr, ...]  # y(h)
    condition: sp.Expr  # g(y(h))
    slope: sp.Expr  # dg/dh
    extremum: sp.Expr | None  # the h where dg/dh = 0 (of states and parameters), None if g is monotone


@dataclass(frozen=True)
class ClosedForm:
    general: Form
    degenerate: Form | None  # the limit where `vanishing` is zero
    vanishing: sp.Expr | None  # a factor of the parameters that vanishes in the degenerate regime
    perturbed: str | None  # the parameter nudged to keep the general form finite there
    # y(h) while refractory (the `(unless refractory)` states frozen); None without such states
    refractory_state: tuple[sp.Expr, ...] | None = None


@dataclass(frozen=True)
class NoClosedForm:
    """Why the closed form does not apply (shown by `repr(model)` and `eqneuron check`)."""

    reason: str


def derive_closed_form(ir: ModelIR, linear: LinearSystem | None) -> ClosedForm | NoClosedForm:
    """The closed form of the free dynamics and the spike condition along it."""
    driven = _inputs_in([*ir.derivatives.values(), ir.threshold, *(e.condition for e in ir.events)])
    if driven:
        names = ", ".join(f"`{name}`" for name in driven)
        return NoClosedForm(f"the free dynamics depend on the input waveform{'s' if len(driven) > 1 else ''} {names}")
    if linear is None:
        return NoClosedForm("the free dynamics are not linear with constant coefficients")
    if ir.events:
        return NoClosedForm("the model has internal events")
    if len(ir.states) > MAX_STATES:
        return NoClosedForm(f"more than {MAX_STATES} states")
    states = [symbol(n) for n in ir.states]
    params = [symbol(n) for n in ir.parameters]
    g = ir.threshold
    if not _linear_in(g, states):
        return NoClosedForm("the threshold is not linear in the states")
    if any(sp.count_ops(e) > _MAX_COEFFICIENT_OPS for e in [*linear.A, *linear.b]):
        return NoClosedForm("the coefficients are too complex for a symbolic closed form")
    if _coupled_in_a_cycle(linear.A):
        # complex or coupled eigenvalues: oscillating modes, whose crossings cannot be bracketed by
        # a single extremum (and whose symbolic eigenvalues can take SymPy minutes)
        return NoClosedForm("the linear dynamics couple states in a cycle (oscillating or coupled modes)")
    refractory_state = None
    if ir.refractory is not None and ir.frozen_when_refractory:
        frozen = [ir.states.index(n) for n in ir.frozen_when_refractory]
        A, b = sp.Matrix(linear.A), sp.Matrix(linear.b)
        for k in frozen:
            A[k, :] = sp.zeros(1, A.shape[1])
            b[k] = 0
        refractory_state = tuple(_propagate(ir, LinearSystem(A, b)))
        if _removable_singularities(refractory_state) or not all(_supported(e) for e in refractory_state):
            return NoClosedForm("the dynamics while refractory have no simple closed form")
    y_of_h = _propagate(ir, linear)
    vanishing = _removable_singularities(y_of_h)
    if len(vanishing) > 1:
        return NoClosedForm("the solution has more than one removable singularity")
    general = _form(g, y_of_h, states)
    if general is None:
        return NoClosedForm("the threshold along the solution has more than one extremum")
    if not vanishing:
        return ClosedForm(general, None, None, None, refractory_state)
    (factor,) = vanishing
    perturbed = sorted(factor.free_symbols & set(params), key=str)[-1]
    if not _linear_in(factor, [perturbed]):
        return NoClosedForm("the solution's singularity is not linear in a parameter")
    # factor = a * perturbed + b, linear (checked above): it vanishes at -b / a
    a, b = factor.diff(perturbed), factor.xreplace({perturbed: sp.Integer(0)})
    if a.has(perturbed) or a == 0:
        return NoClosedForm("the solution's singularity has no unique limit")
    y_deg = [_tidy(sp.limit(e, perturbed, -b / a)) for e in y_of_h]
    degenerate = _form(g, y_deg, states)
    if degenerate is None:
        return NoClosedForm("the threshold along the degenerate solution has more than one extremum")
    return ClosedForm(general, degenerate, factor, perturbed.name, refractory_state)


def _removable_singularities(y_of_h) -> set:
    """Factors of the parameters in the solution's denominators that may vanish (a single time
    constant in a denominator is assumed non-zero, an exponential never vanishes)."""
    vanishing = set()
    for e in y_of_h:
        for factor in _factors(sp.denom(sp.together(e))):
            if factor.has(H) or not factor.free_symbols or factor.is_Symbol or isinstance(factor, sp.exp):
                continue
            vanishing.add(factor)
    return vanishing


# polynomials of higher degree are not factored (a literal power `tau**1e9` is one factor)
_MAX_FACTOR_DEGREE = 8


def _factors(denominator: sp.Expr) -> list[sp.Expr]:
    """The irreducible factors of a denominator, where SymPy can find them cheaply.

    Only polynomial factors of low degree are factored: SymPy's factorisation
    writes `exp(K*tau)` as the K-th power of `exp(tau)`, and with a large
    literal K (a fuzzed model had 2e172) builds a dense polynomial of that
    degree and never returns.  Other factors stay whole.
    """
    factors = []
    for part in sp.Mul.make_args(denominator):
        base = part.as_base_exp()[0]
        symbols = sorted(base.free_symbols, key=str)
        try:
            small = bool(symbols) and sp.Poly(base, *symbols).total_degree() <= _MAX_FACTOR_DEGREE
        except sp.PolynomialError:  # not a polynomial: exp, log, ...
            small = False
        if small:
            factors += [factor for factor, _ in sp.factor_list(base)[1]]
        else:
            factors.append(base)
    return factors


def _coupled_in_a_cycle(A: sp.Matrix) -> bool:
    """Whether the states' couplings (A[i, j] != 0, i != j) contain a cycle; without one, A is
    triangular up to a permutation and its eigenvalues are its diagonal entries."""
    n = A.shape[0]
    edges = {i: [j for j in range(n) if j != i and A[i, j] != 0] for i in range(n)}
    state = dict.fromkeys(range(n), 0)  # 0 unvisited, 1 on the stack, 2 done

    def visit(i) -> bool:
        state[i] = 1
        for j in edges[i]:
            if state[j] == 1 or (state[j] == 0 and visit(j)):
                return True
        state[i] = 2
        return False

    return any(state[i] == 0 and visit(i) for i in range(n))


# functions the code generator maps to JAX; a closed form needing others (LambertW, DiracDelta, ...)
# is not used
_SUPPORTED = (sp.exp, sp.log, sp.Abs, sp.sign, sp.sin, sp.cos, sp.tan, sp.sinh, sp.cosh, sp.tanh, sp.Piecewise)


_OWN = ("sigmoid", "softplus", "relu", "exprel", "heaviside")  # eqneuron's functions (eqneuron.check)


def _supported(expr: sp.Expr) -> bool:
    return all(isinstance(f, _SUPPORTED) or type(f).__name__ in _OWN for f in expr.atoms(sp.Function))


def _linear_in(g: sp.Expr, states) -> bool:
    if not g.free_symbols & set(states):
        return False
    try:
        return sp.Poly(g, *states).total_degree() <= 1
    except sp.PolynomialError:
        return False


def _propagate(ir: ModelIR, linear: LinearSystem) -> list[sp.Expr]:
    """y(h) from y0: the exponential of the augmented matrix [[A, b], [0, 0]]."""
    states = [symbol(n) for n in ir.states]
    n = len(states)
    M = sp.zeros(n + 1, n + 1)
    M[:n, :n] = linear.A
    M[:n, n] = linear.b
    E = (M * H).exp()
    y = E[:n, :n] * sp.Matrix(states) + E[:n, n]
    return [_tidy(e) for e in y]


def _tidy(expr: sp.Expr) -> sp.Expr:
    """Write every exponential as a decaying one (no exp(+h/tau) overflow)."""
    expr = sp.expand(sp.powsimp(sp.expand(expr)))
    terms = [sp.powsimp(sp.factor_terms(sp.together(term)), combine="exp") for term in sp.Add.make_args(expr)]
    return sp.Add(*terms)


def _form(g: sp.Expr, y_of_h, states) -> Form | None:
    """The condition along y(h), its slope and its single extremum; None with several extrema."""
    along = g.xreplace(dict(zip(states, y_of_h)))
    slope = sp.diff(along, H)
    if len({e for e in slope.atoms(sp.exp) if e.has(H)}) > 2:
        return None  # three or more modes: g'(h) = 0 has no closed-form solution
    modes = _exponential_modes(slope)
    if modes is None:
        return None
    # the zero of g'(h), written directly (SymPy's `solve` finds spurious complex branches when
    # the rates are in an integer ratio, and can take minutes, or never return, on long coefficients):
    # c1 e^(r1 h) + c2 e^(r2 h) = 0 at h = log(-c2 / c1) / (r1 - r2) (NaN where there is none);
    # (p0 + p1 h) e^(r h) = 0 at h = -p0 / p1 (a degenerate form); one constant mode: monotone
    degrees = [len(p) - 1 for p in modes.values()]
    if len(modes) == 2 and degrees == [0, 0]:
        (r1, (c1,)), (r2, (c2,)) = modes.items()
        extremum = sp.log(-c2 / c1) / (r1 - r2)
    elif len(modes) == 1 and degrees == [1]:
        ((p0, p1),) = modes.values()
        extremum = -p0 / p1
    elif len(modes) <= 1 and degrees in ([], [0]):
        extremum = None
    else:
        return None  # more than one extremum possible
    form = Form(tuple(y_of_h), along, slope, extremum)
    parts = [*form.state, form.condition, form.slope] + ([form.extremum] if form.extremum is not None else [])
    if not all(_supported(e) for e in parts):
        return None
    return form


def _exponential_modes(expr: sp.Expr) -> dict | None:
    """`expr` as a sum of modes P_r(h) e^(r h), r and the polynomials' coefficients free of h:
    {r: [p_0, p_1, ...]} (P_r = p_0 + p_1 h + ..., modes with P_r = 0 left out); None if it is
    not one.

    Each exponential of h is a placeholder while the expression is expanded:
    expanding `i e^(-h/tsyn) / (tmem - tsyn)` itself moves the exponential into
    the denominator's sum, where it is no longer a factor of the term.
    """
    exps = sorted({e for e in expr.atoms(sp.exp) if e.has(H)}, key=sp.default_sort_key)
    placeholders = [sp.Dummy(f"E{k}") for k in range(len(exps))]
    rates, shifts = [], []
    for e in exps:
        exponent = sp.expand(e.args[0])
        rate = exponent.coeff(H, 1)
        shift = sp.expand(exponent - rate * H)
        if rate.has(H) or shift.has(H):
            return None
        rates.append(rate)
        shifts.append(shift)
    groups: dict = {}
    combined: dict = {}  # the rate of a product of the exponentials, by their powers
    for term in sp.Add.make_args(sp.expand(expr.xreplace(dict(zip(exps, placeholders))))):
        powers, degree, coefficient = [0] * len(exps), 0, []
        for factor in sp.Mul.make_args(term):
            base, exponent = factor.as_base_exp()
            if base in placeholders and exponent.is_Integer:
                powers[placeholders.index(base)] += int(exponent)
            elif base == H and exponent.is_Integer and exponent >= 0:
                degree += int(exponent)
            elif factor.has(H, *placeholders):
                return None
            else:
                coefficient.append(factor)
        key = tuple(powers)
        if key not in combined:
            combined[key] = sp.simplify(sum((k * r for k, r in zip(powers, rates)), sp.Integer(0)))
        rate = combined[key]
        shift = sum((k * s for k, s in zip(powers, shifts)), sp.Integer(0))
        polynomial = groups.setdefault(rate, {})
        polynomial[degree] = polynomial.get(degree, sp.Integer(0)) + sp.Mul(*coefficient) * sp.exp(shift)
    modes = {}
    for rate, polynomial in groups.items():
        coefficients = [polynomial.get(d, sp.Integer(0)) for d in range(max(polynomial) + 1)]
        while coefficients and coefficients[-1] == 0:
            coefficients.pop()
        if coefficients:
            modes[rate] = coefficients
    return modes


def _inputs_in(exprs) -> list[str]:
    """The input waveforms (`I(t)`) the expressions use, by name, sorted."""
    return sorted({call.func.__name__ for expr in exprs for call in input_calls(expr)})
