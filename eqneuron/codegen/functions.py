"""Generate JAX functions from the SymPy IR.

Every function works on a population's state `y` of shape `(states, neurons)`
and a parameter dict `p` (scalars or `(neurons,)` arrays), so it is
vectorised over neurons by construction and traceable by `jit`, `vmap` and
`grad`.
"""

from __future__ import annotations

import dis
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from jaxtyping import Array, Bool, DTypeLike, Float, Int, PRNGKeyArray
from sympy.logic.boolalg import ITE

from ..ir import (
    FAN_IN,
    VALUE,
    ModelIR,
    T,
    input_function,
    normal,
    pre_input_function,
    pre_symbol,
    symbol,
    uniform,
)
from .waveforms import waveform_at

# exp's cap lies this factor below the dtype's largest value: the cap itself times a model's
# coefficients, summed over a Runge-Kutta step's stages and scaled by its size, must stay finite
_HEADROOM = 2.0**24


@functools.cache
def _cap_exponent(dtype: jnp.dtype) -> float:
    """The exponent of exp's cap in `dtype`: log of its largest value over `_HEADROOM`."""
    return float(np.asarray(np.log(np.finfo(dtype).max / _HEADROOM), dtype))


def _capped(x: Array) -> Array:
    """`x`, no larger than the exponent of exp's cap in its dtype (an integer literal first cast
    to exp's result dtype)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return jnp.minimum(x, _cap_exponent(x.dtype))


def saturating_exp(x: Array) -> Array:
    """`exp` that stops at a cap `_HEADROOM` below the dtype's largest value instead of
    overflowing to inf, equal to `jnp.exp` up to the cap.

    A Runge–Kutta step of an exponential model (EIF, AdEx) that overshoots its threshold, or
    is rejected, evaluates exp far past the spike; the step's value is discarded, but reverse
    mode multiplies that discarded value's zero cotangent by exp's derivative, which is the
    same inf: 0 * inf = NaN in every gradient (the EIF net of `benchmarks/vs_eventax.py`
    in float32, every sample).  Saturated, the derivative is finite (zero past the cap); below
    the largest value by `_HEADROOM`, so are the step's sums of the capped value."""
    return jnp.exp(_capped(x))


def saturating_expm1(x: Array) -> Array:
    """`expm1` saturated as `saturating_exp` is (`exprel`'s generated code calls it too)."""
    return jnp.expm1(_capped(x))


_JAX_FUNCTIONS: dict[str, Callable[..., jax.Array]] = {
    "exp": saturating_exp,
    "expm1": saturating_expm1,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,  # stable for large x
    "relu": jax.nn.relu,
    "Heaviside": lambda x, h0=0.5: jnp.heaviside(x, h0),
}


# parameter values (scalars or one per neuron) and the samples of the input waveforms, by name
Params = dict[str, float | Array]
Time = float | Float[Array, ""]


def lambdify(args: Sequence[sp.Basic], exprs: Iterable[sp.Basic]) -> Callable:
    """SymPy expressions -> one JAX function returning a tuple (source kept for `inspect`)."""
    exprs = [_with_float_literals(_without_ite(sp.sympify(e))) for e in exprs]
    return sp.lambdify(args, exprs, modules=[_JAX_FUNCTIONS, "jax"], cse=True, docstring_limit=0)


def _with_float_literals(expr: sp.Basic) -> sp.Basic:
    """Integers beyond int32 as floats: a Python int meeting a traced array becomes one of the
    array's integer type (`10**172 * tau` overflows under `jit`; the value is the same as a float)."""
    huge = {i: sp.Float(i) for i in expr.atoms(sp.Integer) if abs(int(i)) >= 2**31}
    return expr.xreplace(huge) if huge else expr


def _without_ite(expr: sp.Basic) -> sp.Basic:
    """`ITE(a, b, c)` as `(a & b) | (~a & c)`.

    SymPy writes a comparison of a `where` (`where(v > 0, u, 2) > 1`) as an
    ITE, and its NumPy/JAX printer would `simplify_logic` it, which can run
    for minutes; the explicit form prints as it is.
    """
    if not expr.has(ITE):
        return expr
    return expr.replace(
        lambda node: isinstance(node, ITE),
        lambda node: sp.Or(sp.And(node.args[0], node.args[1]), sp.And(sp.Not(node.args[0]), node.args[2])),
    )


@functools.cache
def _used_arguments(raw: Callable) -> frozenset[int] | None:
    """Positions of the arguments a generated function reads (its code loads them by name);
    None: not known, every argument counts."""
    code = getattr(raw, "__code__", None)
    if code is None or code.co_cellvars or any(isinstance(c, type(code)) for c in code.co_consts):
        return None  # not a flat generated function
    names = code.co_varnames[: code.co_argcount]
    loaded: set[str] = set()
    for ins in dis.get_instructions(code):
        if ins.opname.startswith("LOAD_FAST"):  # LOAD_FAST_LOAD_FAST (3.13) loads a pair
            loaded.update(ins.argval if isinstance(ins.argval, tuple) else (ins.argval,))
    return frozenset(k for k, name in enumerate(names) if name in loaded)


def _states(raw: Callable, y):
    """The states of `y` as `raw`'s arguments after `t`: those it never reads are not sliced
    (a slice is traced, differentiated and batched even when nothing uses it)."""
    used = _used_arguments(raw)
    return [y[k] if used is None or k + 1 in used else None for k in range(y.shape[0])]


def _neurons(y):
    """The shape and dtype of one state of `y` (no slice traced just to read them)."""
    return jax.ShapeDtypeStruct(y.shape[1:], y.dtype)


def _stack(outputs, like):
    """Broadcast scalar outputs (e.g. `dX/dt = 0`) to the neuron shape and stack by state."""
    return jnp.stack([jnp.broadcast_to(jnp.asarray(o, like.dtype), like.shape) for o in outputs])


@dataclass(frozen=True)
class GeneratedFunctions:
    """The JAX functions of one model.  All are pure and vectorised over neurons."""

    states: tuple[str, ...]
    parameters: tuple[str, ...]
    vector_field_raw: Callable
    condition_raw: Callable
    reset_raw: Callable
    on_spike_raw: Callable
    on_input_raw: Callable
    initial_raw: Callable
    observables_raw: Callable
    event_conditions_raw: tuple[Callable, ...]
    event_resets_raw: tuple[Callable, ...]
    weight_names: tuple[str, ...]
    pre_names: tuple[str, ...]
    subexpression_names: tuple[str, ...]
    event_names: tuple[str, ...] = ()
    port_names: tuple[str, ...] = ()  # named input ports; () : the one default port
    ports_raw: tuple[Callable, ...] = ()
    refractory_raw: Callable | None = None  # (*parameters) -> (period,); None: no refractory period
    delay_raw: Callable | None = None  # (*parameters) -> (delay,); None: no `delay:`
    frozen: tuple[bool, ...] = ()  # per state: frozen while refractory (`(unless refractory)`)
    inputs: tuple[str, ...] = ()  # input waveforms (`inputs:`)
    pre_input_names: tuple[str, ...] = ()  # inputs whose firing neuron's value `on_spike` uses

    def _params(self, p):
        return [p[name] for name in self.parameters]

    def _args(self, t, p):
        """The parameters, then each input waveform at `t`."""
        return [*self._params(p), *(waveform_at(name, t, p) for name in self.inputs)]

    @property
    def n_conditions(self) -> int:
        """The spike condition and one per internal event."""
        return 1 + len(self.event_names)

    @property
    def freezes(self) -> bool:
        return self.refractory_raw is not None and any(self.frozen)

    def refractory_period(self, p: Params, like: Float[Array, " neurons"]) -> Float[Array, " neurons"]:
        """The refractory period per neuron (ms)."""
        assert self.refractory_raw is not None, "the model has no refractory period"
        (period,) = self.refractory_raw(*self._params(p))
        return jnp.broadcast_to(jnp.asarray(period, like.dtype), like.shape)

    def delay_of(self, p: Params, like: Float[Array, " neurons"]) -> Float[Array, " neurons"]:
        """The transmission delay of each neuron's spikes (ms), from `delay:`."""
        assert self.delay_raw is not None, "the model has no `delay:`"
        (delay,) = self.delay_raw(*self._params(p))
        return jnp.broadcast_to(jnp.asarray(delay, like.dtype), like.shape)

    def vector_field(
        self,
        t: Time,
        y: Float[Array, "states neurons"],
        p: Params,
        refractory: Bool[Array, " neurons"] | None = None,
    ) -> Float[Array, "states neurons"]:
        """dy/dt, shape (states, neurons); the frozen states of `refractory` neurons do not move."""
        f = _stack(self.vector_field_raw(t, *_states(self.vector_field_raw, y), *self._args(t, p)), _neurons(y))
        if refractory is None or not self.freezes:
            return f
        frozen = jnp.asarray(self.frozen)[:, None] & refractory[None, :]
        return jnp.where(frozen, 0.0, f)

    def spike_condition(self, t: Time, y: Float[Array, "states neurons"], p: Params) -> Float[Array, " neurons"]:
        """g(y), shape (neurons,): a neuron spikes when g crosses zero upwards."""
        (g,) = self.condition_raw(t, *_states(self.condition_raw, y), *self._args(t, p))
        return jnp.broadcast_to(jnp.asarray(g, y.dtype), y.shape[1:])

    def conditions(self, t: Time, y: Float[Array, "states neurons"], p: Params) -> Float[Array, "conditions neurons"]:
        """The spike condition and every internal event's condition, shape (conditions, neurons)."""
        gs = [self.spike_condition(t, y, p)]
        for raw in self.event_conditions_raw:
            (g,) = raw(t, *_states(raw, y), *self._args(t, p))
            gs.append(jnp.broadcast_to(jnp.asarray(g, y.dtype), y.shape[1:]))
        return jnp.stack(gs)

    def apply_event_resets(
        self, t: Time, y: Float[Array, "states neurons"], p: Params, fired: Bool[Array, "events neurons"]
    ) -> Float[Array, "states neurons"]:
        """Each internal event's body on the neurons where `fired[e]` (values before the events)."""
        out = y
        for e, raw in enumerate(self.event_resets_raw):
            new = _stack(raw(t, *_states(raw, y), *self._args(t, p)), _neurons(y))
            out = jnp.where(fired[e][None, :], new, out)
        return out

    def apply_reset(
        self, t: Time, y: Float[Array, "states neurons"], p: Params, mask: Bool[Array, " neurons"]
    ) -> Float[Array, "states neurons"]:
        """Reset the neurons where `mask` is True (all right-hand sides use the values before)."""
        new = _stack(self.reset_raw(t, *_states(self.reset_raw, y), *self._args(t, p)), _neurons(y))
        return jnp.where(mask[None, :], new, y)

    def spike_jump(
        self,
        t: Time,
        y: Float[Array, "states neurons"],
        p: Params,
        y_pre: Float[Array, " states"],
        p_pre: Params,
        weight_rows: Mapping[str, Float[Array, " neurons"]],
    ) -> Float[Array, "states neurons"]:
        """Increments of every target's state when one neuron with state `y_pre` fires.

        `weight_rows[name]` is the row W[source, :], shape (neurons,).
        """
        rows = [weight_rows[name] for name in self.weight_names]
        pre = [y_pre[self.states.index(n)] for n in self.pre_names]
        pre_params = [p_pre[name] for name in self.parameters]
        pre_inputs = [waveform_at(name, t, p_pre) for name in self.pre_input_names]
        out = self.on_spike_raw(t, *_states(self.on_spike_raw, y), *self._args(t, p), *rows, *pre, *pre_params, *pre_inputs)
        return _stack(out, _neurons(y))

    def input_jump(
        self,
        t: Time,
        y: Float[Array, "states neurons"],
        p: Params,
        value: float | Float[Array, "*lanes"],
        weight_rows: Mapping[str, Float[Array, " neurons"]],
        port: Int[Array, "*lanes"] | None = None,
    ) -> Float[Array, "states neurons"]:
        """Increments of every target's state when an input spike of `value` arrives (at input
        port `port`, an index into `port_names`, per lane: models with named ports)."""
        rows = [weight_rows[name] for name in self.weight_names]
        if not self.port_names:
            return _stack(self.on_input_raw(t, *_states(self.on_input_raw, y), *self._args(t, p), *rows, value), _neurons(y))
        jump = jnp.zeros_like(y)
        for k, raw in enumerate(self.ports_raw):
            jump = jnp.where(port == k, _stack(raw(t, *_states(raw, y), *self._args(t, p), *rows, value), _neurons(y)), jump)
        return jump

    def initial_state(self, p: Params, n_neurons: int, dtype: DTypeLike) -> Float[Array, "states neurons"]:
        like = jnp.zeros((n_neurons,), dtype)
        return _stack(self.initial_raw(*self._params(p)), like)

    def observables(self, t: Time, y: Float[Array, "states neurons"], p: Params) -> dict[str, Float[Array, " neurons"]]:
        """Subexpressions (e.g. a membrane voltage derived from a phase), by name."""
        if not self.subexpression_names:
            return {}
        out = _stack(self.observables_raw(t, *_states(self.observables_raw, y), *self._args(t, p)), _neurons(y))
        return dict(zip(self.subexpression_names, out))


def generate(model: ModelIR) -> GeneratedFunctions:
    states = [symbol(n) for n in model.states]
    params = [symbol(n) for n in model.parameters]
    weights = tuple(model.weights)
    weight_syms = [symbol(n) for n in weights]
    pre_names = tuple(n for n in model.states if pre_symbol(n) in _free(model.on_spike.updates.values()))
    # parameters of the firing neuron, for `_pre` subexpressions that use per-neuron parameters
    pre_param_syms = [sp.Symbol(f"{n}__pre_param", real=True) for n in model.parameters]

    # an input `I(t)` is an argument: its value at t, interpolated by `GeneratedFunctions` from the samples
    inputs = [input_function(n)(T) for n in model.inputs]
    pre_inputs = [
        call
        for call in (pre_input_function(n)(T) for n in model.inputs)
        if any(e.has(call) for e in model.on_spike.updates.values())
    ]
    base = [T, *states, *params, *inputs]

    def updates_for(jump, identity):
        return [jump.updates.get(n, symbol(n) if identity else sp.Integer(0)) for n in model.states]

    return GeneratedFunctions(
        states=tuple(model.states),
        parameters=tuple(model.parameters),
        vector_field_raw=lambdify(base, [model.derivatives[n] for n in model.states]),
        condition_raw=lambdify(base, [model.threshold]),
        reset_raw=lambdify(base, updates_for(model.reset, identity=True)),
        on_spike_raw=lambdify(
            [*base, *weight_syms, *[pre_symbol(n) for n in pre_names], *pre_param_syms, *pre_inputs],
            updates_for(model.on_spike, identity=False),
        ),
        on_input_raw=lambdify([*base, *weight_syms, VALUE], updates_for(model.on_input, identity=False)),
        initial_raw=lambdify(params, [model.initial[n] for n in model.states]),
        observables_raw=lambdify(base, list(model.subexpressions.values())),
        event_conditions_raw=tuple(lambdify(base, [e.condition]) for e in model.events),
        event_resets_raw=tuple(lambdify(base, updates_for(e.reset, identity=True)) for e in model.events),
        weight_names=weights,
        pre_names=pre_names,
        subexpression_names=tuple(model.subexpressions),
        event_names=tuple(e.name for e in model.events),
        port_names=tuple(model.ports),
        ports_raw=tuple(
            lambdify([*base, *weight_syms, VALUE], updates_for(jump, identity=False)) for jump in model.ports.values()
        ),
        refractory_raw=None if model.refractory is None else lambdify(params, [model.refractory]),
        delay_raw=None if model.delay is None else lambdify(params, [model.delay]),
        frozen=tuple(n in model.frozen_when_refractory for n in model.states),
        inputs=tuple(model.inputs),
        pre_input_names=tuple(call.func.__name__[: -len("_pre")] for call in pre_inputs),
    )


def _free(exprs):
    out = set()
    for e in exprs:
        out |= e.free_symbols
    return out


def sample_weights(
    model: ModelIR, key: PRNGKeyArray, shape: tuple[int, int], fan_in: int, param_values: Params, dtype: DTypeLike
) -> dict[str, Float[Array, "rows neurons"]]:
    """Draw every weight matrix from its initialiser expression."""
    result = {}
    keys = jax.random.split(key, max(1, len(model.weights)))
    for (name, expr), wkey in zip(model.weights.items(), keys):
        draws = sorted(expr.atoms(normal, uniform), key=str)
        draw_syms = [sp.Symbol(f"__draw{i}") for i in range(len(draws))]
        body = expr.xreplace(dict(zip(draws, draw_syms)))
        param_syms = [symbol(n) for n in model.parameters]
        f = lambdify([*draw_syms, FAN_IN, *param_syms], [body])
        samples = []
        for draw, dkey in zip(draws, jax.random.split(wkey, max(1, len(draws)))):
            a, b = (float(x) for x in _numeric(draw.args, param_values))
            if isinstance(draw, normal):
                samples.append(a + b * jax.random.normal(dkey, shape, dtype))
            else:
                samples.append(jax.random.uniform(dkey, shape, dtype, a, b))
        params = [param_values[n] for n in model.parameters]
        (w,) = f(*samples, float(fan_in), *params)
        result[name] = jnp.broadcast_to(jnp.asarray(w, dtype), shape)
    return result


def _numeric(args, param_values):
    subs = {symbol(k): v for k, v in param_values.items() if jnp.ndim(v) == 0}
    return [sp.sympify(a).xreplace(subs) for a in args]
