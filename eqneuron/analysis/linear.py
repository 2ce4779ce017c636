"""Analyses of the free dynamics: linearity and exact propagators (SymPy, compile time)."""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..ir import ModelIR, T, symbol


@dataclass(frozen=True)
class LinearSystem:
    """dy/dt = A y + b with A, b free of states and time (parameters allowed)."""

    A: sp.Matrix
    b: sp.Matrix


def linear_system(model: ModelIR) -> LinearSystem | None:
    """The constant-coefficient linear form of the free dynamics, or None if there is none."""
    states = [symbol(n) for n in model.states]
    rows, offsets = [], []
    for name in model.states:
        f = sp.expand(model.derivatives[name])
        if f.has(sp.Piecewise) or T in f.free_symbols:
            return None
        try:
            poly = sp.Poly(f, *states) if states else None
        except sp.PolynomialError:
            return None
        if poly is None or poly.total_degree() > 1:
            return None
        row = [f.coeff(s) for s in states]
        if any(c.free_symbols & set(states) for c in row):
            return None
        offset = f.xreplace({s: sp.Integer(0) for s in states})
        if offset.free_symbols & set(states) or any(not _is_constant(c) for c in [*row, offset]):
            return None
        rows.append(row)
        offsets.append(offset)
    return LinearSystem(sp.Matrix(rows), sp.Matrix(offsets))


def _is_constant(expr: sp.Expr) -> bool:
    return not expr.has(sp.Function) or all(
        not isinstance(f, sp.core.function.AppliedUndef) for f in expr.atoms(sp.Function)
    )
