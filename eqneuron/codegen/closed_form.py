"""JAX functions of a model's closed-form solution (from `eqneuron.analysis.closed_form`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..analysis.closed_form import ClosedForm, Form, H
from ..ir import ModelIR, symbol
from .functions import lambdify


@dataclass(frozen=True)
class FormFunctions:
    """One regime; each function takes (h, *states, *parameters) and returns a tuple."""

    state: Callable  # -> y(h)
    condition: Callable  # -> (g(h), g'(h))
    extremum: Callable | None  # (*states, *parameters) -> (h_ext,); None: g is monotone


@dataclass(frozen=True)
class ClosedFormFunctions:
    general: FormFunctions
    degenerate: FormFunctions | None
    vanishing: Callable | None  # (*parameters) -> (factor,)
    perturbed: str | None
    refractory_state: Callable | None = None  # (h, *states, *parameters) -> y(h) while refractory


def generate_closed_form(ir: ModelIR, closed_form: ClosedForm) -> ClosedFormFunctions:
    states = [symbol(n) for n in ir.states]
    params = [symbol(n) for n in ir.parameters]

    def functions(form: Form) -> FormFunctions:
        args = [H, *states, *params]
        return FormFunctions(
            state=lambdify(args, form.state),
            condition=lambdify(args, [form.condition, form.slope]),
            extremum=None if form.extremum is None else lambdify([*states, *params], [form.extremum]),
        )

    return ClosedFormFunctions(
        general=functions(closed_form.general),
        degenerate=None if closed_form.degenerate is None else functions(closed_form.degenerate),
        vanishing=None if closed_form.vanishing is None else lambdify(params, [closed_form.vanishing]),
        perturbed=closed_form.perturbed,
        refractory_state=None
        if closed_form.refractory_state is None
        else lambdify([H, *states, *params], closed_form.refractory_state),
    )
