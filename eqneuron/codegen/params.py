"""Parameter values: the IR's symbolic defaults evaluated with the user's overrides."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import sympy as sp

from ..check import evaluate_defaults
from ..errors import EqError, did_you_mean
from ..ir import ModelIR, symbol


def parameter_values(ir: ModelIR, overrides: dict | None = None) -> dict:
    """Default parameter values (dependent defaults follow overridden parameters)."""
    overrides = dict(overrides or {})
    unknown = [k for k in overrides if k not in ir.parameters]
    if unknown:
        raise EqError(
            f"`{unknown[0]}` is not a parameter of {ir.name}",
            hint=did_you_mean(unknown[0], ir.parameters) or f"parameters: {', '.join(ir.parameters)}",
        )
    scalars = {k: v for k, v in overrides.items() if np.ndim(v) == 0}
    symbolic = evaluate_defaults(ir.parameters, {k: sp.Float(float(v)) for k, v in scalars.items()})
    values = {}
    for name in ir.parameters:
        if name in overrides and np.ndim(overrides[name]) > 0:
            values[name] = jnp.asarray(overrides[name])
        else:
            try:
                values[name] = float(symbolic[symbol(name)])
            except TypeError:
                raise EqError(
                    f"the default of `{name}` depends on a per-neuron parameter",
                    ir.parameters[name].span,
                    ir.source,
                    hint=f"give `{name}` a value explicitly",
                ) from None
    return values
