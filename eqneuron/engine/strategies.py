"""The strategies a population's loop runs with: its clock and its integrator.

The clock follows from the population's coupling (`clock_for`: own clocks, or
one shared clock for neurons coupled within the population); the integrator
from the method asked for and what the model allows (`make_integrator`: its
closed form, or Runge–Kutta steps under a step-size controller).  The loop
(`loop.py`) is written once against their interfaces; this is where the
concrete ones are chosen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jaxtyping import DTypeLike

from ..errors import EqError
from ..network import Population
from .clocks import AbstractClock, OwnClocks, SharedClock
from .closed_form import ClosedFormIntegrator
from .config import METHODS, SolverConfig
from .controller import AbstractStepSizeController, AdaptiveStepSize, ConstantStepSize
from .integrator import AbstractIntegrator
from .runge_kutta import RungeKuttaIntegrator
from .runge_kutta_tableau import tableau

if TYPE_CHECKING:
    from ..model import CompiledModel


def make_integrator(model: CompiledModel, config: SolverConfig, dtype: DTypeLike) -> AbstractIntegrator:
    """The integrator of `config.method` for `model` (`"auto"`: the model's own choice)."""
    method = config.method
    if method not in METHODS:
        raise EqError(f"unknown method {method!r}", hint=f"choose from {', '.join(METHODS)}")
    if method == "exact" and (config.rtol is not None or config.atol is not None):
        raise EqError("`rtol` and `atol` are tolerances of Runge–Kutta steps; method='exact' takes none",
                      hint="drop rtol/atol (root_tol sets the spike-time tolerance)")
    tolerances = config.tolerances(dtype)
    choice = model.compiled.analysis.integrator
    if method == "exact" or (method == "auto" and choice.kind == "closed_form"):
        if choice.kind != "closed_form":
            raise EqError(
                f"{model.name} has no closed-form solution: {choice.description}",
                hint="use method='auto' or a Runge–Kutta method ('tsit5', 'dopri5', ...)",
            )
        forms = model.compiled.closed_form
        assert forms is not None  # generated for every model whose integrator is the closed form
        return ClosedFormIntegrator(fn=model.fn, forms=forms, tolerances=tolerances)
    name = "tsit5" if method == "auto" else method
    controller: AbstractStepSizeController
    if name == "euler":
        if config.dt is None:
            raise EqError("method='euler' takes fixed steps: give `dt`", hint="e.g. dt=0.01 (ms)")
        controller = ConstantStepSize(float(config.dt))
    else:
        if config.dt is not None:
            raise EqError(f"`dt` is the fixed step of method='euler'; method={method!r} chooses its own steps",
                          hint="drop dt, or use method='euler'")
        controller = AdaptiveStepSize(tolerances.rtol, tolerances.atol, tableau(name).error_order)
    return RungeKuttaIntegrator(
        fn=model.fn, tableau=tableau(name), controller=controller, tolerances=tolerances, max_steps=config.max_solver_steps
    )


def clock_for(pop: Population) -> AbstractClock:
    """Neurons coupled within the population share one clock; otherwise each has its own."""
    return SharedClock() if pop.recurrent else OwnClocks()
