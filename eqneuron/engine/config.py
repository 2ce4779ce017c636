"""How populations are integrated: the user's choices and the one table of default tolerances."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
from jaxtyping import DTypeLike

METHODS = ("auto", "exact", "tsit5", "dopri5", "dopri8", "heun", "euler")


@dataclass(frozen=True)
class Tolerances:
    rtol: float  # relative tolerance of an adaptive step's error estimate
    atol: float  # absolute tolerance of an adaptive step's error estimate
    root_tol: float  # relative tolerance of a located spike time


# the defaults, by floating-point width
_DEFAULTS = {
    "float64": Tolerances(rtol=1e-8, atol=1e-8, root_tol=1e-12),
    "float32": Tolerances(rtol=1e-5, atol=1e-5, root_tol=1e-5),
}


@dataclass(frozen=True)
class SolverConfig:
    """The integration options of `simulate`.

    `method="auto"` integrates a population in closed form where its model's
    free dynamics allow it (`eqneuron.analysis.choose_integrator`), with Tsit5
    otherwise.  Tolerances left at `None` take the defaults of the dtype.
    """

    method: str = "auto"
    rtol: float | None = None
    atol: float | None = None
    dt: float | None = None  # the fixed step of method="euler"
    root_tol: float | None = None
    max_solver_steps: int = 16384

    def tolerances(self, dtype: DTypeLike) -> Tolerances:
        default = _DEFAULTS["float64" if jnp.dtype(dtype) == jnp.float64 else "float32"]
        return Tolerances(
            rtol=default.rtol if self.rtol is None else self.rtol,
            atol=default.atol if self.atol is None else self.atol,
            root_tol=default.root_tol if self.root_tol is None else self.root_tol,
        )
