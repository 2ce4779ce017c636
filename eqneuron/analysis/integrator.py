"""The one decision of which integrator a model gets, used by the engine, `repr` and `eqneuron check`."""

from __future__ import annotations

from dataclasses import dataclass

from .closed_form import ClosedForm, NoClosedForm


@dataclass(frozen=True)
class IntegratorChoice:
    kind: str  # "closed_form" | "runge_kutta"
    description: str


def choose_integrator(closed_form: ClosedForm | NoClosedForm) -> IntegratorChoice:
    """Closed form where the analysis derived one, adaptive Runge–Kutta (Tsit5) otherwise."""
    if isinstance(closed_form, ClosedForm):
        return IntegratorChoice("closed_form", "exact (closed-form propagator)")
    return IntegratorChoice("runge_kutta", f"adaptive Runge–Kutta, Tsit5 — {closed_form.reason}")
