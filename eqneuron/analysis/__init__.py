"""Stage 3: model IR → what the engine needs to know, as SymPy data.

Linearity of the free dynamics, the closed-form solution where one exists,
and the one decision of which integrator the model gets.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..ir import ModelIR, T, input_calls, symbol
from . import cache
from .closed_form import ClosedForm as ClosedForm
from .closed_form import Form as Form
from .closed_form import NoClosedForm as NoClosedForm
from .closed_form import derive_closed_form
from .integrator import IntegratorChoice as IntegratorChoice
from .integrator import choose_integrator as choose_integrator
from .linear import LinearSystem as LinearSystem
from .linear import linear_system as linear_system


@dataclass(frozen=True)
class Analysis:
    linear: LinearSystem | None
    closed_form: ClosedForm | NoClosedForm
    # every input port's jump a constant increment (free of states, time and waveforms): the
    # state is then a superposition of the inputs' responses (`engine/adjoint_superposed.py`)
    additive_inputs: bool

    @property
    def integrator(self) -> IntegratorChoice:
        return choose_integrator(self.closed_form)


def analyse(ir: ModelIR) -> Analysis:
    """Linearity, closed form and integrator of a checked model (cached on disk by its source)."""
    key = cache.content_key(ir.source.text_with_bases if ir.source is not None else repr(ir))
    cached = cache.load(key)
    if isinstance(cached, Analysis):
        return cached
    linear = linear_system(ir)
    closed_form = derive_closed_form(ir, linear)
    result = Analysis(linear, closed_form, additive_inputs(ir))
    cache.store(key, result)
    return result


def additive_inputs(ir: ModelIR) -> bool:
    """Whether every input port's jump is a constant increment: free of states, time and waveforms."""
    varying = {symbol(name) for name in ir.states} | {T}
    jumps = [ir.on_input, *ir.ports.values()]
    return all(
        not (sp.sympify(expr).free_symbols & varying) and not input_calls(expr)
        for jump in jumps
        for expr in jump.updates.values()
    )
